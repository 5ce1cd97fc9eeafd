"""Von Mises(loc, concentration): density exp(κ cos(z − loc)) / (2π I₀(κ)) on the circle.

Samples are angles in [−π, π): z = wrap(loc + ω), where the centred angle ω ∈ [−π, π] is drawn
by the Best–Fisher (1979) rejection sampler (jax.random has no von Mises sampler).

Why there is no `noise`/`transform`: a rejection sampler consumes a random, parameter-dependent
number of uniforms, so there is no fixed-shape, parameter-free ε with a differentiable map to z;
the only such map is the inverse CDF, which has no closed form. `sample(key, loc, concentration,
sample_shape=())` is therefore the entry point, and its gradients are

* d z / d loc = 1 (z = wrap(loc + ω) and wrap has slope 1 almost everywhere), and
* d z / d κ = dω/dκ = −(∂F/∂κ)(ω; κ) / p(ω; κ) by implicit reparameterization (Figurnov et al.,
  2018), through `jax.custom_jvp`, where F is the CDF of ω on [−π, π]. ∂F/∂κ comes from autodiff
  of F, never from finite differences.

F follows Hill (1977, ACM TOMS algorithm 518), written here from the math:

* small κ: the Fourier series F(ω) = 1/2 + ω/(2π) + (1/π) Σₙ (Iₙ(κ)/I₀(κ)) sin(nω)/n, with the
  Bessel ratios Iₙ/Iₙ₋₁ = κ / (2n + κ · Iₙ₊₁/Iₙ) by backward recurrence (truncated at N terms,
  started from 0), summed in the same backward pass;
* large κ: a corrected normal approximation F ≈ Φ(ξ), with z = √(2/π) sin(ω/2) / i0e(κ)
  (≈ 2√κ sin(ω/2)) and ξ = z − z³ / ((24κ − 2z² − 16)/3 − (z⁴ + 7z²/4 + 167/2)/(24κ − 53 − z²))².
  There ∂F/∂κ = φ(ξ) ∂ξ/∂κ, and the ratio φ(ξ)/p(ω) is formed in log space, so the gradient stays
  finite even where both densities underflow (very large κ: ω ≈ N(0, 1/κ)).

The switch point and number of terms depend on the dtype: float64 uses the series up to κ = 50
with 70 terms (like scipy, whose `vonmises.cdf` also switches at 50; the approximation's
relative error in ∂F/∂κ is ≈ 4e-9 there); float32 and narrower use κ < 10.5 with 28 terms (Hill's
choice; ≈ 3e-6 there, and ≈ 1e-6 at the float32 samples the tests draw).
Every κ-derivative of log I₀ (in log_prob, entropy and ξ) goes through `_log_i0e`, whose JVP
uses 1 − I₁/I₀ from an asymptotic expansion at large κ: autodiff of log i0e would form
(i1e − i0e)/i0e, which cancels and costs float32 three digits at κ = 1e4.

Moments: a circular distribution has no linear mean/variance that is invariant to where the
circle is cut. `mean` returns the circular mean wrap(loc); `circular_variance` returns
1 − E[cos(z − loc)] = 1 − I₁(κ)/I₀(κ). There is deliberately no `variance`: scipy's
`vonmises.var` is the linear variance of the angle on [loc − π, loc + π], which has no closed form.

Shapes: parameters broadcast to a batch shape B; samples have shape `sample_shape + B`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import i0e, i1e, ndtr

from reparam import checks
from reparam.families._chunks import in_chunks
from reparam.families._von_mises_sampler import best_fisher

Array = jax.Array

PARAMS = ("loc", "concentration")
EVENT_NDIMS = 0

_LOG_2PI = math.log(2 * math.pi)
_LOG_SQRT_2PI = 0.5 * _LOG_2PI


def _series_settings(dtype) -> tuple[float, int]:
    """(κ below which the Fourier series is used, its number of terms) for `dtype`."""
    if jnp.dtype(dtype) == jnp.float64:
        # I₇₀(50)/I₀(50) ≈ 9e-20: the truncated tail is far below float64 resolution.
        return 50.0, 70
    # I₂₈(10.5)/I₀(10.5) ≈ 3e-13 (Hill's choice, ample for float32).
    return 10.5, 28


def _asymptotic_ratio_threshold(dtype) -> float:
    """κ above which 1 − I₁/I₀ is taken from its asymptotic expansion (see below)."""
    # 1 − i1e/i0e loses ≈ log10(2κ) digits to cancellation; the 5-term expansion's relative error
    # is ≈ 3e-10 at κ = 100 and falls like κ⁻⁵, so it wins from ≈ 30 (float32) / 500 (float64).
    return 500.0 if jnp.dtype(dtype) == jnp.float64 else 30.0


def _params(where: str, loc, concentration) -> tuple[Array, Array, tuple[int, ...]]:
    where = f"reparam.von_mises.{where}"
    (loc, concentration), batch_shape = checks.broadcast(
        where, loc=loc, concentration=concentration
    )
    checks.positive(where, "concentration", concentration)
    checks.finite(where, "concentration", concentration)
    return loc, concentration, batch_shape


def _wrap(angle: Array) -> Array:
    """angle mod 2π, in [−π, π)."""
    wrapped = angle - 2 * math.pi * jnp.floor((angle + math.pi) / (2 * math.pi))
    # Rounding can land exactly on +π (e.g. angle = −π − tiny); fold it to −π.
    return jnp.where(wrapped >= math.pi, wrapped - 2 * math.pi, wrapped)


def _cos_minus_one(angle: Array) -> Array:
    """cos(angle) − 1 = −2 sin²(angle/2), without cancellation near 0 (large κ)."""
    return -2 * jnp.sin(0.5 * angle) ** 2


def _one_minus_bessel_ratio(concentration: Array) -> Array:
    """1 − I₁(κ)/I₀(κ), accurate also for large κ (where it is ≈ 1/(2κ) and cancels)."""
    threshold = _asymptotic_ratio_threshold(concentration.dtype)
    large = concentration > threshold
    direct_kappa = jnp.where(large, 1.0, concentration)
    direct = 1 - i1e(direct_kappa) / i0e(direct_kappa)
    # Hankel expansions Iᵥ(κ) ≈ e^κ/√(2πκ) Σₖ aₖ(ν) tᵏ, t = 1/(8κ), for ν = 0 and 1; their
    # difference over I₀'s, both to 5 terms (coefficients exact).
    t = 1 / (8 * jnp.where(large, concentration, threshold))
    numerator = t * (4 + t * (12 + t * (90 + t * (1050 + t * 16537.5))))
    denominator = 1 + t * (1 + t * (4.5 + t * (37.5 + t * (459.375 + t * 7441.875))))
    return jnp.where(large, numerator / denominator, direct)


@jax.custom_jvp
def _log_i0e(concentration: Array) -> Array:
    """log i0e(κ) = log I₀(κ) − κ, with a derivative free of cancellation."""
    return jnp.log(i0e(concentration))


@_log_i0e.defjvp
def _log_i0e_jvp(primals, tangents):
    (concentration,), (concentration_dot,) = primals, tangents
    # d/dκ log i0e(κ) = I₁/I₀ − 1. Autodiff of log(i0e) forms (i1e − i0e)/i0e, which cancels for
    # large κ (float32 loses 3 digits at κ = 1e4 in every κ-gradient built on it).
    slope = -_one_minus_bessel_ratio(concentration)
    return _log_i0e(concentration), slope * concentration_dot


@jax.jit  # one dispatch for eager callers (check_grads evaluates it many times)
def _log_density_centered(omega: Array, concentration: Array) -> Array:
    """log p(ω; κ) = κ (cos ω − 1) − log(2π i0e(κ)), stable for every κ > 0."""
    return concentration * _cos_minus_one(omega) - _LOG_2PI - _log_i0e(concentration)


# ------------------------------------------------------------------ sampler (Best & Fisher, 1979)
# jit: the loops of the sampler would otherwise be re-traced and re-compiled on every eager call.
@jax.jit
def _best_fisher(key: Array, concentration: Array) -> Array:
    """Centred angles ω ~ VM(0, κ) of κ's shape, by rejection; no gradient.

    Best & Fisher's wrapped-Cauchy rejection sampler, vectorized for XLA: see
    `_von_mises_sampler.best_fisher`. Non-positive or NaN κ (possible only under
    jit without `checks.checked`) yields NaN instead of looping forever.
    """
    return best_fisher(key, concentration)


# ------------------------------------------------------------------ CDF of ω (Hill, 1977)
def _sines(omega: Array, num_terms: int) -> Array:
    """sin(nω) for n = 1, …, N, stacked on a new first axis, from one sine and one cosine.

    XLA's CPU sine costs as much as ~15 logarithms, and N of them dominated the gradient. Here
    the rotation by ω is written with α = 1 − cos ω = 2 sin²(ω/2) and β = sin ω (Numerical
    Recipes §5.4):
      cos((n+1)ω) = cos nω − (α cos nω + β sin nω),   sin((n+1)ω) = sin nω − (α sin nω − β cos nω),
    so that small ω loses nothing to 1 − cos ω; the error grows by about one rounding per step,
    relative as ω → 0 (measured in float32 against float64: no larger than with N sines).
    """
    sin_half, cos_half = jnp.sin(0.5 * omega), jnp.cos(0.5 * omega)
    alpha = 2 * sin_half * sin_half
    beta = 2 * sin_half * cos_half

    def rotate(carry, _):
        sine, cosine = carry
        turned = (sine - (alpha * sine - beta * cosine), cosine - (alpha * cosine + beta * sine))
        return turned, sine

    _, sines = jax.lax.scan(rotate, (beta, 1 - alpha), None, length=num_terms)
    return sines


def _cdf_series(omega: Array, concentration: Array, num_terms: int) -> Array:
    """F(ω; κ) by the Fourier series, Bessel ratios by backward recurrence; shape of ω."""

    def term(carry, n_and_sine):
        ratio, total = carry
        n, sine = n_and_sine
        # Iₙ/Iₙ₋₁ = κ / (2n + κ Iₙ₊₁/Iₙ): written with κ in the numerator so that κ → 0 is
        # exact (ratio → 0) and its derivative stays finite.
        ratio = concentration / (2 * n + concentration * ratio)
        # Nested (Horner-like) sum: total_n = ρₙ (sin(nω)/n + total_{n+1}), so that
        # total_1 = Σₙ (ρ₁⋯ρₙ) sin(nω)/n = Σₙ (Iₙ/I₀) sin(nω)/n.
        total = ratio * (sine / n + total)
        return (ratio, total), None

    zeros = jnp.zeros_like(omega)
    n = jnp.arange(1, num_terms + 1, dtype=omega.dtype)
    (_, total), _ = jax.lax.scan(term, (zeros, zeros), (n, _sines(omega, num_terms)), reverse=True)
    return 0.5 + omega / (2 * math.pi) + total / math.pi


def _normal_xi(omega: Array, concentration: Array) -> Array:
    """Hill's corrected normal deviate ξ(ω; κ), F ≈ Φ(ξ) for large κ."""
    z = math.sqrt(2 / math.pi) * jnp.sin(0.5 * omega) * jnp.exp(-_log_i0e(concentration))
    z2 = z * z
    c = 24 * concentration
    denominator = (c - 2 * z2 - 16) / 3 - (z2 * z2 + 1.75 * z2 + 83.5) / (c - 53 - z2)
    return z - z * z2 / denominator**2


