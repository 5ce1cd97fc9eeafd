"""TruncatedNormal(loc, scale, low, high): N(loc, scale²) restricted to [low, high].

Density φ(t) / (scale · Z) on low ≤ z ≤ high, with t = (z − loc)/scale, α = (low − loc)/scale,
β = (high − loc)/scale and Z = Φ(β) − Φ(α); low may be −inf and high +inf.

Sampling is by the inverse CDF of ε ~ Uniform[tiny, 1): z = loc + scale · x with
Φ(x) = Φ(α) + ε Z, so `noise`/`transform` exist and `sample` is `transform(noise(·))` bit for bit.
Tail-stable: an interval whose mass lies right of the mode (α + β > 0) is reflected, x = −x' with
x' drawn from [−β, −α] at 1 − ε, so the inversion always happens on the side of the interval
farther from the mode, where Φ is tiny but its logarithm is exact (`log_ndtr`):
log Φ(x') = log Φ(b) + log(ε' + (1 − ε') Φ(a)/Φ(b)), x' = ndtri(exp(·)) while exp(·) is a normal
float, and beyond (past ≈ 37 standard deviations in float64, ≈ 13 in float32) by Newton's method
on log Φ(x') itself. So a truncation 10 standard deviations out (low = 10, high = 12 for
N(0, 1); or high = −10) or 40 out is sampled exactly, in either precision.

Gradients are exact pathwise derivatives of this map, given by `jax.custom_jvp` rather than by
autodiff through ndtri (whose slope 1/φ(x) overflows in the tails): implicitly differentiating
Φ(x) = Φ(α) + ε (Φ(β) − Φ(α)) at fixed ε gives

    ∂x/∂α = (1 − ε) φ(α)/φ(x),   ∂x/∂β = ε φ(β)/φ(x),   ∂x/∂ε = Z/φ(x),

each ratio formed in log space, hence ∂z/∂low = ∂x/∂α, ∂z/∂high = ∂x/∂β,
∂z/∂loc = 1 − ∂x/∂α − ∂x/∂β, ∂z/∂scale = x − α ∂x/∂α − β ∂x/∂β — equal to the implicit
reparameterization gradient −(∂F/∂θ)/p(z) of every parameter (tests check it against finite
differences of scipy's CDF).

Moments with ρ_α = φ(α)/Z, ρ_β = φ(β)/Z (0 at an infinite end): mean = loc + scale (ρ_α − ρ_β),
variance = scale² (1 + α ρ_α − β ρ_β − (ρ_α − ρ_β)²), entropy = log(√(2πe) scale Z) +
(α ρ_α − β ρ_β)/2. Far in a tail the variance is a difference of nearly equal terms (≈ 1/α² out of
≈ α²): in float64 it keeps ≈ 10 digits at 10 standard deviations, ≈ 4 at 40 (against mpmath).

Shapes: parameters broadcast to a batch shape B; samples have shape `sample_shape + B`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import log_ndtr, ndtri

from reparam import checks

Array = jax.Array

PARAMS = ("loc", "scale", "low", "high")
EVENT_NDIMS = 0

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_LOG_SQRT_2PI_E = 0.5 * math.log(2 * math.pi * math.e)


def _params(where: str, loc, scale, low, high) -> tuple[Array, Array, Array, Array, tuple]:
    where = f"reparam.truncated_normal.{where}"
    (loc, scale, low, high), batch_shape = checks.broadcast(
        where, loc=loc, scale=scale, low=low, high=high
    )
    checks.finite(where, "loc", loc)
    checks.positive(where, "scale", scale)
    checks.finite(where, "scale", scale)
    checks.less(where, "low", low, "high", high)
    return loc, scale, low, high, batch_shape


# ------------------------------------------------------------------ standardized pieces
def _finite_or_zero(t: Array) -> Array:
    """t where finite, else 0: what the unused branch of a `where` sees (no NaN gradients)."""
    return jnp.where(jnp.isfinite(t), t, 0.0)


def _log_phi(t: Array) -> Array:
    """log φ(t) of the standard normal density; −inf at ±inf without NaN gradients."""
    safe = _finite_or_zero(t)
    return jnp.where(jnp.isfinite(t), -0.5 * safe * safe - _LOG_SQRT_2PI, -jnp.inf)


def _log_cdf(t: Array) -> Array:
    """log Φ(t): exact in the lower tail; 0 at +inf, −inf at −inf, finite gradients."""
    value = log_ndtr(_finite_or_zero(t))
    return jnp.where(jnp.isfinite(t), value, jnp.where(t > 0, 0.0, -jnp.inf))


def _log1mexp(d: Array) -> Array:
    """log(1 − e^d) for d ≤ 0 (Mächler 2012): expm1 near 0, log1p far from it."""
    near = d > -math.log(2)
    return jnp.where(
        near,
        jnp.log(-jnp.expm1(jnp.where(near, d, -1.0))),
        jnp.log1p(-jnp.exp(jnp.where(near, -1.0, d))),
    )


def _oriented(alpha: Array, beta: Array) -> tuple[Array, Array, Array]:
    """(flip, a, b): [a, b] = [α, β], or [−β, −α] where the mass lies right of the mode.

    Afterwards a ≤ −|b| ≤ 0: a is the end farther from the mode, so Φ(a) ≤ Φ(b) with Φ(a) ≤ 1/2
    carried exactly by log Φ. (α = −inf, β = +inf gives α + β = NaN: no flip, as wanted.)
    """
    flip = alpha + beta > 0
    return flip, jnp.where(flip, -beta, alpha), jnp.where(flip, -alpha, beta)


def _log_mass(alpha: Array, beta: Array) -> Array:
    """log Z = log(Φ(β) − Φ(α)), in the orientation where both Φ are exact."""
    _, a, b = _oriented(alpha, beta)
    log_cdf_b = _log_cdf(b)
    return log_cdf_b + _log1mexp(_log_cdf(a) - log_cdf_b)


@jax.custom_jvp
def _standard_quantile(eps: Array, alpha: Array, beta: Array) -> Array:
    """x in [α, β] with Φ(x) = Φ(α) + ε (Φ(β) − Φ(α)); elementwise, broadcast."""
    eps, alpha, beta = jnp.broadcast_arrays(eps, alpha, beta)
    flip, a, b = _oriented(alpha, beta)
    eps_oriented = jnp.where(flip, 1 - eps, eps)
    log_cdf_b = _log_cdf(b)
    log_target = log_cdf_b + jnp.log(
        eps_oriented + (1 - eps_oriented) * jnp.exp(_log_cdf(a) - log_cdf_b)
    )
    x_oriented = jnp.clip(_inverse_log_cdf(log_target), a, b)
    return jnp.where(flip, -x_oriented, x_oriented)


def _inverse_log_cdf(log_target: Array) -> Array:
    """x with log Φ(x) = log_target ≤ 0: ndtri(exp(·)) while exp(·) is a normal float, else
    Newton's method on log Φ from the asymptotic start (Φ(x) ≈ φ(x)/|x|, x² ≈ s − log s with
    s = −2 log_target − log 2π), so any depth of the lower tail inverts exactly."""
    log_tiny = float(np.log(np.finfo(log_target.dtype).tiny))
    # Margin e⁴: below it exp(·) is near the subnormals, which the CPU flushes to zero.
    deep = log_target < log_tiny + 4
    body = ndtri(jnp.exp(jnp.where(deep, 0.0, log_target)).clip(max=1.0))
    target = jnp.where(deep, log_target, log_tiny)  # a harmless stand-in outside the deep tail
    s = -2 * target - math.log(2 * math.pi)
    x = -jnp.sqrt(s - jnp.log(s))
    for _ in range(4):  # quadratic convergence from a start within ≈ 1/|x|² of the root
        log_cdf = log_ndtr(x)
        x = x - (log_cdf - target) * jnp.exp(log_cdf - _log_phi(x))
    return jnp.where(deep, x, body)


@_standard_quantile.defjvp
def _standard_quantile_jvp(primals, tangents):
    eps, alpha, beta = primals
    eps_dot, alpha_dot, beta_dot = tangents
    # Calling ourselves keeps higher derivatives right: differentiating this rule again sees
    # x's own dependence on (ε, α, β) through the same rule.
    x = _standard_quantile(eps, alpha, beta)

    def density_ratio(end):
        # φ(end)/φ(x) = exp((x − end)(x + end)/2), factored to keep digits when x ≈ end; 0 at an
        # infinite end (whose finite stand-in 0 keeps NaN out of the unused branch's gradient).
        safe = _finite_or_zero(end)
        return jnp.where(jnp.isfinite(end), jnp.exp(0.5 * (x - safe) * (x + safe)), 0.0)

    dx_dalpha = (1 - eps) * density_ratio(alpha)
    dx_dbeta = eps * density_ratio(beta)
    dx_deps = jnp.exp(_log_mass(alpha, beta) - _log_phi(x))
    return x, dx_deps * eps_dot + dx_dalpha * alpha_dot + dx_dbeta * beta_dot


def _standardized(loc, scale, low, high) -> tuple[Array, Array]:
    """(α, β) = ((low − loc)/scale, (high − loc)/scale); an infinite end stays a constant ±inf,
    so that its (zero) cotangent is not multiplied by ∂α/∂scale = −α/scale = ∓inf (NaN)."""

    def standardize(end):
        return jnp.where(jnp.isfinite(end), (_finite_or_zero(end) - loc) / scale, end)

    return standardize(low), standardize(high)


def _transform(eps: Array, loc, scale, low, high) -> Array:
    alpha, beta = _standardized(loc, scale, low, high)
    return loc + scale * _standard_quantile(eps, alpha, beta)


def _draw(key: Array, shape: tuple[int, ...], dtype) -> Array:
    # [tiny, 1) instead of [0, 1): ε = 0 would put x at α, −inf for a lower tail left open.
    return jax.random.uniform(key, shape, dtype, minval=np.finfo(dtype).tiny, maxval=1.0)


# ------------------------------------------------------------------ public API
def noise(key: Array, shape: tuple[int, ...] = (), dtype=None) -> Array:
    """ε ~ Uniform[tiny, 1) of `shape`; dtype defaults to JAX's default float."""
    key = checks.key(key, "reparam.truncated_normal.noise")
    shape = checks.sample_shape("reparam.truncated_normal.noise", shape, "shape")
    return _draw(key, shape, checks.noise_dtype(dtype))


