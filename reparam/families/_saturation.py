"""Draws beyond the float range, clamped instead of ±inf: reparam.student_t's rule, shared.

A draw computed as exp(log z) overflows to +inf where the distribution itself passes the float
range (a Pareto or inverse gamma of tiny concentration), and then reverse-mode gradients through
the whole array are NaN (0·inf). Where log z, or the log of its gradients, comes within a factor
2^24 of the dtype's largest finite value, :func:`saturating_exp` returns that clamped value
finfo(dtype).max · 2^−24 instead (sums of up to 2^24 of them stay finite), with zero gradient.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

HEADROOM_BITS = 24


def limit(dtype) -> float:
    """finfo(dtype).max · 2^−24, the value of a saturated draw."""
    return float(np.finfo(dtype).max) * 2.0**-HEADROOM_BITS


def saturating_exp(exponent: Array, log_bound: Array, factor: Array = 1.0) -> tuple[Array, Array]:
    """(factor · exp(exponent), saturated), elementwise.

    `log_bound` bounds the log of the value and of its partial derivatives; where it exceeds
    log(limit) the value is `limit` with zero gradient. The bound carries no gradient. `factor`
    (positive, e.g. a scale) multiplies outside the exponential, so that factor · exp(0) is exactly
    `factor` (a support's edge stays in the support).
    """
    clamp = limit(exponent.dtype)
    saturated = jax.lax.stop_gradient(log_bound) > math.log(clamp)
    # Double `where`: the unselected branch must stay finite, or its zero cotangent times an
    # infinite partial derivative would still give NaN gradients.
    safe = jnp.where(saturated, jnp.zeros_like(exponent), exponent)
    return jnp.where(saturated, clamp, factor * jnp.exp(safe)), saturated


__all__ = ["limit", "saturating_exp"]
