"""LKJ-Cholesky(dimension, concentration): the Cholesky factor L of a d × d correlation matrix
C = L Lᵀ drawn from the LKJ law p(C) ∝ det(C)^(η−1) (Lewandowski, Kurowicka & Joe, 2009).

Sampling by the onion method (as TFP's `CholeskyLKJ`), row by row: L₀ = e₁ and, for n = 1 … d − 1,

    y_n ~ Beta(n/2, η + (d − 1 − n)/2),   u_n ~ Uniform(S^(n−1)),
    row n of L = (√y_n u_n, √(1 − y_n), 0, …, 0),

so every row is a unit vector (diag(C) = 1) with a positive diagonal entry. All d − 1 beta draws are
one call of `reparam.beta.log_sample` (log y and log(1 − y) of the same gammas, so √y and
√(1 − y) are exact at both ends and carry the implicit reparameterization gradient in η); the
directions u_n are normalized standard normals (no parameter). There is no parameter-free ε with
an explicit map (no closed-form beta inverse CDF), hence no `noise`/`transform`/`noise_shape`.

Density of L, with respect to Lebesgue measure on its strictly lower triangle (the diagonal is
determined by the unit rows), as TFP's `CholeskyLKJ.log_prob`: the LKJ density of C times the
Jacobian of C ↦ L,

    log p(L) = Σ_{i=2}^{d} (d − i + 2η − 2) log L_ii − log N(η, d),
    log N(η, d) = Σ_{k=1}^{d−1} [(k/2) log π + log Γ(η + (d − 1 − k)/2) − log Γ(η + (d − 1)/2)]

(i 1-based). For d = 2, L = [[1, 0], [r, √(1 − r²)]] and this is the density of the correlation
r ∝ (1 − r²)^(η−1). Every off-diagonal C_ij has the marginal law 2 Beta(η − 1 + d/2, same) − 1.
No `mean`/`entropy`/`variance`: E[L] and the entropy of L have no closed form (E[C] = I does).

`dimension` is a static Python int ≥ 2 (it sets shapes, so it cannot be traced).
Shapes: `concentration` is B; samples have shape `sample_shape + B + (d, d)` (two event axes,
last); `log_prob` has shape broadcast(x.shape[:-2], B).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln

from reparam import checks
from reparam.families import beta

Array = jax.Array

PARAMS = ("dimension", "concentration")
EVENT_NDIMS = 2


def _params(where: str, dimension, concentration) -> tuple[int, Array, tuple[int, ...]]:
    where = f"reparam.lkj_cholesky.{where}"
    dimension = checks.count(where, "dimension", dimension, minimum=2, why=" (d × d matrices)")
    (concentration,), batch_shape = checks.broadcast(where, concentration=concentration)
    checks.positive(where, "concentration", concentration)
    checks.finite(where, "concentration", concentration)
    return dimension, concentration, batch_shape


def _log_normalizer(dimension: int, concentration: Array) -> Array:
    """log N(η, d) of the module docstring (TFP's LKJ `_log_normalization`); shape of η."""
    k = jnp.arange(1, dimension, dtype=concentration.dtype)
    terms = (
        0.5 * k * math.log(math.pi)
        + gammaln(concentration[..., None] + 0.5 * (dimension - 1 - k))
        - gammaln(concentration[..., None] + 0.5 * (dimension - 1))
    )
    return jnp.sum(terms, axis=-1)


def _diagonal_coefficients(dimension: int, concentration: Array) -> Array:
    """(d − i + 2η − 2) for i = 1 … d; shape B + (d,)."""
    i = jnp.arange(1, dimension + 1, dtype=concentration.dtype)
    return dimension - i + 2 * concentration[..., None] - 2


def _draw(key: Array, dimension: int, concentration: Array, shape: tuple[int, ...]) -> tuple:
    """(L, log diag(L)) of shapes `shape + (d, d)` and `shape + (d,)`; shape = sample_shape + B."""
    d, dtype = dimension, concentration.dtype
    key_beta, key_direction = jax.random.split(key)
    n = jnp.arange(1, d, dtype=dtype)  # rows 1 … d − 1
    log_y, log1m_y = beta.log_sample(
        key_beta, n / 2, concentration[..., None] + (d - 1 - n) / 2, (*shape, d - 1)
    )
    # Row n's direction lives in its first n coordinates: a (d − 1) × (d − 1) lower triangle,
    # row n − 1 of it for row n of L.
    inside = jnp.tril(jnp.ones((d - 1, d - 1), bool))
    normal = jnp.where(inside, jax.random.normal(key_direction, (*shape, d - 1, d - 1), dtype), 0)
    direction = normal / jnp.linalg.norm(normal, axis=-1, keepdims=True)
    off_diagonal = jnp.exp(0.5 * log_y)[..., None] * direction  # √y_n u_n
    # Rows 1 … d − 1, columns 0 … d − 2 hold the off-diagonal part; the diagonal is added apart.
    strictly_lower = jnp.pad(off_diagonal, [(0, 0)] * len(shape) + [(1, 0), (0, 1)])
    log_diagonal = jnp.concatenate([jnp.zeros((*shape, 1), dtype), 0.5 * log1m_y], axis=-1)
    cholesky = strictly_lower + jnp.exp(log_diagonal)[..., None] * jnp.eye(d, dtype=dtype)
    return cholesky, log_diagonal


def sample(key: Array, dimension, concentration, sample_shape=()) -> Array:
    """Reparameterized Cholesky factors of shape `sample_shape + B + (d, d)`: lower triangular,
    unit-norm rows, positive diagonal; implicit gradient in `concentration` (through the betas)."""
    where = "reparam.lkj_cholesky.sample"
    key = checks.key(key, where)
    dimension, concentration, batch_shape = _params("sample", dimension, concentration)
    shape = checks.sample_shape(where, sample_shape) + batch_shape
    cholesky, _ = _draw(key, dimension, concentration, shape)
    return cholesky


def sample_and_log_prob(
    key: Array, dimension, concentration, sample_shape=()
) -> tuple[Array, Array]:
    """Draw L and log p(L), the latter from the draw's log(1 − y) (exact where L_ii underflows)."""
    where = "reparam.lkj_cholesky.sample_and_log_prob"
    key = checks.key(key, where)
    dimension, concentration, batch_shape = _params("sample_and_log_prob", dimension, concentration)
    shape = checks.sample_shape(where, sample_shape) + batch_shape
    cholesky, log_diagonal = _draw(key, dimension, concentration, shape)
    return cholesky, _log_density(dimension, concentration, log_diagonal)


def _log_density(dimension: int, concentration: Array, log_diagonal: Array) -> Array:
    coefficients = _diagonal_coefficients(dimension, concentration)
    return jnp.sum(coefficients * log_diagonal, axis=-1) - _log_normalizer(dimension, concentration)


def log_prob(x, dimension, concentration) -> Array:
    """log p(L) of the module docstring (TFP's `CholeskyLKJ.log_prob`); shape
    broadcast(x.shape[:-2], B). Only x's diagonal is read: x is taken to be the Cholesky factor of
    a correlation matrix (lower triangular, unit rows, positive diagonal), not checked."""
    dimension, concentration, batch_shape = _params("log_prob", dimension, concentration)
    where = "reparam.lkj_cholesky.log_prob"
    checks.broadcastable(where, "x", jnp.shape(x), batch_shape, (dimension, dimension))
    x = jnp.asarray(x, concentration.dtype)
    log_diagonal = jnp.log(jnp.diagonal(x, axis1=-2, axis2=-1))
    return _log_density(dimension, concentration, log_diagonal)


__all__ = [
    "EVENT_NDIMS",
    "PARAMS",
    "log_prob",
    "sample",
    "sample_and_log_prob",
]
