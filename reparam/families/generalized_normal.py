"""GeneralizedNormal(loc, scale, power): the exponential power distribution.

Density β / (2·scale·Γ(1/β)) · exp(−|(z − loc)/scale|^β) (β = power; scipy: gennorm(beta=power,
loc=loc, scale=scale); TFP: GeneralizedNormal(loc, scale, power)). β = 2 is the normal with
standard deviation scale/√2, β = 1 the Laplace, β → ∞ the uniform on [loc − scale, loc + scale].

Sampling: |y|^β ~ Gamma(1/β, 1) for y = (z − loc)/scale, so z = loc + scale·S·G^(1/β) with a
random sign S = ±1 and G ~ Gamma(1/β, 1); G^(1/β) = exp(log G / β) with log G from
:func:`reparam.gamma.log_sample`, implicitly reparameterized in 1/β. The map is explicit in loc
and scale and implicit in the power; at fixed key the draw keeps its CDF, so dz/dβ =
−(∂F/∂β)(z)/p(z). There is no parameter-free ε (G's law depends on β), so this module defines no
`noise`/`transform`.

Saturation: for small β the distribution passes the float range (G ~ 1/β, so G^(1/β) ≈
(1/β)^(1/β), about 1e200 at β = 0.01; below β ≈ 0.007 in float64, 0.04 in float32). Draws whose
|z − loc|, or whose gradient with respect to scale or β, would come within a factor 2^24 of the
dtype's largest finite value are clamped to z = loc ± finfo(dtype).max · 2^−24 with gradient 1
with respect to loc and 0 with respect to scale and β (`reparam.families._saturation`, the rule
of reparam.student_t), instead of returning ±inf and NaN gradients. Large β is stable: log G / β
stays finite where G underflows.

Shapes: parameters broadcast to a batch shape B; samples have shape `sample_shape + B`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaincc, gammaln

from reparam import checks
from reparam.families._saturation import saturating_exp
from reparam.families.gamma import log_sample

Array = jax.Array

PARAMS = ("loc", "scale", "power")
EVENT_NDIMS = 0


def _params(where: str, loc, scale, power) -> tuple[Array, Array, Array, tuple[int, ...]]:
    name = f"reparam.generalized_normal.{where}"
    (loc, scale, power), batch_shape = checks.broadcast(name, loc=loc, scale=scale, power=power)
    checks.positive(name, "scale", scale)
    checks.positive(name, "power", power)
    return loc, scale, power, batch_shape


def _draw(key: Array, loc: Array, scale: Array, power: Array, shape) -> tuple[Array, Array, Array]:
    """(z, G, saturated) of `shape`: z = loc + S·scale·exp(log G / β), saturated as the module
    docstring says."""
    key_sign, key_gamma = jax.random.split(key)
    sign = jax.random.rademacher(key_sign, shape, loc.dtype)
    log_g = log_sample(key_gamma, 1.0 / power, shape)
    exponent = log_g / power
    # |∂z/∂scale| = m/scale; |∂z/∂β| ≤ m·(2 + 2|log G|)/β², from |d log G/da| ≤ (2 + |log G|)/a
    # at a = 1/β (the crude but safe bound of reparam.student_t) and ∂(log G/β)/∂β.
    log_bound = (
        jnp.log(scale) + exponent + jnp.log1p(1.0 / scale + (2.0 + 2.0 * jnp.abs(log_g)) / power**2)
    )
    magnitude, saturated = saturating_exp(exponent, log_bound, scale)
    return loc + sign * magnitude, jnp.exp(log_g), saturated


def _log_normalizer(scale: Array, power: Array) -> Array:
    """log(β / (2·scale·Γ(1/β)))."""
    return jnp.log(power) - math.log(2.0) - jnp.log(scale) - gammaln(1.0 / power)


def sample(key: Array, loc, scale, power, sample_shape=()) -> Array:
    """Reparameterized draw of shape `sample_shape + broadcast(loc, scale, power).shape`.

    Draws beyond the float range saturate (see the module docstring); never ±inf or NaN.
    """
    where = "reparam.generalized_normal.sample"
    key = checks.key(key, where)
    loc, scale, power, batch_shape = _params("sample", loc, scale, power)
    shape = checks.sample_shape(where, sample_shape) + batch_shape
    return _draw(key, loc, scale, power, shape)[0]


def sample_and_log_prob(key: Array, loc, scale, power, sample_shape=()) -> tuple[Array, Array]:
    """Draw z (the same bits as `sample` with this key) and log p(z) = log(β/(2·scale·Γ(1/β)))
    − G, from the draw: |(z − loc)/scale|^β = G, with no subtraction of loc and no power.
    Saturated draws get the density at their clamped value."""
    where = "reparam.generalized_normal.sample_and_log_prob"
    key = checks.key(key, where)
    loc, scale, power, batch_shape = _params("sample_and_log_prob", loc, scale, power)
    shape = checks.sample_shape(where, sample_shape) + batch_shape
    z, g, saturated = _draw(key, loc, scale, power, shape)
    at_value = jnp.abs(z - loc) / scale
    return z, _log_normalizer(scale, power) - jnp.where(saturated, at_value**power, g)


def log_prob(x, loc, scale, power) -> Array:
    """log(β/(2·scale·Γ(1/β))) − |(x − loc)/scale|^β; shape broadcast(x, loc, scale, power)."""
    loc, scale, power, batch_shape = _params("log_prob", loc, scale, power)
    checks.broadcastable("reparam.generalized_normal.log_prob", "x", jnp.shape(x), batch_shape)
    y = jnp.abs(jnp.asarray(x, loc.dtype) - loc) / scale
    # y**β, not exp(β·log y): its derivative in β is 0, not NaN, at y = 0.
    return _log_normalizer(scale, power) - y**power


def cdf(x, loc, scale, power) -> Array:
    """P(z ≤ x): the tail beyond |y| = |x − loc|/scale is ½·Q(1/β, |y|^β) (Q the regularized
    upper incomplete gamma function); computed as the tail, the lower tail keeps its relative
    precision."""
    loc, scale, power, _ = _params("cdf", loc, scale, power)
    y = (jnp.asarray(x, loc.dtype) - loc) / scale
    tail = 0.5 * gammaincc(1.0 / power, jnp.abs(y) ** power)
    return jnp.where(y < 0, tail, 1.0 - tail)


def entropy(loc, scale, power) -> Array:
    """1/β − log(β/(2·scale·Γ(1/β)))."""
    loc, scale, power, batch_shape = _params("entropy", loc, scale, power)
    return jnp.broadcast_to(1.0 / power - _log_normalizer(scale, power), batch_shape)


def mean(loc, scale, power) -> Array:
    """loc."""
    loc, scale, power, batch_shape = _params("mean", loc, scale, power)
    return jnp.broadcast_to(loc, batch_shape)


def variance(loc, scale, power) -> Array:
    """scale²·Γ(3/β)/Γ(1/β), through gammaln."""
    loc, scale, power, batch_shape = _params("variance", loc, scale, power)
    value = scale**2 * jnp.exp(gammaln(3.0 / power) - gammaln(1.0 / power))
    return jnp.broadcast_to(value, batch_shape)


__all__ = [
    "EVENT_NDIMS",
    "PARAMS",
    "cdf",
    "entropy",
    "log_prob",
    "mean",
    "sample",
    "sample_and_log_prob",
    "variance",
]
