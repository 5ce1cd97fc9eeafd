"""Multivariate normal N(loc, Σ = L Lᵀ) with L = `scale_tril`: z = loc + L ε, ε ~ N(0, I_d).

Only the lower triangle of `scale_tril` is read (as in TFP's `MultivariateNormalTriL`): the
upper triangle is ignored by `transform`, `log_prob` and the moments alike and gets zero
gradient, so all of them describe the same distribution. Its diagonal must be > 0, which makes
L the Cholesky factor of Σ and log|det L| = Σ log L_ii.

Shapes: `loc` is B_loc + (d,), `scale_tril` is B_L + (d, d); the batch shape B is
broadcast(B_loc, B_L). Samples have shape `sample_shape + B + (d,)` (one event axis, last);
`log_prob` has shape broadcast(x.shape[:-1], B); `entropy` is B; `mean`, `variance` are B + (d,);
`covariance` is B + (d, d).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from reparam import checks
from reparam._linalg import PRECISION, matvec, solve_lower

Array = jax.Array

PARAMS = ("loc", "scale_tril")
EVENT_NDIMS = 1
PARAM_EVENT_NDIMS = {"loc": 1, "scale_tril": 2}


def _params(where: str, loc, scale_tril) -> tuple[Array, Array, tuple[int, ...]]:
    """Checked (loc, tril(scale_tril), batch shape); `where` is the short function name."""
    where = f"reparam.multivariate_normal.{where}"
    (loc, scale_tril), batch_shape = checks.broadcast(
        where, event_ndims=PARAM_EVENT_NDIMS, loc=loc, scale_tril=scale_tril
    )
    d = loc.shape[-1]
    if scale_tril.shape[-2:] != (d, d):
        raise ValueError(
            f"{where}: `scale_tril` must have shape (..., {d}, {d}) (square, matching `loc` of "
            f"shape {loc.shape} with event size {d}); got shape {scale_tril.shape}"
        )
    checks.require(
        where,
        "scale_tril",
        jnp.diagonal(scale_tril, axis1=-2, axis2=-1),
        lambda x, xp: x > 0,
        "lower triangular with diagonal entries > 0 (the index is (batch..., i) of entry i, i)",
    )
    return loc, jnp.tril(scale_tril), batch_shape


def _event_array(where: str, name: str, value, dtype, size: int) -> Array:
    """`value` as an array of `dtype` whose last axis (the event axis) has `size` entries."""
    where = f"reparam.multivariate_normal.{where}"
    array = checks.numeric(where, name, value).astype(dtype)
    if array.ndim < 1 or array.shape[-1] != size:
        raise ValueError(
            f"{where}: `{name}` must have shape (..., {size}) (event size {size}, the last "
            f"axis); got shape {array.shape}"
        )
    return array


@jax.jit
def _transform(eps: Array, loc: Array, tril: Array) -> Array:
    return loc + matvec(tril, eps)


@jax.jit
def _log_prob(x: Array, loc: Array, tril: Array) -> Array:
    d = loc.shape[-1]
    y = solve_lower(tril, x - loc)
    return -0.5 * jnp.sum(y**2, axis=-1) - _log_det(tril) - 0.5 * d * math.log(2 * math.pi)


def _log_det(tril: Array) -> Array:
    """log|det L| = Σ log L_ii for L with a positive diagonal; shape (...,)."""
    return jnp.sum(jnp.log(jnp.diagonal(tril, axis1=-2, axis2=-1)), axis=-1)


def noise(key: Array, shape: tuple[int, ...] = (), dtype=None) -> Array:
    """Standard normal ε of `shape` (its last axis is the event axis, of size d)."""
    key = checks.key(key, "reparam.multivariate_normal.noise")
    shape = checks.sample_shape("reparam.multivariate_normal.noise", shape, "shape")
    return jax.random.normal(key, shape, checks.noise_dtype(dtype))


def transform(eps: Array, loc, scale_tril) -> Array:
    """z = loc + L ε for ε of shape (..., d); shape broadcast(ε.shape[:-1], B) + (d,)."""
    loc, tril, batch_shape = _params("transform", loc, scale_tril)
    checks.broadcastable(
        "reparam.multivariate_normal.transform", "eps", jnp.shape(eps), batch_shape, loc.shape[-1:]
    )
    eps = checks.numeric("reparam.multivariate_normal.transform", "eps", eps)
    eps = _event_array("transform", "eps", eps, jnp.result_type(eps, loc), loc.shape[-1])
    return _transform(eps, loc, tril)


def noise_shape(sample_shape, loc, scale_tril) -> tuple[int, ...]:
    """The shape of ε that `sample(key, loc, scale_tril, sample_shape)` draws:
    `sample_shape + B + (d,)`
    (for callers that bring their own ε: quasi-Monte-Carlo, common random numbers)."""
    where = "reparam.multivariate_normal.noise_shape"
    loc, _, batch_shape = _params("noise_shape", loc, scale_tril)
    return (*checks.sample_shape(where, sample_shape), *batch_shape, *(loc.shape[-1],))


def sample(key: Array, loc, scale_tril, sample_shape=()) -> Array:
    """Reparameterized draw of shape `sample_shape + B + (d,)`."""
    where = "reparam.multivariate_normal.sample"
    key = checks.key(key, where)
    loc, tril, batch_shape = _params("sample", loc, scale_tril)
    shape = (*checks.sample_shape(where, sample_shape), *batch_shape, loc.shape[-1])
    return _transform(jax.random.normal(key, shape, loc.dtype), loc, tril)


def sample_and_log_prob(key: Array, loc, scale_tril, sample_shape=()) -> tuple[Array, Array]:
    """Draw z (as `sample`) and log p(z), the latter from ε: no triangular solve needed."""
    where = "reparam.multivariate_normal.sample_and_log_prob"
    key = checks.key(key, where)
    loc, tril, batch_shape = _params("sample_and_log_prob", loc, scale_tril)
    d = loc.shape[-1]
    shape = (*checks.sample_shape(where, sample_shape), *batch_shape, d)
    eps = jax.random.normal(key, shape, loc.dtype)
    log_p = -0.5 * jnp.sum(eps**2, axis=-1) - _log_det(tril) - 0.5 * d * math.log(2 * math.pi)
    return _transform(eps, loc, tril), log_p


def log_prob(x, loc, scale_tril) -> Array:
    """log N(x; loc, L Lᵀ) for x of shape (..., d); shape broadcast(x.shape[:-1], B).

    Uses the triangular solve y = L⁻¹(x − loc), so log p = −|y|²/2 − Σ log L_ii − (d/2) log 2π.
    """
    loc, tril, batch_shape = _params("log_prob", loc, scale_tril)
    checks.broadcastable(
        "reparam.multivariate_normal.log_prob", "x", jnp.shape(x), batch_shape, loc.shape[-1:]
    )
    d = loc.shape[-1]
    x = _event_array("log_prob", "x", x, loc.dtype, d)
    return _log_prob(x, loc, tril)


def entropy(loc, scale_tril) -> Array:
    """(d/2)(1 + log 2π) + Σ log L_ii; shape B."""
    loc, tril, batch_shape = _params("entropy", loc, scale_tril)
    d = loc.shape[-1]
    value = 0.5 * d * (1 + math.log(2 * math.pi)) + _log_det(tril)
    return jnp.broadcast_to(value, batch_shape)


def mean(loc, scale_tril) -> Array:
    """loc, shape B + (d,)."""
    loc, _, batch_shape = _params("mean", loc, scale_tril)
    return jnp.broadcast_to(loc, (*batch_shape, loc.shape[-1]))


def variance(loc, scale_tril) -> Array:
    """diag(L Lᵀ)_i = Σ_j L_ij², shape B + (d,)."""
    loc, tril, batch_shape = _params("variance", loc, scale_tril)
    return jnp.broadcast_to(jnp.sum(tril**2, axis=-1), (*batch_shape, loc.shape[-1]))


def covariance(loc, scale_tril) -> Array:
    """Σ = L Lᵀ, shape B + (d, d)."""
    loc, tril, batch_shape = _params("covariance", loc, scale_tril)
    d = loc.shape[-1]
    sigma = jnp.matmul(tril, jnp.swapaxes(tril, -1, -2), precision=PRECISION)
    return jnp.broadcast_to(sigma, (*batch_shape, d, d))


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
