"""Laplace(loc, scale): z = loc + scale · ε with ε ~ Laplace(0, 1), density exp(−|ε|)/2.

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
    # jax.random.laplace draws u from the open interval (−1, 1) and returns sign(u)·log1p(−|u|),
    # so ε is always finite (|ε| ≤ −log(epsneg), about 37 in float64).
    return jax.random.laplace(key, shape, dtype)


def _standard_log_prob(eps: Array) -> Array:
    return -jnp.abs(eps) - math.log(2.0)


_params, noise, transform, sample, sample_and_log_prob, log_prob = location_scale.contract(
    "laplace", _draw, _standard_log_prob
)


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
