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


_params, noise, transform, sample, sample_and_log_prob, log_prob = location_scale.contract(
    "normal", jax.random.normal, _standard_log_prob
)


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
