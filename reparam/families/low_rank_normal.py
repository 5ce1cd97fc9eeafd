"""Low-rank-plus-diagonal normal N(loc, Σ) with Σ = W Wᵀ + diag(scale_diag²), W = `cov_factor`.

Sampling: ε has d + r standard normal entries, ε_d = ε[..., :d] and ε_r = ε[..., d:], and
z = loc + W ε_r + scale_diag ⊙ ε_d, which costs O(d r) per draw and never forms Σ.

Density: with D = diag(scale_diag), Ŵ = D⁻¹W and the r × r capacitance C = I_r + ŴᵀŴ = K Kᵀ,
the Woodbury identity and the matrix determinant lemma give

    Σ⁻¹ = D⁻¹ (I − Ŵ C⁻¹ Ŵᵀ) D⁻¹,        log det Σ = 2 Σ log scale_diag_i + 2 Σ log K_jj,

so (x − μ)ᵀ Σ⁻¹ (x − μ) = |δ|² − |K⁻¹ Ŵᵀ δ|² with δ = D⁻¹(x − μ): O(d r²) per batch element
for the Cholesky factor K, O(d r) per point, and no d × d factorization.

Shapes: `loc` is B₁ + (d,), `cov_factor` B₂ + (d, r), `scale_diag` B₃ + (d,); B is their
broadcast batch shape. Samples have shape `sample_shape + B + (d,)`; noise has event shape
(d + r,); `log_prob` has shape broadcast(x.shape[:-1], B); `entropy` B; `mean`, `variance`
B + (d,); `covariance` B + (d, d).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from reparam import checks

# One triangular-solve helper for both Gaussian families: it moves sample axes into columns.
from reparam._linalg import PRECISION, cholesky, matvec, solve_lower

Array = jax.Array

PARAMS = ("loc", "cov_factor", "scale_diag")
EVENT_NDIMS = 1
PARAM_EVENT_NDIMS = {"loc": 1, "cov_factor": 2, "scale_diag": 1}


def _params(where: str, loc, cov_factor, scale_diag) -> tuple[Array, Array, Array, tuple[int, ...]]:
    """Checked (loc, cov_factor, scale_diag, batch shape); `where` is the short function name."""
    where = f"reparam.low_rank_normal.{where}"
    (loc, cov_factor, scale_diag), batch_shape = checks.broadcast(
        where, event_ndims=PARAM_EVENT_NDIMS, loc=loc, cov_factor=cov_factor, scale_diag=scale_diag
    )
    d = loc.shape[-1]
    if cov_factor.shape[-2] != d:
        raise ValueError(
            f"{where}: `cov_factor` must have shape (..., {d}, r) (d = {d} rows, matching `loc` "
            f"of shape {loc.shape}); got shape {cov_factor.shape}"
        )
    if scale_diag.shape[-1] != d:
        raise ValueError(
            f"{where}: `scale_diag` must have shape (..., {d}) (matching `loc` of shape "
            f"{loc.shape}); got shape {scale_diag.shape}"
        )
    checks.positive(where, "scale_diag", scale_diag)
    return loc, cov_factor, scale_diag, batch_shape


@jax.jit
def _transform(eps: Array, loc: Array, cov_factor: Array, scale_diag: Array) -> Array:
    d = loc.shape[-1]
    return loc + matvec(cov_factor, eps[..., d:]) + scale_diag * eps[..., :d]


def _woodbury(cov_factor: Array, scale_diag: Array) -> tuple[Array, Array, Array]:
    """(Ŵ = D⁻¹W of shape (..., d, r), K = chol(I + ŴᵀŴ) (..., r, r), log det Σ (...,))."""
    w_hat = cov_factor / scale_diag[..., None]
    r = cov_factor.shape[-1]
    capacitance = jnp.eye(r, dtype=w_hat.dtype) + jnp.matmul(
        jnp.swapaxes(w_hat, -1, -2), w_hat, precision=PRECISION
    )
    chol = cholesky(capacitance)
    log_det = 2 * jnp.sum(jnp.log(scale_diag), axis=-1) + 2 * jnp.sum(
        jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1
    )
    return w_hat, chol, log_det


def noise(key: Array, shape: tuple[int, ...] = (), dtype=None) -> Array:
    """Standard normal ε of `shape`; its last axis (size d + r) holds ε_d then ε_r."""
    key = checks.key(key, "reparam.low_rank_normal.noise")
    shape = checks.sample_shape("reparam.low_rank_normal.noise", shape, "shape")
    return jax.random.normal(key, shape, checks.noise_dtype(dtype))


def transform(eps: Array, loc, cov_factor, scale_diag) -> Array:
    """z = loc + W ε_r + scale_diag ⊙ ε_d for ε (..., d + r); shape broadcast(...) + (d,)."""
    where = "reparam.low_rank_normal.transform"
    loc, cov_factor, scale_diag, batch_shape = _params("transform", loc, cov_factor, scale_diag)
    checks.broadcastable(
        "reparam.low_rank_normal.transform",
        "eps",
        jnp.shape(eps),
        batch_shape,
        (loc.shape[-1] + cov_factor.shape[-1],),
    )
    eps = checks.numeric(where, "eps", eps)
    size = loc.shape[-1] + cov_factor.shape[-1]
    if eps.ndim < 1 or eps.shape[-1] != size:
        raise ValueError(
            f"{where}: `eps` must have shape (..., {size}) (d + r = {loc.shape[-1]} + "
            f"{cov_factor.shape[-1]} on the last axis); got shape {eps.shape}"
        )
    return _transform(eps.astype(jnp.result_type(eps, loc)), loc, cov_factor, scale_diag)


def noise_shape(sample_shape, loc, cov_factor, scale_diag) -> tuple[int, ...]:
    """The shape of ε that `sample(key, loc, cov_factor, scale_diag, sample_shape)` draws:
    `sample_shape + B + (d + r,)` (ε_d then ε_r on the last axis)
    (for callers that bring their own ε: quasi-Monte-Carlo, common random numbers)."""
    where = "reparam.low_rank_normal.noise_shape"
    loc, cov_factor, _, batch_shape = _params("noise_shape", loc, cov_factor, scale_diag)
    return (
        *checks.sample_shape(where, sample_shape),
        *batch_shape,
        *(loc.shape[-1] + cov_factor.shape[-1],),
    )


def sample(key: Array, loc, cov_factor, scale_diag, sample_shape=()) -> Array:
    """Reparameterized draw of shape `sample_shape + B + (d,)` (from d + r normals each)."""
    where = "reparam.low_rank_normal.sample"
    key = checks.key(key, where)
    loc, cov_factor, scale_diag, batch_shape = _params("sample", loc, cov_factor, scale_diag)
    size = loc.shape[-1] + cov_factor.shape[-1]
    shape = (*checks.sample_shape(where, sample_shape), *batch_shape, size)
    return _transform(jax.random.normal(key, shape, loc.dtype), loc, cov_factor, scale_diag)


def sample_and_log_prob(
    key: Array, loc, cov_factor, scale_diag, sample_shape=()
) -> tuple[Array, Array]:
    """Draw z (as `sample`) and log p(z).

    ε ↦ z maps d + r numbers to d, so log p cannot be read off ε as for the full-rank normal;
    it is the Woodbury `log_prob` of z, sharing the parameter checks.
    """
    where = "reparam.low_rank_normal.sample_and_log_prob"
    key = checks.key(key, where)
    loc, cov_factor, scale_diag, batch_shape = _params(
        "sample_and_log_prob", loc, cov_factor, scale_diag
    )
    size = loc.shape[-1] + cov_factor.shape[-1]
    shape = (*checks.sample_shape(where, sample_shape), *batch_shape, size)
    z = _transform(jax.random.normal(key, shape, loc.dtype), loc, cov_factor, scale_diag)
    return z, _log_prob(z, loc, cov_factor, scale_diag)


@jax.jit
def _log_prob(x: Array, loc: Array, cov_factor: Array, scale_diag: Array) -> Array:
    d = loc.shape[-1]
    w_hat, chol, log_det = _woodbury(cov_factor, scale_diag)
    delta = (x - loc) / scale_diag
    projected = solve_lower(chol, matvec(jnp.swapaxes(w_hat, -1, -2), delta))
    mahalanobis = jnp.sum(delta**2, axis=-1) - jnp.sum(projected**2, axis=-1)
    return -0.5 * (mahalanobis + log_det + d * math.log(2 * math.pi))


def log_prob(x, loc, cov_factor, scale_diag) -> Array:
    """log N(x; loc, W Wᵀ + diag(scale_diag²)) for x (..., d); shape broadcast(x.shape[:-1], B).

    Woodbury identity and determinant lemma (module docstring): O(d r²) per batch element.
    """
    where = "reparam.low_rank_normal.log_prob"
    loc, cov_factor, scale_diag, batch_shape = _params("log_prob", loc, cov_factor, scale_diag)
    checks.broadcastable(
        "reparam.low_rank_normal.log_prob", "x", jnp.shape(x), batch_shape, loc.shape[-1:]
    )
    d = loc.shape[-1]
    x = checks.numeric(where, "x", x).astype(loc.dtype)
    if x.ndim < 1 or x.shape[-1] != d:
        raise ValueError(
            f"{where}: `x` must have shape (..., {d}) (event size {d}, the last axis); "
            f"got shape {x.shape}"
        )
    return _log_prob(x, loc, cov_factor, scale_diag)


def entropy(loc, cov_factor, scale_diag) -> Array:
    """(d/2)(1 + log 2π) + ½ log det Σ (determinant lemma); shape B."""
    loc, cov_factor, scale_diag, batch_shape = _params("entropy", loc, cov_factor, scale_diag)
    d = loc.shape[-1]
    _, _, log_det = _woodbury(cov_factor, scale_diag)
    return jnp.broadcast_to(0.5 * d * (1 + math.log(2 * math.pi)) + 0.5 * log_det, batch_shape)


def mean(loc, cov_factor, scale_diag) -> Array:
    """loc, shape B + (d,)."""
    loc, _, _, batch_shape = _params("mean", loc, cov_factor, scale_diag)
    return jnp.broadcast_to(loc, (*batch_shape, loc.shape[-1]))


def variance(loc, cov_factor, scale_diag) -> Array:
    """diag(Σ)_i = Σ_j W_ij² + scale_diag_i², shape B + (d,)."""
    loc, cov_factor, scale_diag, batch_shape = _params("variance", loc, cov_factor, scale_diag)
    value = jnp.sum(cov_factor**2, axis=-1) + scale_diag**2
    return jnp.broadcast_to(value, (*batch_shape, loc.shape[-1]))


def covariance(loc, cov_factor, scale_diag) -> Array:
    """Σ = W Wᵀ + diag(scale_diag²), shape B + (d, d) (forms the d × d matrix)."""
    loc, cov_factor, scale_diag, batch_shape = _params("covariance", loc, cov_factor, scale_diag)
    d = loc.shape[-1]
    low_rank = jnp.matmul(cov_factor, jnp.swapaxes(cov_factor, -1, -2), precision=PRECISION)
    value = low_rank + jnp.eye(d, dtype=loc.dtype) * (scale_diag**2)[..., None]
    return jnp.broadcast_to(value, (*batch_shape, d, d))


__all__ = [
    "EVENT_NDIMS",
    "PARAMS",
    "PARAM_EVENT_NDIMS",
    "covariance",
    "entropy",
    "log_prob",
    "mean",
    "noise",
    "noise_shape",
    "sample",
    "sample_and_log_prob",
    "transform",
    "variance",
]