@jax.jit
def _cdf_centered(omega: Array, concentration: Array) -> Array:
    """F(ω; κ) = P(ω' ≤ ω) for the centred angle, ω ∈ [−π, π]; elementwise, broadcast."""
    omega, concentration = jnp.broadcast_arrays(omega, concentration)
    cutoff, num_terms = _series_settings(omega.dtype)
    use_series = concentration < cutoff
    # Feed each branch a harmless κ where it is not used, so `where` cannot leak NaN gradients.
    series = _cdf_series(omega, jnp.where(use_series, concentration, 0.0), num_terms)
    normal = ndtr(_normal_xi(omega, jnp.where(use_series, cutoff, concentration)))
    return jnp.clip(jnp.where(use_series, series, normal), 0.0, 1.0)


@jax.jit
def _domega_dconcentration(omega: Array, concentration: Array) -> Array:
    """dω/dκ = −(∂F/∂κ)(ω; κ) / p(ω; κ), elementwise; ω and κ of one shape."""
    # In chunks (same values): the series' loop state stays in cache (reparam/families/_chunks.py).
    return in_chunks(_domega_dconcentration_whole, omega, concentration)


def _domega_dconcentration_whole(omega: Array, concentration: Array) -> Array:
    """:func:`_domega_dconcentration` on the whole array at once."""
    cutoff, num_terms = _series_settings(omega.dtype)
    use_series = concentration < cutoff
    ones = jnp.ones_like(concentration)

    kappa_series = jnp.where(use_series, concentration, 0.0)
    _, dcdf = jax.jvp(lambda k: _cdf_series(omega, k, num_terms), (kappa_series,), (ones,))
    series = -dcdf * jnp.exp(-_log_density_centered(omega, kappa_series))

    # ∂Φ(ξ)/∂κ = φ(ξ) ∂ξ/∂κ; divide by p in log space: both φ(ξ) and p underflow together in the
    # far tail at large κ, where the ratio itself is moderate.
    kappa_normal = jnp.where(use_series, cutoff, concentration)
    xi, dxi = jax.jvp(lambda k: _normal_xi(omega, k), (kappa_normal,), (ones,))
    log_phi = -0.5 * xi**2 - _LOG_SQRT_2PI
    normal = -dxi * jnp.exp(log_phi - _log_density_centered(omega, kappa_normal))
    return jnp.where(use_series, series, normal)


