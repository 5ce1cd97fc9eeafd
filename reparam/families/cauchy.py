"""Cauchy(loc, scale): z = loc + scale · ε with ε = tan(π(u − ½)) ~ Cauchy(0, 1).

The Cauchy has no mean or variance, so this module defines neither. Shapes: parameters broadcast
to a batch shape B; samples have shape `sample_shape + B`.
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
    # jax.random.cauchy draws u from [eps, 1), so tan(π(u − ½)) stays finite (|ε| ≲ 1/(π·eps)).
    return jax.random.cauchy(key, shape, dtype)


def _log1p_square(t: Array) -> Array:
    """log(1 + t²) without overflowing t² for |t| > 1e154: 2·log|t| + log1p(t⁻²) there."""
    big = jnp.abs(t) > 1.0
    # Double `where` so that neither branch sees an input that makes its gradient NaN.
    t_big = jnp.where(big, t, 1.0)
    t_small = jnp.where(big, 0.0, t)
    return jnp.where(
        big, 2.0 * jnp.log(jnp.abs(t_big)) + jnp.log1p(t_big**-2), jnp.log1p(t_small**2)
    )


def _standard_log_prob(eps: Array) -> Array:
    return -_log1p_square(eps) - math.log(math.pi)


_params, noise, transform, sample, sample_and_log_prob, log_prob = location_scale.contract(
    "cauchy", _draw, _standard_log_prob
)


def cdf(x, loc, scale) -> Array:
    """½ + atan(t)/π, written as atan2(1, −t)/π so the lower tail keeps its relative precision."""
    loc, scale, _ = _params("cdf", loc, scale)
    t = (x - loc) / scale
    return jnp.arctan2(jnp.ones_like(t), -t) / math.pi


def entropy(loc, scale) -> Array:
    loc, scale, batch_shape = _params("entropy", loc, scale)
    return jnp.broadcast_to(math.log(4.0 * math.pi) + jnp.log(scale), batch_shape)