def transform(eps: Array, loc, scale, low, high) -> Array:
    """z = loc + scale · x, Φ(x) = Φ(α) + ε (Φ(β) − Φ(α)); shape broadcast(ε, params).

    Its JVP is the exact pathwise derivative in all four parameters (module docstring).
    """
    loc, scale, low, high, batch_shape = _params("transform", loc, scale, low, high)
    checks.broadcastable("reparam.truncated_normal.transform", "eps", jnp.shape(eps), batch_shape)
    return _transform(eps, loc, scale, low, high)


def noise_shape(sample_shape, loc, scale, low, high) -> tuple[int, ...]:
    """The shape of ε that `sample(key, loc, scale, low, high, sample_shape)` draws:
    `sample_shape + B`, the sample's shape."""
    where = "reparam.truncated_normal.noise_shape"
    *_, batch_shape = _params("noise_shape", loc, scale, low, high)
    return checks.sample_shape(where, sample_shape) + batch_shape


def sample(key: Array, loc, scale, low, high, sample_shape=()) -> Array:
    """Reparameterized draw of shape `sample_shape + broadcast(loc, scale, low, high).shape`;
    bit for bit `transform(noise(key, noise_shape(sample_shape, ...)), loc, scale, low, high)`."""
    key = checks.key(key, "reparam.truncated_normal.sample")
    loc, scale, low, high, batch_shape = _params("sample", loc, scale, low, high)
    shape = checks.sample_shape("reparam.truncated_normal.sample", sample_shape) + batch_shape
    return _transform(_draw(key, shape, loc.dtype), loc, scale, low, high)


