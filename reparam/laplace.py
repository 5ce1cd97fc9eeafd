"""Laplace(loc, scale): z = loc + scale · ε with ε ~ Laplace(0, 1), density exp(−|ε|)/2.

Shapes: parameters broadcast to a batch shape B; samples have shape `sample_shape + B`.
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
    (loc, scale), batch_shape = checks.broadcast(f"reparam.laplace.{where}", loc=loc, scale=scale)
    checks.positive(f"reparam.laplace.{where}", "scale", scale)
    return loc, scale, batch_shape


def _noise(key: Array, shape: tuple[int, ...], dtype) -> Array:
    # jax.random.laplace draws u from the open interval (−1, 1) and returns sign(u)·log1p(−|u|),
    # so ε is always finite (|ε| ≤ −log(epsneg), about 37 in float64).
    return jax.random.laplace(key, shape, dtype)


def _transform(eps: Array, loc: Array, scale: Array) -> Array:
    return loc + scale * eps


def noise(key: Array, shape: tuple[int, ...] = (), dtype=None) -> Array:
    """Standard Laplace ε of `shape`; dtype defaults to JAX's default float (float32 unless x64)."""
    key = checks.key(key, "reparam.laplace.noise")
    return _noise(key, shape, checks.noise_dtype(dtype))


def transform(eps: Array, loc, scale) -> Array:
    """z = loc + scale · ε; shape broadcast(ε, loc, scale)."""
    loc, scale, _ = _params("transform", loc, scale)
    return _transform(eps, loc, scale)


def sample(key: Array, loc, scale, sample_shape=()) -> Array:
    """Reparameterized draw of shape `sample_shape + broadcast(loc, scale).shape`."""
    key = checks.key(key, "reparam.laplace.sample")
    loc, scale, batch_shape = _params("sample", loc, scale)
    shape = checks.sample_shape("reparam.laplace.sample", sample_shape) + batch_shape
    return _transform(_noise(key, shape, loc.dtype), loc, scale)


def sample_and_log_prob(key: Array, loc, scale, sample_shape=()) -> tuple[Array, Array]:
    """Draw z and its log-density, computed from ε (no subtraction of loc, no division)."""
    key = checks.key(key, "reparam.laplace.sample_and_log_prob")
    loc, scale, batch_shape = _params("sample_and_log_prob", loc, scale)
    shape = checks.sample_shape("reparam.laplace.sample_and_log_prob", sample_shape) + batch_shape
    eps = _noise(key, shape, loc.dtype)
    return _transform(eps, loc, scale), -jnp.abs(eps) - jnp.log(scale) - math.log(2.0)


def log_prob(x, loc, scale) -> Array:
    """log Laplace(x; loc, scale) = −|x − loc|/scale − log(2·scale); shape broadcast(x, params)."""
    loc, scale, _ = _params("log_prob", loc, scale)
    return -jnp.abs(x - loc) / scale - jnp.log(scale) - math.log(2.0)


def cdf(x, loc, scale) -> Array:
    """P(z ≤ x); each tail is written as ½·exp(−|t|) so that neither side rounds to 0 or 1 early."""
    loc, scale, _ = _params("cdf", loc, scale)
    t = (x - loc) / scale
    lower = 0.5 * jnp.exp(-jnp.abs(t))
    return jnp.where(t < 0, lower, 1.0 - lower)


def entropy(loc, scale) -> Array:
    loc, scale, batch_shape = _params("entropy", loc, scale)
    return jnp.broadcast_to(1.0 + math.log(2.0) + jnp.log(scale), batch_shape)


def mean(loc, scale) -> Array:
    loc, scale, batch_shape = _params("mean", loc, scale)
    return jnp.broadcast_to(loc, batch_shape)


def variance(loc, scale) -> Array:
    loc, scale, batch_shape = _params("variance", loc, scale)
    return jnp.broadcast_to(2.0 * scale**2, batch_shape)
