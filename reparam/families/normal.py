"""Normal N(loc, scale²): z = loc + scale · ε with ε ~ N(0, 1).

Shapes: parameters broadcast to a batch shape B; samples have shape `sample_shape + B`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import ndtr

from reparam.families import location_scale

Array = jax.Array

PARAMS = ("loc", "scale")
EVENT_NDIMS = 0


def _standard_log_prob(eps: Array) -> Array:
    return -0.5 * eps**2 - 0.5 * math.log(2 * math.pi)


_LAW = location_scale.Law("normal", jax.random.normal, _standard_log_prob)


def _params(function: str, loc, scale) -> tuple[Array, Array, tuple[int, ...]]:
    return location_scale.params(_LAW, function, loc, scale)


def noise(key: Array, shape: tuple[int, ...] = (), dtype=None) -> Array:
    """Standard noise ε ~ N(0, 1) of `shape`; dtype defaults to JAX's default float (float32
    unless x64 is enabled)."""
    return location_scale.noise(key, _LAW, shape, dtype)


def transform(eps: Array, loc, scale) -> Array:
    """z = loc + scale · ε ~ N(loc, scale²); shape broadcast(ε, loc, scale)."""
    return location_scale.transform(_LAW, eps, loc, scale)


def noise_shape(sample_shape, loc, scale) -> tuple[int, ...]:
    """The shape of ε that `sample(key, loc, scale, sample_shape)` draws: `sample_shape + B`."""
    return location_scale.noise_shape(_LAW, sample_shape, loc, scale)


def sample(key: Array, loc, scale, sample_shape=()) -> Array:
    """Reparameterized N(loc, scale²) draw of shape `sample_shape + broadcast(loc, scale).shape`;
    bit for bit `transform(noise(key, noise_shape(sample_shape, loc, scale)), loc, scale)`."""
    return location_scale.sample(key, _LAW, loc, scale, sample_shape)


def sample_and_log_prob(key: Array, loc, scale, sample_shape=()) -> tuple[Array, Array]:
    """The draw of `sample` and its log-density, computed from ε (log p(ε) − log scale)."""
    return location_scale.sample_and_log_prob(key, _LAW, loc, scale, sample_shape)


def log_prob(x, loc, scale) -> Array:
    """log N(x; loc, scale²) = −½((x − loc)/scale)² − log(scale) − ½ log(2π); shape broadcast(x,
    loc, scale)."""
    return location_scale.log_prob(_LAW, x, loc, scale)


def cdf(x, loc, scale) -> Array:
    loc, scale, _ = _params("cdf", loc, scale)
    return ndtr((x - loc) / scale)


def entropy(loc, scale) -> Array:
    loc, scale, batch_shape = _params("entropy", loc, scale)
    return jnp.broadcast_to(0.5 * math.log(2 * math.pi * math.e) + jnp.log(scale), batch_shape)


def mean(loc, scale) -> Array:
    loc, scale, batch_shape = _params("mean", loc, scale)
    return jnp.broadcast_to(loc, batch_shape)


def variance(loc, scale) -> Array:
    loc, scale, batch_shape = _params("variance", loc, scale)
    return jnp.broadcast_to(scale**2, batch_shape)


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
