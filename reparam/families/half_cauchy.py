"""HalfCauchy(scale): z = scale · ε with ε = |Cauchy(0, 1)|, density 2/(π scale (1 + (z/scale)²)).

The Cauchy folded at 0 (scipy: halfcauchy(scale=scale); TFP: HalfCauchy(loc=0, scale)): a
location-scale family with the location fixed at 0, so the contract is `location_scale`'s with
loc = 0. It has no mean or variance, so this module defines neither.

Shapes: `scale` has the batch shape B; samples and ε have shape `sample_shape + B`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from reparam.families import location_scale
from reparam.families.cauchy import _log1p_square

Array = jax.Array

PARAMS = ("scale",)
EVENT_NDIMS = 0


def _draw(key: Array, shape: tuple[int, ...], dtype) -> Array:
    # jax.random.cauchy draws u from [eps, 1), so |tan(π(u − ½))| stays finite (≲ 1/(π·eps)).
    return jnp.abs(jax.random.cauchy(key, shape, dtype))


def _standard_log_prob(eps: Array) -> Array:
    return jnp.where(eps >= 0, math.log(2.0 / math.pi) - _log1p_square(eps), -jnp.inf)


_LAW = location_scale.Law("half_cauchy", _draw, _standard_log_prob)


def _params(function: str, scale) -> tuple[Array, tuple[int, ...]]:
    _, scale, batch_shape = location_scale.params(_LAW, function, 0.0, scale)
    return scale, batch_shape


def noise(key: Array, shape: tuple[int, ...] = (), dtype=None) -> Array:
    """Standard half-Cauchy ε = |Cauchy(0, 1)| ≥ 0 of `shape`; dtype defaults to JAX's default
    float (float32 unless x64 is enabled)."""
    return location_scale.noise(key, _LAW, shape, dtype)


def transform(eps: Array, scale) -> Array:
    """z = scale · ε ~ HalfCauchy(scale); shape broadcast(ε, scale)."""
    return location_scale.transform(_LAW, eps, 0.0, scale)


def noise_shape(sample_shape, scale) -> tuple[int, ...]:
    """The shape of ε that `sample(key, scale, sample_shape)` draws: `sample_shape + B`."""
    return location_scale.noise_shape(_LAW, sample_shape, 0.0, scale)


def sample(key: Array, scale, sample_shape=()) -> Array:
    """Reparameterized HalfCauchy(scale) draw of shape `sample_shape + scale.shape`; bit for bit
    `transform(noise(key, noise_shape(sample_shape, scale)), scale)`."""
    return location_scale.sample(key, _LAW, 0.0, scale, sample_shape)


def sample_and_log_prob(key: Array, scale, sample_shape=()) -> tuple[Array, Array]:
    """The draw of `sample` and its log-density log(2/π) − log(1 + ε²) − log scale, from ε."""
    return location_scale.sample_and_log_prob(key, _LAW, 0.0, scale, sample_shape)


def log_prob(x, scale) -> Array:
    """log(2/π) − log(1 + (x/scale)²) − log scale for x ≥ 0, −inf for x < 0; shape
    broadcast(x, scale)."""
    return location_scale.log_prob(_LAW, x, 0.0, scale)


def cdf(x, scale) -> Array:
    """P(z ≤ x) = (2/π)·atan(x/scale) for x ≥ 0, 0 below."""
    scale, _ = _params("cdf", scale)
    return jnp.arctan(jnp.maximum(jnp.asarray(x, scale.dtype), 0.0) / scale) * (2.0 / math.pi)


def entropy(scale) -> Array:
    """log(2π scale)."""
    scale, batch_shape = _params("entropy", scale)
    return jnp.broadcast_to(math.log(2.0 * math.pi) + jnp.log(scale), batch_shape)


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
