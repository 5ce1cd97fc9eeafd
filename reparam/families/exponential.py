"""Exponential(rate): z = ε / rate with ε ~ Exponential(1), density rate · exp(−rate · z), z ≥ 0.

Shapes: `rate` has the batch shape B; samples have shape `sample_shape + B`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from reparam import checks

Array = jax.Array

PARAMS = ("rate",)
EVENT_NDIMS = 0


def _params(where: str, rate) -> tuple[Array, tuple[int, ...]]:
    (rate,), batch_shape = checks.broadcast(f"reparam.exponential.{where}", rate=rate)
    checks.positive(f"reparam.exponential.{where}", "rate", rate)
    return rate, batch_shape


def _noise(key: Array, shape: tuple[int, ...], dtype) -> Array:
    # jax.random.exponential returns −log1p(−u) for u in [0, 1): finite, and exactly 0 only when
    # u = 0, where z = 0 is still in the support and dz/drate = −ε/rate² = 0.
    return jax.random.exponential(key, shape, dtype)


def _transform(eps: Array, rate: Array) -> Array:
    return eps / rate


def noise(key: Array, shape: tuple[int, ...] = (), dtype=None) -> Array:
    """Standard exponential ε ≥ 0 of `shape`; dtype defaults to JAX's default float."""
    key = checks.key(key, "reparam.exponential.noise")
    shape = checks.sample_shape("reparam.exponential.noise", shape, "shape")
    return _noise(key, shape, checks.noise_dtype(dtype))


def transform(eps: Array, rate) -> Array:
    """z = ε / rate; shape broadcast(ε, rate)."""
    rate, batch_shape = _params("transform", rate)
    checks.broadcastable("reparam.exponential.transform", "eps", jnp.shape(eps), batch_shape)
    return _transform(eps, rate)


def noise_shape(sample_shape, rate) -> tuple[int, ...]:
    """The shape of ε that `sample(key, rate, sample_shape)` draws:
    `sample_shape + B`, the sample's shape
    (for callers that bring their own ε: quasi-Monte-Carlo, common random numbers)."""
    where = "reparam.exponential.noise_shape"
    rate, batch_shape = _params("noise_shape", rate)
    return checks.sample_shape(where, sample_shape) + batch_shape


def sample(key: Array, rate, sample_shape=()) -> Array:
    """Reparameterized draw of shape `sample_shape + rate.shape`."""
    key = checks.key(key, "reparam.exponential.sample")
    rate, batch_shape = _params("sample", rate)
    shape = checks.sample_shape("reparam.exponential.sample", sample_shape) + batch_shape
    return _transform(_noise(key, shape, rate.dtype), rate)


def sample_and_log_prob(key: Array, rate, sample_shape=()) -> tuple[Array, Array]:
    """Draw z and its log-density log(rate) − ε, computed from ε."""
    key = checks.key(key, "reparam.exponential.sample_and_log_prob")
    rate, batch_shape = _params("sample_and_log_prob", rate)
    shape = checks.sample_shape("reparam.exponential.sample_and_log_prob", sample_shape)
    eps = _noise(key, shape + batch_shape, rate.dtype)
    return _transform(eps, rate), jnp.log(rate) - eps


def log_prob(x, rate) -> Array:
    """log(rate) − rate · x for x ≥ 0, −inf for x < 0; shape broadcast(x, rate)."""
    rate, batch_shape = _params("log_prob", rate)
    checks.broadcastable("reparam.exponential.log_prob", "x", jnp.shape(x), batch_shape)
    return jnp.where(x >= 0, jnp.log(rate) - rate * x, -jnp.inf)


def cdf(x, rate) -> Array:
    """1 − exp(−rate · x) as −expm1(−rate · x), accurate for small rate · x; 0 for x < 0."""
    rate, _ = _params("cdf", rate)
    return jnp.where(x >= 0, -jnp.expm1(-rate * jnp.maximum(x, 0.0)), 0.0)


def entropy(rate) -> Array:
    rate, batch_shape = _params("entropy", rate)
    return jnp.broadcast_to(1.0 - jnp.log(rate), batch_shape)


def mean(rate) -> Array:
    rate, batch_shape = _params("mean", rate)
    return jnp.broadcast_to(1.0 / rate, batch_shape)


def variance(rate) -> Array:
    rate, batch_shape = _params("variance", rate)
    return jnp.broadcast_to(rate**-2, batch_shape)


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