@jax.custom_jvp
def _implicit_omega(omega: Array, concentration: Array) -> Array:
    """Returns `omega` (drawn under stop_gradient(κ)); its JVP is the implicit one in κ."""
    return omega


@_implicit_omega.defjvp
def _implicit_omega_jvp(primals, tangents):
    omega, concentration = primals
    _, concentration_dot = tangents  # ω is drawn under stop_gradient: no tangent of its own
    # Calling ourselves (not returning `omega`) keeps higher derivatives right: differentiating
    # this rule again sees ω's own dependence on κ through the same implicit rule.
    out = _implicit_omega(omega, concentration)
    return out, _domega_dconcentration(out, concentration) * concentration_dot


def _centered(key: Array, concentration: Array, shape: tuple[int, ...]) -> Array:
    """Implicitly reparameterized centred angles ω of `shape` (κ broadcast to it)."""
    concentration = jnp.broadcast_to(concentration, shape)
    omega = _best_fisher(key, jax.lax.stop_gradient(concentration))
    return _implicit_omega(omega, concentration)


# ------------------------------------------------------------------ public API
def sample(key: Array, loc, concentration, sample_shape=()) -> Array:
    """Reparameterized angles in [−π, π) of shape `sample_shape + broadcast(loc, κ).shape`.

    dz/dloc = 1; dz/dκ is the implicit gradient −(∂F/∂κ)/p (module docstring).
    """
    key = checks.key(key, "reparam.von_mises.sample")
    loc, concentration, batch_shape = _params("sample", loc, concentration)
    shape = checks.sample_shape("reparam.von_mises.sample", sample_shape) + batch_shape
    return _wrap(loc + _centered(key, concentration, shape))


