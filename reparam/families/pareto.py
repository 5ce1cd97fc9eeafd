"""Pareto(concentration, scale): z = scale · exp(ε / concentration) with ε ~ Exponential(1).

Density α·s^α / z^(α+1) on z ≥ s (α = concentration, s = scale; scipy: pareto(b=concentration,
scale=scale); TFP: Pareto(concentration, scale)). The map is the inverse CDF: with u uniform,
z = s·u^(−1/α) = s·exp(ε/α) for ε = −log u, so it is explicit in both parameters.

Moments: the mean is infinite for α ≤ 1 and the variance for α ≤ 2 (as scipy).

Range: ε is at most about 36 in float64 (16 in float32), so a draw can overflow to +inf, where
ε/α > log(max float/s), only for α ≲ 0.05 (0.18 in float32) at s = 1. Below that, overflowed
draws make reverse-mode gradients NaN for the whole array that shares the parameters (0·inf);
the log-density of `sample_and_log_prob` stays exact.

Shapes: parameters broadcast to a batch shape B; samples and ε have shape `sample_shape + B`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from reparam import checks

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


def _transform(eps: Array, concentration: Array, scale: Array) -> Array:
    return scale * jnp.exp(eps / concentration)


def noise(key: Array, shape: tuple[int, ...] = (), dtype=None) -> Array:
    """Standard exponential ε ≥ 0 of `shape`; dtype defaults to JAX's default float."""
    key = checks.key(key, "reparam.pareto.noise")
    shape = checks.sample_shape("reparam.pareto.noise", shape, "shape")
    return _noise(key, shape, checks.noise_dtype(dtype))


def transform(eps: Array, concentration, scale) -> Array:
    """z = scale · exp(ε / concentration); shape broadcast(ε, concentration, scale)."""
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

    log p = log α − log s − (α + 1)·ε/α, exact even where z overflows.
    """
    key = checks.key(key, "reparam.pareto.sample_and_log_prob")
    concentration, scale, batch_shape = _params("sample_and_log_prob", concentration, scale)
    shape = checks.sample_shape("reparam.pareto.sample_and_log_prob", sample_shape) + batch_shape
    eps = _noise(key, shape, scale.dtype)
    log_prob_ = (
        jnp.log(concentration) - jnp.log(scale) - (concentration + 1.0) * eps / concentration
    )
    return _transform(eps, concentration, scale), log_prob_


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
