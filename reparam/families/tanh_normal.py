"""Tanh-normal: z = tanh(u), u = loc + scale · ε, ε ~ N(0, 1) — the squashed Gaussian of SAC.

The density follows from the change of variables u = atanh(z):

    log p(z) = log N(u; loc, scale²) − log(1 − tanh²u),
    log(1 − tanh²u) = 2 (log 2 − u − softplus(−2u)),

the right-hand side being finite for every u, whereas 1 − z² underflows to 0 once |u| ≳ 9 in
float32 (≳ 19 in float64). `log_prob(z)` can only see z, so it clips z into the open interval
(−1, 1) of its dtype before atanh: an action stored as exactly ±1 gets a large but finite
log-density. `sample_and_log_prob` keeps u and is exact even where tanh(u) rounds to ±1 (the
distrax / SAC recipe), so use it for entropy terms of a policy.

mean, variance and entropy have no closed form and are not provided.

Shapes: parameters broadcast to a batch shape B; samples have shape `sample_shape + B`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtr

from reparam import checks

Array = jax.Array

PARAMS = ("loc", "scale")
EVENT_NDIMS = 0

_LOG_2 = math.log(2.0)
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _params(where: str, loc, scale) -> tuple[Array, Array, tuple[int, ...]]:
    where = f"reparam.tanh_normal.{where}"
    (loc, scale), batch_shape = checks.broadcast(where, loc=loc, scale=scale)
    checks.positive(where, "scale", scale)
    return loc, scale, batch_shape


def log_det_jacobian(u: Array) -> Array:
    """log |d tanh(u)/du| = log(1 − tanh²u) = 2 (log 2 − u − softplus(−2u)), finite for all u."""
    return 2.0 * (_LOG_2 - u - jax.nn.softplus(-2.0 * u))


def _pre_tanh(x: Array) -> Array:
    """atanh(x) after clipping x into (−1, 1): the largest float below 1 is 1 − epsneg."""
    bound = 1.0 - float(np.finfo(x.dtype).epsneg)
    return jnp.arctanh(jnp.clip(x, -bound, bound))


def noise(key: Array, shape: tuple[int, ...] = (), dtype=None) -> Array:
    """Standard normal ε of `shape`."""
    key = checks.key(key, "reparam.tanh_normal.noise")
    shape = checks.sample_shape("reparam.tanh_normal.noise", shape, "shape")
    return jax.random.normal(key, shape, checks.noise_dtype(dtype))


def transform(eps: Array, loc, scale) -> Array:
    """z = tanh(loc + scale · ε); shape broadcast(ε, loc, scale)."""
    loc, scale, batch_shape = _params("transform", loc, scale)
    checks.broadcastable("reparam.tanh_normal.transform", "eps", jnp.shape(eps), batch_shape)
    return jnp.tanh(loc + scale * eps)


def noise_shape(sample_shape, loc, scale) -> tuple[int, ...]:
    """The shape of ε that `sample(key, loc, scale, sample_shape)` draws:
    `sample_shape + B`, the sample's shape
    (for callers that bring their own ε: quasi-Monte-Carlo, common random numbers)."""
    where = "reparam.tanh_normal.noise_shape"
    _, _, batch_shape = _params("noise_shape", loc, scale)
    return checks.sample_shape(where, sample_shape) + batch_shape


def sample(key: Array, loc, scale, sample_shape=()) -> Array:
    """Reparameterized draw in [−1, 1] of shape `sample_shape + broadcast(loc, scale).shape`.

    Values may round to exactly ±1 for |loc + scale ε| ≳ 9 (float32); use
    `sample_and_log_prob` when the density of such draws is needed.
    """
    key = checks.key(key, "reparam.tanh_normal.sample")
    loc, scale, batch_shape = _params("sample", loc, scale)
    shape = checks.sample_shape("reparam.tanh_normal.sample", sample_shape) + batch_shape
    return jnp.tanh(loc + scale * jax.random.normal(key, shape, loc.dtype))


def sample_and_log_prob(key: Array, loc, scale, sample_shape=()) -> tuple[Array, Array]:
    """Draw z (as `sample`) and log p(z) from the pre-tanh u: exact even where z rounds to ±1."""
    where = "reparam.tanh_normal.sample_and_log_prob"
    key = checks.key(key, where)
    loc, scale, batch_shape = _params("sample_and_log_prob", loc, scale)
    eps = jax.random.normal(key, checks.sample_shape(where, sample_shape) + batch_shape, loc.dtype)
    u = loc + scale * eps
    log_p = -0.5 * eps**2 - jnp.log(scale) - _HALF_LOG_2PI - log_det_jacobian(u)
    return jnp.tanh(u), log_p


def log_prob(x, loc, scale) -> Array:
    """log p(x) for x in [−1, 1] (clipped into the open interval); shape broadcast(x, loc, scale).

    Finite at x = ±1 (and at actions ±(1 − 1e-7) in float32), where 1 − x² would round to 0.
    """
    loc, scale, batch_shape = _params("log_prob", loc, scale)
    checks.broadcastable("reparam.tanh_normal.log_prob", "x", jnp.shape(x), batch_shape)
    u = _pre_tanh(jnp.asarray(x, jnp.result_type(x, loc)))
    standardized = (u - loc) / scale
    return -0.5 * standardized**2 - jnp.log(scale) - _HALF_LOG_2PI - log_det_jacobian(u)


def cdf(x, loc, scale) -> Array:
    """P(z ≤ x) = Φ((atanh x − loc)/scale); 0 below −1 and 1 above 1."""
    loc, scale, _ = _params("cdf", loc, scale)
    x = jnp.clip(jnp.asarray(x, jnp.result_type(x, loc)), -1.0, 1.0)
    return ndtr((jnp.arctanh(x) - loc) / scale)


__all__ = [
    "EVENT_NDIMS",
    "PARAMS",
    "cdf",
    "log_det_jacobian",
    "log_prob",
    "noise",
    "noise_shape",
    "sample",
    "sample_and_log_prob",
    "transform",
]