def sample_and_log_prob(key: Array, loc, concentration, sample_shape=()) -> tuple[Array, Array]:
    """Draw z and log p(z), the latter from the centred angle ω (no subtraction of loc)."""
    key = checks.key(key, "reparam.von_mises.sample_and_log_prob")
    loc, concentration, batch_shape = _params("sample_and_log_prob", loc, concentration)
    shape = checks.sample_shape("reparam.von_mises.sample_and_log_prob", sample_shape) + batch_shape
    omega = _centered(key, concentration, shape)
    return _wrap(loc + omega), _log_density_centered(omega, concentration)


def log_prob(x, loc, concentration) -> Array:
    """log VM(x; loc, κ), shape broadcast(x, loc, κ).

    The density is that of an angle: x is read modulo 2π (as scipy's `vonmises.logpdf` does), so
    any real x is accepted. Uses i0e, so it is finite for every κ > 0 (no overflow of I₀).
    """
    loc, concentration, batch_shape = _params("log_prob", loc, concentration)
    checks.broadcastable("reparam.von_mises.log_prob", "x", jnp.shape(x), batch_shape)
    x = jnp.asarray(x, loc.dtype)
    return _log_density_centered(x - loc, concentration)


def cdf(x, loc, concentration) -> Array:
    """P(z ≤ x) for the sample z ∈ [−π, π): 0 below −π, 1 from π on; shape broadcast(x, loc, κ).

    Not scipy's `vonmises.cdf`, which is the CDF of loc + ω on [loc − π, loc + π] (extended
    periodically): the two agree for loc = 0.
    """
    loc, concentration, _ = _params("cdf", loc, concentration)
    x = jnp.clip(jnp.asarray(x, loc.dtype), -math.pi, math.pi)

    def unwrapped(t):
        # The CDF of loc + ω extended to all reals: F(wrap(t)) + number of full turns below t.
        turns = jnp.floor((t + math.pi) / (2 * math.pi))
        return _cdf_centered(t - 2 * math.pi * turns, concentration) + turns

    # z ≤ x  ⇔  loc + ω ∈ [−π, x] + 2πm for some integer m.
    return jnp.clip(unwrapped(x - loc) - unwrapped(-math.pi - loc), 0.0, 1.0)


