"""Pareto(concentration, scale): z = scale · exp(ε / concentration) with ε ~ Exponential(1).

Density α·s^α / z^(α+1) on z ≥ s (α = concentration, s = scale; scipy: pareto(b=concentration,
scale=scale); TFP: Pareto(concentration, scale)). The map is the inverse CDF: with u uniform,
z = s·u^(−1/α) = s·exp(ε/α) for ε = −log u, so it is explicit in both parameters.

Moments: the mean is infinite for α ≤ 1 and the variance for α ≤ 2 (as scipy).

Saturation: ε is at most about 36 in float64 (16 in float32), so z passes the float range only
for α ≲ 0.05 (0.18 in float32) at s = 1. Draws whose z, or whose gradient with respect to α or s,
would come within a factor 2^24 of the dtype's largest finite value are clamped to
finfo(dtype).max · 2^−24 with zero gradient (`reparam.families._saturation`, the rule of
reparam.student_t), instead of returning +inf and NaN gradients.

Shapes: parameters broadcast to a batch shape B; samples and ε have shape `sample_shape + B`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from reparam import checks
from reparam.families._saturation import limit, saturating_exp

Array = jax.Array

PARAMS = ("concentration", "scale")
EVENT_NDIMS = 0


def _params(where: str, concentration, scale) -> tuple[Array, Array, tuple[int, ...]]:
    name = f"reparam.pareto.{where}"
    (concentration, scale), batch_shape = checks.broadcast(
        name, concentration=concentration, scale=scale
    )
    checks.positive(name, "concentration", concentration)
    checks.positive(name, "scale", scale)
    return concentration, scale, batch_shape


def _noise(key: Array, shape: tuple[int, ...], dtype) -> Array:
    # −log1p(−u) for u in [0, 1): finite; ε = 0 gives z = scale, the edge of the support.
    return jax.random.exponential(key, shape, dtype)


def _saturating_transform(eps: Array, concentration: Array, scale: Array) -> tuple[Array, Array]:
    """(z, saturated): z = s·exp(ε/α), clamped where z or its gradients would overflow."""
    exponent = eps / concentration
    # |∂z/∂s| = z/s and |∂z/∂α| = z·ε/α²: the bound covers both.
    log_bound = jnp.log(scale) + exponent + jnp.log1p(1.0 / scale + eps / concentration**2)
    return saturating_exp(exponent, log_bound, scale)


def _transform(eps: Array, concentration: Array, scale: Array) -> Array:
    return _saturating_transform(eps, concentration, scale)[0]


def noise(key: Array, shape: tuple[int, ...] = (), dtype=None) -> Array:
    """Standard exponential ε ≥ 0 of `shape`; dtype defaults to JAX's default float."""
    key = checks.key(key, "reparam.pareto.noise")
    shape = checks.sample_shape("reparam.pareto.noise", shape, "shape")
    return _noise(key, shape, checks.noise_dtype(dtype))


def transform(eps: Array, concentration, scale) -> Array:
    """z = scale · exp(ε / concentration), saturated as the module docstring says; shape
    broadcast(ε, concentration, scale)."""
    concentration, scale, batch_shape = _params("transform", concentration, scale)
    checks.broadcastable("reparam.pareto.transform", "eps", jnp.shape(eps), batch_shape)
    return _transform(eps, concentration, scale)


def noise_shape(sample_shape, concentration, scale) -> tuple[int, ...]:
    """The shape of ε that `sample(key, concentration, scale, sample_shape)` draws:
    `sample_shape + B`, the sample's shape
    (for callers that bring their own ε: quasi-Monte-Carlo, common random numbers)."""
    _, _, batch_shape = _params("noise_shape", concentration, scale)
    return checks.sample_shape("reparam.pareto.noise_shape", sample_shape) + batch_shape


