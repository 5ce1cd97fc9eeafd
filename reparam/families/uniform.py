"""Uniform(low, high): z = low + (high − low) · ε with ε ~ Uniform[0, 1).

Requires low < high elementwise. Shapes: parameters broadcast to a batch shape B; samples have
shape `sample_shape + B`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from reparam import checks

Array = jax.Array

PARAMS = ("low", "high")
EVENT_NDIMS = 0


def _params(where: str, low, high) -> tuple[Array, Array, tuple[int, ...]]:
    (low, high), batch_shape = checks.broadcast(f"reparam.uniform.{where}", low=low, high=high)
    checks.less(f"reparam.uniform.{where}", "low", low, "high", high)
    return low, high, batch_shape


def _transform(eps: Array, low: Array, high: Array) -> Array:
    return low + (high - low) * eps


def noise(key: Array, shape: tuple[int, ...] = (), dtype=None) -> Array:
    """ε ~ Uniform[0, 1) of `shape`; dtype defaults to JAX's default float."""
    key = checks.key(key, "reparam.uniform.noise")
    shape = checks.sample_shape("reparam.uniform.noise", shape, "shape")
    return jax.random.uniform(key, shape, checks.noise_dtype(dtype))


def transform(eps: Array, low, high) -> Array:
    """z = low + (high − low) · ε; shape broadcast(ε, low, high)."""
    low, high, batch_shape = _params("transform", low, high)
    checks.broadcastable("reparam.uniform.transform", "eps", jnp.shape(eps), batch_shape)
    return _transform(eps, low, high)


def noise_shape(sample_shape, low, high) -> tuple[int, ...]:
    """The shape of ε that `sample(key, low, high, sample_shape)` draws:
    `sample_shape + B`, the sample's shape
    (for callers that bring their own ε: quasi-Monte-Carlo, common random numbers)."""
    where = "reparam.uniform.noise_shape"
    _, _, batch_shape = _params("noise_shape", low, high)
    return checks.sample_shape(where, sample_shape) + batch_shape


def sample(key: Array, low, high, sample_shape=()) -> Array:
    """Reparameterized draw of shape `sample_shape + broadcast(low, high).shape`."""
    key = checks.key(key, "reparam.uniform.sample")
    low, high, batch_shape = _params("sample", low, high)
    shape = checks.sample_shape("reparam.uniform.sample", sample_shape) + batch_shape
    return _transform(jax.random.uniform(key, shape, low.dtype), low, high)


def sample_and_log_prob(key: Array, low, high, sample_shape=()) -> tuple[Array, Array]:
    """Draw z and its log-density −log(high − low), which does not depend on z."""
    key = checks.key(key, "reparam.uniform.sample_and_log_prob")
    low, high, batch_shape = _params("sample_and_log_prob", low, high)
    shape = checks.sample_shape("reparam.uniform.sample_and_log_prob", sample_shape) + batch_shape
    z = _transform(jax.random.uniform(key, shape, low.dtype), low, high)
    return z, jnp.broadcast_to(-jnp.log(high - low), shape)


def log_prob(x, low, high) -> Array:
    """−log(high − low) on [low, high], −inf elsewhere; shape broadcast(x, low, high)."""
    low, high, batch_shape = _params("log_prob", low, high)
    checks.broadcastable("reparam.uniform.log_prob", "x", jnp.shape(x), batch_shape)
    # The closed interval: rounding in low + (high − low)·ε can land exactly on `high`.
    inside = (x >= low) & (x <= high)
    return jnp.where(inside, -jnp.log(high - low), -jnp.inf)


def cdf(x, low, high) -> Array:
    low, high, _ = _params("cdf", low, high)
    return jnp.clip((x - low) / (high - low), 0.0, 1.0)


def entropy(low, high) -> Array:
    low, high, batch_shape = _params("entropy", low, high)
    return jnp.broadcast_to(jnp.log(high - low), batch_shape)


def mean(low, high) -> Array:
    low, high, batch_shape = _params("mean", low, high)
    return jnp.broadcast_to(low + 0.5 * (high - low), batch_shape)


def variance(low, high) -> Array:
    low, high, batch_shape = _params("variance", low, high)
    return jnp.broadcast_to((high - low) ** 2 / 12.0, batch_shape)


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