def entropy(loc, concentration) -> Array:
    """H = log(2π I₀(κ)) − κ I₁(κ)/I₀(κ) = log(2π i0e(κ)) + κ (1 − I₁/I₀)."""
    loc, concentration, batch_shape = _params("entropy", loc, concentration)
    value = (
        _LOG_2PI + _log_i0e(concentration) + concentration * _one_minus_bessel_ratio(concentration)
    )
    return jnp.broadcast_to(value, batch_shape)


def mean(loc, concentration) -> Array:
    """The circular mean, wrap(loc) ∈ [−π, π) (equal to scipy's `vonmises.mean` for such loc)."""
    loc, concentration, batch_shape = _params("mean", loc, concentration)
    return jnp.broadcast_to(_wrap(loc), batch_shape)


def circular_variance(loc, concentration) -> Array:
    """1 − E[cos(z − loc)] = 1 − I₁(κ)/I₀(κ) ∈ (0, 1]; not scipy's (linear) `vonmises.var`."""
    loc, concentration, batch_shape = _params("circular_variance", loc, concentration)
    return jnp.broadcast_to(_one_minus_bessel_ratio(concentration), batch_shape)


__all__ = [
    "EVENT_NDIMS",
    "PARAMS",
    "cdf",
    "circular_variance",
    "entropy",
    "log_prob",
    "mean",
    "sample",
    "sample_and_log_prob",
]
