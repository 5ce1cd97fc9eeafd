"""Gumbel(loc, scale) (maximum, scipy's gumbel_r): z = loc + scale · ε, ε = −log(−log u).

The CDF is exp(−exp(−(z − loc)/scale)). Shapes: parameters broadcast to a batch shape B;
samples have shape `sample_shape + B`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from reparam.families import location_scale

Array = jax.Array

PARAMS = ("loc", "scale")
EVENT_NDIMS = 0


def _draw(key: Array, shape: tuple[int, ...], dtype) -> Array:
    # jax.random.gumbel draws u from [tiny, 1), so −log(−log u) is finite at both ends.
    return jax.random.gumbel(key, shape, dtype)


def _standard_log_prob(t: Array) -> Array:
    return -t - jnp.exp(-t)


_params, noise, transform, sample, sample_and_log_prob, log_prob = location_scale.contract(
    "gumbel", _draw, _standard_log_prob
)


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
