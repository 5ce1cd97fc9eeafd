"""Gumbel(loc, scale) (maximum, scipy's gumbel_r): z = loc + scale · ε, ε = −log(−log u).

The CDF is exp(−exp(−(z − loc)/scale)). Shapes: parameters broadcast to a batch shape B;
samples have shape `sample_shape + B`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from reparam import checks

Array = jax.Array

PARAMS = ("loc", "scale")
EVENT_NDIMS = 0


def _params(where: str, loc, scale) -> tuple[Array, Array, tuple[int, ...]]:
    (loc, scale), batch_shape = checks.broadcast(f"reparam.gumbel.{where}", loc=loc, scale=scale)
    checks.positive(f"reparam.gumbel.{where}", "scale", scale)
    return loc, scale, batch_shape


def _noise(key: Array, shape: tuple[int, ...], dtype) -> Array:
    # jax.random.gumbel draws u from [tiny, 1), so −log(−log u) is finite at both ends.
    return jax.random.gumbel(key, shape, dtype)


def _transform(eps: Array, loc: Array, scale: Array) -> Array:
    return loc + scale * eps


def _standard_log_prob(t: Array) -> Array:
    return -t - jnp.exp(-t)


def noise(key: Array, shape: tuple[int, ...] = (), dtype=None) -> Array:
    """Standard Gumbel ε of `shape`; dtype defaults to JAX's default float."""
    key = checks.key(key, "reparam.gumbel.noise")
    return _noise(key, shape, checks.noise_dtype(dtype))


def transform(eps: Array, loc, scale) -> Array:
    """z = loc + scale · ε; shape broadcast(ε, loc, scale)."""
    loc, scale, _ = _params("transform", loc, scale)
    return _transform(eps, loc, scale)


def sample(key: Array, loc, scale, sample_shape=()) -> Array:
    """Reparameterized draw of shape `sample_shape + broadcast(loc, scale).shape`."""
    key = checks.key(key, "reparam.gumbel.sample")
    loc, scale, batch_shape = _params("sample", loc, scale)
    shape = checks.sample_shape("reparam.gumbel.sample", sample_shape) + batch_shape
    return _transform(_noise(key, shape, loc.dtype), loc, scale)


def sample_and_log_prob(key: Array, loc, scale, sample_shape=()) -> tuple[Array, Array]:
    """Draw z and its log-density, computed from ε (no subtraction of loc, no division)."""
    key = checks.key(key, "reparam.gumbel.sample_and_log_prob")
    loc, scale, batch_shape = _params("sample_and_log_prob", loc, scale)
    shape = checks.sample_shape("reparam.gumbel.sample_and_log_prob", sample_shape) + batch_shape
    eps = _noise(key, shape, loc.dtype)
    return _transform(eps, loc, scale), _standard_log_prob(eps) - jnp.log(scale)


def log_prob(x, loc, scale) -> Array:
    """log Gumbel(x; loc, scale) = −t − exp(−t) − log(scale), t = (x − loc)/scale."""
    loc, scale, _ = _params("log_prob", loc, scale)
    return _standard_log_prob((x - loc) / scale) - jnp.log(scale)


def cdf(x, loc, scale) -> Array:
    loc, scale, _ = _params("cdf", loc, scale)
    return jnp.exp(-jnp.exp(-(x - loc) / scale))


def entropy(loc, scale) -> Array:
    loc, scale, batch_shape = _params("entropy", loc, scale)
    return jnp.broadcast_to(jnp.log(scale) + np.euler_gamma + 1.0, batch_shape)


def mean(loc, scale) -> Array:
    """loc + γ·scale, with γ Euler's constant."""
    loc, scale, batch_shape = _params("mean", loc, scale)
    return jnp.broadcast_to(loc + np.euler_gamma * scale, batch_shape)


def variance(loc, scale) -> Array:
    loc, scale, batch_shape = _params("variance", loc, scale)
    return jnp.broadcast_to((math.pi**2 / 6.0) * scale**2, batch_shape)