def sample_and_log_prob(key: Array, loc, scale, low, high, sample_shape=()) -> tuple[Array, Array]:
    """Draw z and log p(z) from the standardized x of the same ε (no re-subtraction of loc)."""
    where = "reparam.truncated_normal.sample_and_log_prob"
    key = checks.key(key, where)
    loc, scale, low, high, batch_shape = _params("sample_and_log_prob", loc, scale, low, high)
    shape = checks.sample_shape(where, sample_shape) + batch_shape
    alpha, beta = _standardized(loc, scale, low, high)
    x = _standard_quantile(_draw(key, shape, loc.dtype), alpha, beta)
    return loc + scale * x, _log_phi(x) - jnp.log(scale) - _log_mass(alpha, beta)


def log_prob(x, loc, scale, low, high) -> Array:
    """log p(x) = log φ((x − loc)/scale) − log(scale · Z) on [low, high], −inf outside;
    shape broadcast(x, loc, scale, low, high). Finite far in the tails (Z from log Φ)."""
    loc, scale, low, high, batch_shape = _params("log_prob", loc, scale, low, high)
    checks.broadcastable("reparam.truncated_normal.log_prob", "x", jnp.shape(x), batch_shape)
    x = jnp.asarray(x, loc.dtype)
    alpha, beta = _standardized(loc, scale, low, high)
    value = _log_phi((x - loc) / scale) - jnp.log(scale) - _log_mass(alpha, beta)
    return jnp.where((x < low) | (x > high), -jnp.inf, value)


