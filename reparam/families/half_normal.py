"""HalfNormal(scale): z = scale · ε with ε = |N(0, 1)|, density √(2/π)/scale · exp(−z²/(2 scale²)).

The normal folded at 0 (scipy: halfnorm(scale=scale); TFP: HalfNormal(scale)): a location-scale
family with the location fixed at 0, so the contract is `location_scale`'s with loc = 0.

Shapes: `scale` has the batch shape B; samples and ε have shape `sample_shape + B`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import erf

from reparam.families import location_scale

Array = jax.Array

PARAMS = ("scale",)
EVENT_NDIMS = 0

_LOG_NORMALIZER = 0.5 * math.log(2.0 / math.pi)  # log √(2/π), the density of ε at 0


def _draw(key: Array, shape: tuple[int, ...], dtype) -> Array:
    # |N(0, 1)|: jax.random.normal is finite for every draw, so ε is too.
    return jnp.abs(jax.random.normal(key, shape, dtype))


def _standard_log_prob(eps: Array) -> Array:
    return jnp.where(eps >= 0, _LOG_NORMALIZER - 0.5 * eps**2, -jnp.inf)


_LAW = location_scale.Law("half_normal", _draw, _standard_log_prob)


def _params(function: str, scale) -> tuple[Array, tuple[int, ...]]:
    _, scale, batch_shape = location_scale.params(_LAW, function, 0.0, scale)
    return scale, batch_shape


def noise(key: Array, shape: tuple[int, ...] = (), dtype=None) -> Array:
    """Standard half-normal ε = |N(0, 1)| ≥ 0 of `shape`; dtype defaults to JAX's default float
    (float32 unless x64 is enabled)."""
    return location_scale.noise(key, _LAW, shape, dtype)


def transform(eps: Array, scale) -> Array:
    """z = scale · ε ~ HalfNormal(scale); shape broadcast(ε, scale)."""
    return location_scale.transform(_LAW, eps, 0.0, scale)


def noise_shape(sample_shape, scale) -> tuple[int, ...]:
    """The shape of ε that `sample(key, scale, sample_shape)` draws: `sample_shape + B`."""
    return location_scale.noise_shape(_LAW, sample_shape, 0.0, scale)


def sample(key: Array, scale, sample_shape=()) -> Array:
    """Reparameterized HalfNormal(scale) draw of shape `sample_shape + scale.shape`; bit for bit
    `transform(noise(key, noise_shape(sample_shape, scale)), scale)`."""
    return location_scale.sample(key, _LAW, 0.0, scale, sample_shape)


def sample_and_log_prob(key: Array, scale, sample_shape=()) -> tuple[Array, Array]:
    """The draw of `sample` and its log-density log √(2/π) − ε²/2 − log scale, from ε."""
    return location_scale.sample_and_log_prob(key, _LAW, 0.0, scale, sample_shape)


def log_prob(x, scale) -> Array:
    """log √(2/π) − log scale − x²/(2 scale²) for x ≥ 0, −inf for x < 0; shape broadcast(x,
    scale)."""
    return location_scale.log_prob(_LAW, x, 0.0, scale)


def cdf(x, scale) -> Array:
    """P(z ≤ x) = erf(x/(scale·√2)) for x ≥ 0, 0 below."""
    scale, _ = _params("cdf", scale)
    return erf(jnp.maximum(jnp.asarray(x, scale.dtype), 0.0) / (scale * math.sqrt(2.0)))


def entropy(scale) -> Array:
    """½·log(π/2) + ½ + log scale."""
    scale, batch_shape = _params("entropy", scale)
    return jnp.broadcast_to(0.5 * math.log(0.5 * math.pi) + 0.5 + jnp.log(scale), batch_shape)


def mean(scale) -> Array:
    """scale · √(2/π)."""
    scale, batch_shape = _params("mean", scale)
    return jnp.broadcast_to(scale * math.sqrt(2.0 / math.pi), batch_shape)


def variance(scale) -> Array:
    """scale² · (1 − 2/π)."""
    scale, batch_shape = _params("variance", scale)
    return jnp.broadcast_to(scale**2 * (1.0 - 2.0 / math.pi), batch_shape)


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
