"""InverseGamma(concentration, scale): z = scale / G with G ~ Gamma(concentration, 1).

Density s^a / Γ(a) · z^(−a−1) · exp(−s/z) on z > 0 (a = concentration, s = scale; scipy:
invgamma(a=concentration, scale=scale); TFP: InverseGamma(concentration, scale)). 1/z is
Gamma(a, rate=s).

Sampling: z = exp(log s − log G) with log G from :func:`reparam.gamma.log_sample`, implicitly
reparameterized in the concentration; the map is explicit in the scale. There is no
parameter-free ε (G's law depends on a), so this module defines no `noise`/`transform`. Since z
is a decreasing function of G, the gradient is the inverse gamma's own implicit one,
dz/da = −(∂F/∂a)(z)/p(z) for its CDF F(z) = Q(a, s/z).

Saturation: for small concentrations the distribution itself passes the float range (log G ≈
log(u)/a for a → 0; a growing share of draws does so as a falls below about 0.01 in float64, 0.1
in float32). Draws whose z, or whose gradient with respect to a or s, would come within a factor
2^24 of the dtype's largest finite value are clamped to finfo(dtype).max · 2^−24 with zero
gradient (`reparam.families._saturation`, the rule of reparam.student_t), instead of returning
+inf and NaN gradients.

Moments: the mean is infinite for a ≤ 1 and the variance for a ≤ 2 (as scipy).

Shapes: parameters broadcast to a batch shape B; samples have shape `sample_shape + B`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import digamma, gammaincc, gammaln

from reparam import checks
from reparam.families._saturation import limit, saturating_exp
from reparam.families.gamma import log_sample

Array = jax.Array

PARAMS = ("concentration", "scale")
EVENT_NDIMS = 0


def _params(where: str, concentration, scale) -> tuple[Array, Array, tuple[int, ...]]:
    name = f"reparam.inverse_gamma.{where}"
    (concentration, scale), batch_shape = checks.broadcast(
        name, concentration=concentration, scale=scale
    )
    checks.positive(name, "concentration", concentration)
    checks.positive(name, "scale", scale)
    return concentration, scale, batch_shape


def _draw(key: Array, concentration: Array, scale: Array, shape) -> tuple[Array, Array, Array]:
    """(z, log z, saturated) of `shape`, z = exp(log s − log G) clamped where it or its gradients
    would overflow."""
    log_g = log_sample(key, concentration, shape)
    log_z = jnp.log(scale) - log_g
    # |∂z/∂s| = z/s and |∂z/∂a| = z·|d log G/da| ≤ z·(2 + |log G|)/a, the crude but safe bound of
    # reparam.student_t (from d log G/da ≈ (ψ(a + 1) − log G)/a at the small a where z can
    # overflow at all).
    log_bound = log_z + jnp.log1p(1.0 / scale + (2.0 + jnp.abs(log_g)) / concentration)
    z, saturated = saturating_exp(log_z, log_bound)
    return z, log_z, saturated


def _log_density(log_x: Array, concentration: Array, scale: Array) -> Array:
    return (
        concentration * jnp.log(scale)
        - gammaln(concentration)
        - (concentration + 1.0) * log_x
        - scale * jnp.exp(-log_x)
    )


def sample(key: Array, concentration, scale, sample_shape=()) -> Array:
    """Reparameterized draw of shape `sample_shape + broadcast(concentration, scale).shape`.

    Draws beyond the float range saturate (see the module docstring); never +inf or NaN.
    """
    where = "reparam.inverse_gamma.sample"
    key = checks.key(key, where)
    concentration, scale, batch_shape = _params("sample", concentration, scale)
    shape = checks.sample_shape(where, sample_shape) + batch_shape
    return _draw(key, concentration, scale, shape)[0]


def sample_and_log_prob(key: Array, concentration, scale, sample_shape=()) -> tuple[Array, Array]:
    """Draw z (the same bits as `sample` with this key) and log p(z), the latter from log z
    (s/z = exp(−log z + log s) = G); saturated draws get the density at their clamped value."""
    where = "reparam.inverse_gamma.sample_and_log_prob"
    key = checks.key(key, where)
    concentration, scale, batch_shape = _params("sample_and_log_prob", concentration, scale)
    shape = checks.sample_shape(where, sample_shape) + batch_shape
    z, log_z, saturated = _draw(key, concentration, scale, shape)
    log_z = jnp.where(saturated, math.log(limit(scale.dtype)), log_z)
    return z, _log_density(log_z, concentration, scale)


def log_prob(x, concentration, scale) -> Array:
    """log InverseGamma(x; concentration, scale) for x > 0, −inf for x ≤ 0 (the density tends to
    0 at 0); shape broadcast(x, concentration, scale)."""
    concentration, scale, batch_shape = _params("log_prob", concentration, scale)
    checks.broadcastable("reparam.inverse_gamma.log_prob", "x", jnp.shape(x), batch_shape)
    x = jnp.asarray(x, scale.dtype)
    positive = x > 0
    # Off the support the logarithm sees `scale`, so that no gradient is NaN (log 0, s/0).
    value = _log_density(jnp.log(jnp.where(positive, x, scale)), concentration, scale)
    return jnp.where(positive, value, -jnp.inf)


def cdf(x, concentration, scale) -> Array:
    """P(z ≤ x) = Q(a, s/x), the regularized upper incomplete gamma function; 0 for x ≤ 0."""
    concentration, scale, _ = _params("cdf", concentration, scale)
    x = jnp.asarray(x, scale.dtype)
    positive = x > 0
    return jnp.where(positive, gammaincc(concentration, scale / jnp.where(positive, x, 1.0)), 0.0)


def entropy(concentration, scale) -> Array:
    """a + log s + log Γ(a) − (1 + a)·ψ(a)."""
    concentration, scale, batch_shape = _params("entropy", concentration, scale)
    value = (
        concentration
        + jnp.log(scale)
        + gammaln(concentration)
        - (1.0 + concentration) * digamma(concentration)
    )
    return jnp.broadcast_to(value, batch_shape)


def mean(concentration, scale) -> Array:
    """s/(a − 1) for a > 1, +inf otherwise (as scipy)."""
    concentration, scale, batch_shape = _params("mean", concentration, scale)
    # The formula at a safe a where it is not used, so that its gradient stays finite.
    safe = jnp.where(concentration > 1.0, concentration, 2.0)
    value = jnp.where(concentration > 1.0, scale / (safe - 1.0), jnp.inf)
    return jnp.broadcast_to(value, batch_shape)


def variance(concentration, scale) -> Array:
    """s²/((a − 1)²(a − 2)) for a > 2, +inf otherwise (as scipy)."""
    concentration, scale, batch_shape = _params("variance", concentration, scale)
    safe = jnp.where(concentration > 2.0, concentration, 3.0)
    value = jnp.where(concentration > 2.0, scale**2 / ((safe - 1.0) ** 2 * (safe - 2.0)), jnp.inf)
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