def _ratios(alpha: Array, beta: Array) -> tuple[Array, Array, Array, Array]:
    """(ρ_α, ρ_β, α ρ_α, β ρ_β) with ρ = φ(end)/Z, each 0 at an infinite end."""
    log_mass = _log_mass(alpha, beta)
    rho_alpha = jnp.exp(_log_phi(alpha) - log_mass)
    rho_beta = jnp.exp(_log_phi(beta) - log_mass)
    return (
        rho_alpha,
        rho_beta,
        jnp.where(jnp.isfinite(alpha), _finite_or_zero(alpha) * rho_alpha, 0.0),
        jnp.where(jnp.isfinite(beta), _finite_or_zero(beta) * rho_beta, 0.0),
    )


def entropy(loc, scale, low, high) -> Array:
    """H = log(√(2πe) scale Z) + (α φ(α) − β φ(β)) / (2Z); shape B."""
    loc, scale, low, high, batch_shape = _params("entropy", loc, scale, low, high)
    alpha, beta = _standardized(loc, scale, low, high)
    _, _, alpha_rho, beta_rho = _ratios(alpha, beta)
    value = _LOG_SQRT_2PI_E + jnp.log(scale) + _log_mass(alpha, beta) + 0.5 * (alpha_rho - beta_rho)
    return jnp.broadcast_to(value, batch_shape)


def mean(loc, scale, low, high) -> Array:
    """E[z] = loc + scale (φ(α) − φ(β)) / Z; shape B."""
    loc, scale, low, high, batch_shape = _params("mean", loc, scale, low, high)
    rho_alpha, rho_beta, _, _ = _ratios(*_standardized(loc, scale, low, high))
    return jnp.broadcast_to(loc + scale * (rho_alpha - rho_beta), batch_shape)


def variance(loc, scale, low, high) -> Array:
    """Var[z] = scale² (1 + (α φ(α) − β φ(β))/Z − ((φ(α) − φ(β))/Z)²); shape B."""
    loc, scale, low, high, batch_shape = _params("variance", loc, scale, low, high)
    rho_alpha, rho_beta, alpha_rho, beta_rho = _ratios(*_standardized(loc, scale, low, high))
    value = scale**2 * (1 + alpha_rho - beta_rho - (rho_alpha - rho_beta) ** 2)
    return jnp.broadcast_to(value, batch_shape)


__all__ = [
    "EVENT_NDIMS",
    "PARAMS",
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
