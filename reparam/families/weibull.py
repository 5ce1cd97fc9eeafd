"""Weibull(scale, concentration): z = scale · ε^(1/concentration) with ε ~ Exponential(1).

CDF 1 − exp(−(z/scale)^concentration) on z ≥ 0 (scipy: weibull_min(c=concentration,
scale=scale)). The power is taken in log space, exp(log(ε)/concentration), and ε is drawn from
(0, ∞), never 0, so that gradients stay finite. For small concentrations the distribution itself
spans more than the float range; there samples saturate at 0 or inf, but never become NaN.

Shapes: parameters broadcast to a batch shape B; samples have shape `sample_shape + B`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln

from reparam import checks

Array = jax.Array

PARAMS = ("scale", "concentration")
EVENT_NDIMS = 0


def _params(where: str, scale, concentration) -> tuple[Array, Array, tuple[int, ...]]:
    name = f"reparam.weibull.{where}"
    (scale, concentration), batch_shape = checks.broadcast(
        name, scale=scale, concentration=concentration
    )
    checks.positive(name, "scale", scale)
    checks.positive(name, "concentration", concentration)
    return scale, concentration, batch_shape


def _noise(key: Array, shape: tuple[int, ...], dtype) -> Array:
    # u in [tiny, 1) rather than jax.random.exponential's [0, 1): ε = −log1p(−u) > 0, so that
    # log ε is finite and d z/d concentration = −z·log(ε)/concentration² is never 0·inf.
    u = jax.random.uniform(key, shape, dtype, minval=jnp.finfo(dtype).tiny, maxval=1.0)
    return -jnp.log1p(-u)


def _transform(eps: Array, scale: Array, concentration: Array) -> Array:
    return scale * jnp.exp(jnp.log(eps) / concentration)


def noise(key: Array, shape: tuple[int, ...] = (), dtype=None) -> Array:
    """Standard exponential ε > 0 of `shape`; dtype defaults to JAX's default float."""
    key = checks.key(key, "reparam.weibull.noise")
    shape = checks.sample_shape("reparam.weibull.noise", shape, "shape")
    return _noise(key, shape, checks.noise_dtype(dtype))


def transform(eps: Array, scale, concentration) -> Array:
    """z = scale · exp(log(ε)/concentration); shape broadcast(ε, scale, concentration)."""
    scale, concentration, batch_shape = _params("transform", scale, concentration)
    checks.broadcastable("reparam.weibull.transform", "eps", jnp.shape(eps), batch_shape)
    return _transform(eps, scale, concentration)


def noise_shape(sample_shape, scale, concentration) -> tuple[int, ...]:
    """The shape of ε that `sample(key, scale, concentration, sample_shape)` draws:
    `sample_shape + B`, the sample's shape
    (for callers that bring their own ε: quasi-Monte-Carlo, common random numbers)."""
    where = "reparam.weibull.noise_shape"
    _, _, batch_shape = _params("noise_shape", scale, concentration)
    return checks.sample_shape(where, sample_shape) + batch_shape


def sample(key: Array, scale, concentration, sample_shape=()) -> Array:
    """Reparameterized draw of shape `sample_shape + broadcast(scale, concentration).shape`."""
    key = checks.key(key, "reparam.weibull.sample")
    scale, concentration, batch_shape = _params("sample", scale, concentration)
    shape = checks.sample_shape("reparam.weibull.sample", sample_shape) + batch_shape
    return _transform(_noise(key, shape, scale.dtype), scale, concentration)


def sample_and_log_prob(key: Array, scale, concentration, sample_shape=()) -> tuple[Array, Array]:
    """Draw z and its log-density from ε: (z/scale)^k = ε and log(z/scale) = log(ε)/k, so

    log p = log k − log scale + (1 − 1/k)·log ε − ε, exact even where z saturates.
    """
    key = checks.key(key, "reparam.weibull.sample_and_log_prob")
    scale, concentration, batch_shape = _params("sample_and_log_prob", scale, concentration)
    shape = checks.sample_shape("reparam.weibull.sample_and_log_prob", sample_shape) + batch_shape
    eps = _noise(key, shape, scale.dtype)
    log_prob_ = (
        jnp.log(concentration) - jnp.log(scale) + (1.0 - 1.0 / concentration) * jnp.log(eps) - eps
    )
    return _transform(eps, scale, concentration), log_prob_


def log_prob(x, scale, concentration) -> Array:
    """log Weibull(x; scale, concentration); −inf for x < 0. Shape broadcast(x, scale, k).

    At x = 0 the density is the limit: +inf for k < 1, 1/scale for k = 1, 0 for k > 1.
    """
    scale, concentration, batch_shape = _params("log_prob", scale, concentration)
    checks.broadcastable("reparam.weibull.log_prob", "x", jnp.shape(x), batch_shape)
    positive = x > 0
    # Off the support the logarithm sees `scale` (log_y = 0), so that no gradient is NaN.
    log_y = jnp.log(jnp.where(positive, x, scale)) - jnp.log(scale)
    inside = (
        jnp.log(concentration)
        - jnp.log(scale)
        + (concentration - 1.0) * log_y
        - jnp.exp(concentration * log_y)
    )
    at_zero = jnp.where(
        concentration < 1.0,
        jnp.inf,
        jnp.where(concentration > 1.0, -jnp.inf, -jnp.log(scale)),
    )
    return jnp.where(positive, inside, jnp.where(x == 0, at_zero, -jnp.inf))


def cdf(x, scale, concentration) -> Array:
    """1 − exp(−(x/scale)^k) as −expm1(·), accurate in the lower tail; 0 for x ≤ 0."""
    scale, concentration, _ = _params("cdf", scale, concentration)
    positive = x > 0
    log_y = jnp.log(jnp.where(positive, x, scale)) - jnp.log(scale)
    return jnp.where(positive, -jnp.expm1(-jnp.exp(concentration * log_y)), 0.0)


def entropy(scale, concentration) -> Array:
    """γ·(1 − 1/k) + log(scale/k) + 1, with γ Euler's constant."""
    scale, concentration, batch_shape = _params("entropy", scale, concentration)
    value = (
        np.euler_gamma * (1.0 - 1.0 / concentration) + jnp.log(scale) - jnp.log(concentration) + 1.0
    )
    return jnp.broadcast_to(value, batch_shape)


def mean(scale, concentration) -> Array:
    """scale · Γ(1 + 1/k), through gammaln so that small k overflows only when the mean does."""
    scale, concentration, batch_shape = _params("mean", scale, concentration)
    return jnp.broadcast_to(scale * jnp.exp(gammaln(1.0 + 1.0 / concentration)), batch_shape)


def variance(scale, concentration) -> Array:
    """scale² · (Γ(1 + 2/k) − Γ(1 + 1/k)²), as Γ(1 + 1/k)²·expm1(·) to avoid cancellation."""
    scale, concentration, batch_shape = _params("variance", scale, concentration)
    g1 = gammaln(1.0 + 1.0 / concentration)
    g2 = gammaln(1.0 + 2.0 / concentration)
    return jnp.broadcast_to(scale**2 * jnp.exp(2.0 * g1) * jnp.expm1(g2 - 2.0 * g1), batch_shape)


__all__ = [
    "EVENT_NDIMS",
    "PARAMS",
    "cdf",
    "entropy",
    "log_prob",
    "mean",
    "noise",
    "noise_shape",
    "sample",
    "sample_and_log_prob",
    "transform",
    "variance",
]
