"""Logistic(loc, scale): z = loc + scale · ε with ε ~ Logistic(0, 1) = log(u) − log(1 − u).

Shapes: parameters broadcast to a batch shape B; samples have shape `sample_shape + B`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from reparam.families import location_scale

Array = jax.Array

PARAMS = ("loc", "scale")
EVENT_NDIMS = 0


def _draw(key: Array, shape: tuple[int, ...], dtype) -> Array:
    # jax.random.logistic draws u from [tiny, 1) and returns log(u) − log1p(−u): always finite.
    return jax.random.logistic(key, shape, dtype)


def _standard_log_prob(t: Array) -> Array:
    # log(e^{−t} / (1 + e^{−t})²) = −t − 2·softplus(−t): no overflow of e^{−t} for t ≪ 0.
    return -t - 2.0 * jax.nn.softplus(-t)


_params, noise, transform, sample, sample_and_log_prob, log_prob = location_scale.contract(
    "logistic", _draw, _standard_log_prob
)


def cdf(x, loc, scale) -> Array:
    loc, scale, _ = _params("cdf", loc, scale)
    return jax.nn.sigmoid((x - loc) / scale)


def entropy(loc, scale) -> Array:
    loc, scale, batch_shape = _params("entropy", loc, scale)
    return jnp.broadcast_to(2.0 + jnp.log(scale), batch_shape)


def mean(loc, scale) -> Array:
    loc, scale, batch_shape = _params("mean", loc, scale)
    return jnp.broadcast_to(loc, batch_shape)


def variance(loc, scale) -> Array:
    loc, scale, batch_shape = _params("variance", loc, scale)
    return jnp.broadcast_to((math.pi**2 / 3.0) * scale**2, batch_shape)
