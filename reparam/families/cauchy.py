"""Cauchy(loc, scale): z = loc + scale · ε with ε = tan(π(u − ½)) ~ Cauchy(0, 1).

The Cauchy has no mean or variance, so this module defines neither. Shapes: parameters broadcast
to a batch shape B; samples have shape `sample_shape + B`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from reparam.families import location_scale

Array = jax.Array

PARAMS = ("loc", "scale")
EVENT_NDIMS = 0


def _draw(key: Array, shape: tuple[int, ...], dtype) -> Array:
    # jax.random.cauchy draws u from [eps, 1), so tan(π(u − ½)) stays finite (|ε| ≲ 1/(π·eps)).
    return jax.random.cauchy(key, shape, dtype)


def _log1p_square(t: Array) -> Array:
    """log(1 + t²) without overflowing t² for |t| > 1e154: 2·log|t| + log1p(t⁻²) there."""
    big = jnp.abs(t) > 1.0
    # Double `where` so that neither branch sees an input that makes its gradient NaN.
    t_big = jnp.where(big, t, 1.0)
    t_small = jnp.where(big, 0.0, t)
    return jnp.where(
        big, 2.0 * jnp.log(jnp.abs(t_big)) + jnp.log1p(t_big**-2), jnp.log1p(t_small**2)
    )


def _standard_log_prob(eps: Array) -> Array:
    return -_log1p_square(eps) - math.log(math.pi)


_LAW = location_scale.Law("cauchy", _draw, _standard_log_prob)


def _params(function: str, loc, scale) -> tuple[Array, Array, tuple[int, ...]]:
    return location_scale.params(_LAW, function, loc, scale)


def noise(key: Array, shape: tuple[int, ...] = (), dtype=None) -> Array:
    """Standard noise ε ~ Cauchy(0, 1) of `shape`; dtype defaults to JAX's default float (float32
    unless x64 is enabled)."""
    return location_scale.noise(key, _LAW, shape, dtype)


def transform(eps: Array, loc, scale) -> Array:
    """z = loc + scale · ε ~ Cauchy(loc, scale); shape broadcast(ε, loc, scale)."""
    return location_scale.transform(_LAW, eps, loc, scale)


def noise_shape(sample_shape, loc, scale) -> tuple[int, ...]:
    """The shape of ε that `sample(key, loc, scale, sample_shape)` draws: `sample_shape + B`."""
    return location_scale.noise_shape(_LAW, sample_shape, loc, scale)


def sample(key: Array, loc, scale, sample_shape=()) -> Array:
    """Reparameterized Cauchy(loc, scale) draw of shape `sample_shape + broadcast(loc,
    scale).shape`; bit for bit `transform(noise(key, noise_shape(sample_shape, loc, scale)),
    loc, scale)`."""
    return location_scale.sample(key, _LAW, loc, scale, sample_shape)


def sample_and_log_prob(key: Array, loc, scale, sample_shape=()) -> tuple[Array, Array]:
    """The draw of `sample` and its log-density, computed from ε (log p(ε) − log scale)."""
    return location_scale.sample_and_log_prob(key, _LAW, loc, scale, sample_shape)


def log_prob(x, loc, scale) -> Array:
    """log Cauchy(x; loc, scale) = −log(1 + t²) − log(π scale), t = (x − loc)/scale; shape
    broadcast(x, loc, scale)."""
    return location_scale.log_prob(_LAW, x, loc, scale)


def cdf(x, loc, scale) -> Array:
    """½ + atan(t)/π, written as atan2(1, −t)/π so the lower tail keeps its relative precision."""
    loc, scale, _ = _params("cdf", loc, scale)
    t = (x - loc) / scale
    return jnp.arctan2(jnp.ones_like(t), -t) / math.pi


def entropy(loc, scale) -> Array:
    loc, scale, batch_shape = _params("entropy", loc, scale)
    return jnp.broadcast_to(math.log(4.0 * math.pi) + jnp.log(scale), batch_shape)


__all__ = [
    "EVENT_NDIMS",
    "PARAMS",
    "cdf",
    "entropy",
    "log_prob",
    "noise",
    "noise_shape",
    "sample",
    "sample_and_log_prob",
    "transform",
]