def sample(key: Array, concentration, scale, sample_shape=()) -> Array:
    """Reparameterized draw of shape `sample_shape + broadcast(concentration, scale).shape`; bit
    for bit `transform(noise(key, noise_shape(sample_shape, ...)), concentration, scale)`."""
    key = checks.key(key, "reparam.pareto.sample")
    concentration, scale, batch_shape = _params("sample", concentration, scale)
    shape = checks.sample_shape("reparam.pareto.sample", sample_shape) + batch_shape
    return _transform(_noise(key, shape, scale.dtype), concentration, scale)


def sample_and_log_prob(key: Array, concentration, scale, sample_shape=()) -> tuple[Array, Array]:
    """Draw z and its log-density from ε: log z = log s + ε/α, so

    log p = log α − log s − (α + 1)·ε/α; saturated draws get the density at their clamped value.
    """
    key = checks.key(key, "reparam.pareto.sample_and_log_prob")
    concentration, scale, batch_shape = _params("sample_and_log_prob", concentration, scale)
    shape = checks.sample_shape("reparam.pareto.sample_and_log_prob", sample_shape) + batch_shape
    eps = _noise(key, shape, scale.dtype)
    z, saturated = _saturating_transform(eps, concentration, scale)
    from_eps = jnp.log(concentration) - jnp.log(scale) - (concentration + 1.0) * eps / concentration
    at_limit = (
        jnp.log(concentration)
        + concentration * jnp.log(scale)
        - (concentration + 1.0) * math.log(limit(scale.dtype))
    )
    return z, jnp.where(saturated, at_limit, from_eps)


def log_prob(x, concentration, scale) -> Array:
    """log α + α·log s − (α + 1)·log x for x ≥ s, −inf below; shape broadcast(x, α, s)."""
    concentration, scale, batch_shape = _params("log_prob", concentration, scale)
    checks.broadcastable("reparam.pareto.log_prob", "x", jnp.shape(x), batch_shape)
    x = jnp.asarray(x, scale.dtype)
    inside = x >= scale
    # Off the support the logarithm sees `scale`, so that no gradient is NaN (log of x ≤ 0).
    log_x = jnp.log(jnp.where(inside, x, scale))
    value = jnp.log(concentration) + concentration * jnp.log(scale) - (concentration + 1.0) * log_x
    return jnp.where(inside, value, -jnp.inf)


def cdf(x, concentration, scale) -> Array:
    """1 − (s/x)^α as −expm1(α·log(s/x)) for x ≥ s, accurate near the edge; 0 below."""
    concentration, scale, _ = _params("cdf", concentration, scale)
    x = jnp.asarray(x, scale.dtype)
    inside = x >= scale
    log_ratio = jnp.log(scale) - jnp.log(jnp.where(inside, x, scale))
    return jnp.where(inside, -jnp.expm1(concentration * log_ratio), 0.0)


def entropy(concentration, scale) -> Array:
    """log(s/α) + 1/α + 1."""
    concentration, scale, batch_shape = _params("entropy", concentration, scale)
    value = jnp.log(scale) - jnp.log(concentration) + 1.0 / concentration + 1.0
    return jnp.broadcast_to(value, batch_shape)


def mean(concentration, scale) -> Array:
    """α·s/(α − 1) for α > 1, +inf otherwise (as scipy)."""
    concentration, scale, batch_shape = _params("mean", concentration, scale)
    # The formula at a safe α where it is not used, so that its gradient stays finite.
    safe = jnp.where(concentration > 1.0, concentration, 2.0)
    value = jnp.where(concentration > 1.0, safe * scale / (safe - 1.0), jnp.inf)
    return jnp.broadcast_to(value, batch_shape)


def variance(concentration, scale) -> Array:
    """s²·α/((α − 1)²(α − 2)) for α > 2, +inf otherwise (as scipy)."""
    concentration, scale, batch_shape = _params("variance", concentration, scale)
    safe = jnp.where(concentration > 2.0, concentration, 3.0)
    value = jnp.where(
        concentration > 2.0, scale**2 * safe / ((safe - 1.0) ** 2 * (safe - 2.0)), jnp.inf
    )
    return jnp.broadcast_to(value, batch_shape)


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
