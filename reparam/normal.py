"""Normal N(loc, scale²): z = loc + scale · ε with ε ~ N(0, 1).

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


def _params(where: str, loc, scale) -> tuple[Array, Array, tuple[int, ...]]:
    (loc, scale), batch_shape = checks.broadcast(f"reparam.normal.{where}", loc=loc, scale=scale)
    checks.positive(f"reparam.normal.{where}", "scale", scale)
    return loc, scale, batch_shape


def noise(key: Array, shape: tuple[int, ...] = (), dtype=None) -> Array:
    """Standard normal ε of `shape`; dtype defaults to JAX's default float (float32 unless x64)."""
    key = checks.key(key, "reparam.normal.noise")
    return jax.random.normal(key, shape, checks.noise_dtype(dtype))


def transform(eps: Array, loc, scale) -> Array:
    """z = loc + scale · ε; shape broadcast(ε, loc, scale)."""
    loc, scale, _ = _params("transform", loc, scale)
    return loc + scale * eps


def sample(key: Array, loc, scale, sample_shape=()) -> Array:
    """Reparameterized draw of shape `sample_shape + broadcast(loc, scale).shape`."""
    key = checks.key(key, "reparam.normal.sample")
    loc, scale, batch_shape = _params("sample", loc, scale)
    shape = checks.sample_shape("reparam.normal.sample", sample_shape) + batch_shape
    return loc + scale * jax.random.normal(key, shape, loc.dtype)


def sample_and_log_prob(key: Array, loc, scale, sample_shape=()) -> tuple[Array, Array]:
    """Draw z and its log-density, computed from ε (no subtraction of loc, no division)."""
    key = checks.key(key, "reparam.normal.sample_and_log_prob")
    loc, scale, batch_shape = _params("sample_and_log_prob", loc, scale)
    shape = checks.sample_shape("reparam.normal.sample_and_log_prob", sample_shape) + batch_shape
    eps = jax.random.normal(key, shape, loc.dtype)
    return loc + scale * eps, -0.5 * eps**2 - jnp.log(scale) - 0.5 * math.log(2 * math.pi)


def log_prob(x, loc, scale) -> Array:
    """log N(x; loc, scale²), shape broadcast(x, loc, scale)."""
    loc, scale, _ = _params("log_prob", loc, scale)
    z = (x - loc) / scale
    return -0.5 * z**2 - jnp.log(scale) - 0.5 * math.log(2 * math.pi)


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
