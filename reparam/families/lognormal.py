"""LogNormal(loc, scale): z = exp(loc + scale · ε) with ε ~ N(0, 1), so log z ~ N(loc, scale²).

`loc` and `scale` are the mean and standard deviation of log z (scipy: lognorm(s=scale,
scale=exp(loc))). Samples overflow to inf (or underflow to 0) only where exp(loc + scale · ε) is
itself beyond the float range, e.g. |loc + scale · ε| > 709 in float64.

Shapes: parameters broadcast to a batch shape B; samples have shape `sample_shape + B`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import ndtr

from reparam import checks

Array = jax.Array

PARAMS = ("loc", "scale")
EVENT_NDIMS = 0

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _params(where: str, loc, scale) -> tuple[Array, Array, tuple[int, ...]]:
    (loc, scale), batch_shape = checks.broadcast(f"reparam.lognormal.{where}", loc=loc, scale=scale)
    checks.positive(f"reparam.lognormal.{where}", "scale", scale)
    return loc, scale, batch_shape


def _transform(eps: Array, loc: Array, scale: Array) -> Array:
    return jnp.exp(loc + scale * eps)


def noise(key: Array, shape: tuple[int, ...] = (), dtype=None) -> Array:
    """Standard normal ε of `shape`; dtype defaults to JAX's default float."""
    key = checks.key(key, "reparam.lognormal.noise")
    shape = checks.sample_shape("reparam.lognormal.noise", shape, "shape")
    return jax.random.normal(key, shape, checks.noise_dtype(dtype))


def transform(eps: Array, loc, scale) -> Array:
    """z = exp(loc + scale · ε); shape broadcast(ε, loc, scale)."""
    loc, scale, batch_shape = _params("transform", loc, scale)
    checks.broadcastable("reparam.lognormal.transform", "eps", jnp.shape(eps), batch_shape)
    return _transform(eps, loc, scale)


def noise_shape(sample_shape, loc, scale) -> tuple[int, ...]:
    """The shape of ε that `sample(key, loc, scale, sample_shape)` draws:
    `sample_shape + B`, the sample's shape
    (for callers that bring their own ε: quasi-Monte-Carlo, common random numbers)."""
    where = "reparam.lognormal.noise_shape"
    _, _, batch_shape = _params("noise_shape", loc, scale)
    return checks.sample_shape(where, sample_shape) + batch_shape


def sample(key: Array, loc, scale, sample_shape=()) -> Array:
    """Reparameterized draw of shape `sample_shape + broadcast(loc, scale).shape`."""
    key = checks.key(key, "reparam.lognormal.sample")
    loc, scale, batch_shape = _params("sample", loc, scale)
    shape = checks.sample_shape("reparam.lognormal.sample", sample_shape) + batch_shape
    return _transform(jax.random.normal(key, shape, loc.dtype), loc, scale)


def sample_and_log_prob(key: Array, loc, scale, sample_shape=()) -> tuple[Array, Array]:
    """Draw z and its log-density from ε: log p = log N(ε) − log scale − log z.

    log z = loc + scale·ε is used directly, so log p stays exact where z over- or underflows.
    """
    key = checks.key(key, "reparam.lognormal.sample_and_log_prob")
    loc, scale, batch_shape = _params("sample_and_log_prob", loc, scale)
    shape = checks.sample_shape("reparam.lognormal.sample_and_log_prob", sample_shape) + batch_shape
    eps = jax.random.normal(key, shape, loc.dtype)
    log_z = loc + scale * eps
    return jnp.exp(log_z), -0.5 * eps**2 - jnp.log(scale) - _HALF_LOG_2PI - log_z


def log_prob(x, loc, scale) -> Array:
    """log LogNormal(x; loc, scale); −inf for x ≤ 0. Shape broadcast(x, loc, scale)."""
    loc, scale, batch_shape = _params("log_prob", loc, scale)
    checks.broadcastable("reparam.lognormal.log_prob", "x", jnp.shape(x), batch_shape)
    positive = x > 0
    # Evaluate the logarithm at a safe point off the support, so its gradient is never NaN.
    log_x = jnp.log(jnp.where(positive, x, 1.0))
    t = (log_x - loc) / scale
    inside = -0.5 * t**2 - jnp.log(scale) - _HALF_LOG_2PI - log_x
    return jnp.where(positive, inside, -jnp.inf)


def cdf(x, loc, scale) -> Array:
    loc, scale, _ = _params("cdf", loc, scale)
    positive = x > 0
    log_x = jnp.log(jnp.where(positive, x, 1.0))
    return jnp.where(positive, ndtr((log_x - loc) / scale), 0.0)


def entropy(loc, scale) -> Array:
    loc, scale, batch_shape = _params("entropy", loc, scale)
    return jnp.broadcast_to(loc + 0.5 + _HALF_LOG_2PI + jnp.log(scale), batch_shape)


def mean(loc, scale) -> Array:
    loc, scale, batch_shape = _params("mean", loc, scale)
    return jnp.broadcast_to(jnp.exp(loc + 0.5 * scale**2), batch_shape)


def variance(loc, scale) -> Array:
    """(exp(scale²) − 1)·exp(2·loc + scale²), with expm1 so a small scale keeps its precision."""
    loc, scale, batch_shape = _params("variance", loc, scale)
    return jnp.broadcast_to(jnp.expm1(scale**2) * jnp.exp(2.0 * loc + scale**2), batch_shape)


__all__ = [
    "EVENT_NDIMS",
    "PARAMS",
    "cdf",
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
