"""Cauchy(loc, scale): z = loc + scale · ε with ε = tan(π(u − ½)) ~ Cauchy(0, 1).

The Cauchy has no mean or variance, so this module defines neither. Shapes: parameters broadcast
to a batch shape B; samples have shape `sample_shape + B`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from reparam import checks

Array = jax.Array

PARAMS = ("loc", "scale")
EVENT_NDIMS = 0


def _params(where: str, loc, scale) -> tuple[Array, Array, tuple[int, ...]]:
    (loc, scale), batch_shape = checks.broadcast(f"reparam.cauchy.{where}", loc=loc, scale=scale)
    checks.positive(f"reparam.cauchy.{where}", "scale", scale)
    return loc, scale, batch_shape


def _noise(key: Array, shape: tuple[int, ...], dtype) -> Array:
    # jax.random.cauchy draws u from [eps, 1), so tan(π(u − ½)) stays finite (|ε| ≲ 1/(π·eps)).
    return jax.random.cauchy(key, shape, dtype)


def _transform(eps: Array, loc: Array, scale: Array) -> Array:
    return loc + scale * eps


def _log1p_square(t: Array) -> Array:
    """log(1 + t²) without overflowing t² for |t| > 1e154: 2·log|t| + log1p(t⁻²) there."""
    big = jnp.abs(t) > 1.0
    # Double `where` so that neither branch sees an input that makes its gradient NaN.
    t_big = jnp.where(big, t, 1.0)
    t_small = jnp.where(big, 0.0, t)
    return jnp.where(
        big, 2.0 * jnp.log(jnp.abs(t_big)) + jnp.log1p(t_big**-2), jnp.log1p(t_small**2)
    )


def noise(key: Array, shape: tuple[int, ...] = (), dtype=None) -> Array:
    """Standard Cauchy ε of `shape`; dtype defaults to JAX's default float."""
    key = checks.key(key, "reparam.cauchy.noise")
    return _noise(key, shape, checks.noise_dtype(dtype))


def transform(eps: Array, loc, scale) -> Array:
    """z = loc + scale · ε; shape broadcast(ε, loc, scale)."""
    loc, scale, _ = _params("transform", loc, scale)
    return _transform(eps, loc, scale)


def sample(key: Array, loc, scale, sample_shape=()) -> Array:
    """Reparameterized draw of shape `sample_shape + broadcast(loc, scale).shape`."""
    key = checks.key(key, "reparam.cauchy.sample")
    loc, scale, batch_shape = _params("sample", loc, scale)
    shape = checks.sample_shape("reparam.cauchy.sample", sample_shape) + batch_shape
    return _transform(_noise(key, shape, loc.dtype), loc, scale)


def sample_and_log_prob(key: Array, loc, scale, sample_shape=()) -> tuple[Array, Array]:
    """Draw z and its log-density, computed from ε (no subtraction of loc, no division)."""
    key = checks.key(key, "reparam.cauchy.sample_and_log_prob")
    loc, scale, batch_shape = _params("sample_and_log_prob", loc, scale)
    shape = checks.sample_shape("reparam.cauchy.sample_and_log_prob", sample_shape) + batch_shape
    eps = _noise(key, shape, loc.dtype)
    return _transform(eps, loc, scale), -_log1p_square(eps) - jnp.log(scale) - math.log(math.pi)


def log_prob(x, loc, scale) -> Array:
    """log Cauchy(x; loc, scale) = −log(π·scale) − log(1 + t²), t = (x − loc)/scale."""
    loc, scale, _ = _params("log_prob", loc, scale)
    return -_log1p_square((x - loc) / scale) - jnp.log(scale) - math.log(math.pi)


def cdf(x, loc, scale) -> Array:
    """½ + atan(t)/π, written as atan2(1, −t)/π so the lower tail keeps its relative precision."""
    loc, scale, _ = _params("cdf", loc, scale)
    t = (x - loc) / scale
    return jnp.arctan2(jnp.ones_like(t), -t) / math.pi


def entropy(loc, scale) -> Array:
    loc, scale, batch_shape = _params("entropy", loc, scale)
    return jnp.broadcast_to(math.log(4.0 * math.pi) + jnp.log(scale), batch_shape)
