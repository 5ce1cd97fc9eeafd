"""Von Mises–Fisher(loc, concentration) on the sphere S^(d−1) ⊂ R^d, for every d ≥ 2.

Density p(x) = C_d(κ) exp(κ ⟨μ, x⟩) for unit x, with log C_d(κ) = (d/2 − 1) log κ − (d/2) log 2π
− log I_(d/2−1)(κ).

Sampling (Wood, 1994): the component w = ⟨z, μ⟩ ∈ [−1, 1] has the 1-D marginal density
p(w; κ) ∝ e^(κw) (1 − w²)^((d−3)/2) and is drawn by Wood's rejection sampler (Beta((d−1)/2,
(d−1)/2) proposals from the house's gamma sampler; on S², d = 3, by the exact inverse CDF
w = 1 + log(u + (1 − u) e^(−2κ))/κ instead, as TFP does); the direction orthogonal to μ is v,
uniform on S^(d−2) (a normalized Gaussian), and z = H (w, √(1 − w²) v), with H the Householder
reflection taking e₁ to μ. The sampler works with s = 1 − w (w ≈ 1 at large κ, where 1 − w would
cancel) throughout.

Gradients:

* in loc: exact, by autodiff through H (loc is normalized inside, so the gradient is tangent to
  the sphere: samples and densities depend on loc's direction only);
* in κ: an implicit reparameterization gradient of w through its marginal (Figurnov et al.,
  2018), dw/dκ = −(∂F/∂κ)(w; κ) / p(w; κ), attached by `jax.custom_jvp`, never finite
  differences. It is computed in the angle θ = arccos w, where the unnormalized density is
  g(θ) = e^(κ(cos θ − 1)) sin^(d−2) θ (smooth for every d ≥ 2, also d = 2 whose w-density is
  singular at ±1): with m = E[1 − cos Θ] = 1 − A_d(κ),
      dθ/dκ = −∫₀^θ (m − (1 − cos φ)) g(φ)/g(θ) dφ = +∫_θ^π (m − (1 − cos φ)) g(φ)/g(θ) dφ,
  the first form when θ is below the mode of g and the second above it, so that g(φ)/g(θ) ≤ 1
  everywhere (g is unimodal) and the gradient stays finite where p itself underflows; and
  dw/dκ = −sin θ · dθ/dκ. 1 − cos φ = 2 sin²(φ/2) and the exponent difference is formed as
  −2κ sin((φ−θ)/2) sin((φ+θ)/2), so nothing cancels at κ = 10⁴ in float32.

Every integral over θ is a fixed-order Gauss–Legendre rule on an interval that follows the
density: the normalizer and m (once per κ, 96 nodes) on [0, θ_hi] with θ_hi = min(π,
1.6 (√d + 9)/√κ), beyond which g is below e^(−40) of its peak (g ≤ θ^(d−2) exp(−2κθ²/π²), a
χ_(d−1) shape of scale π/(2√κ)); dθ/dκ (once per sample, 64 nodes) on [0, θ] or [θ, θ_hi].
The first rule gives log I_ν(κ) for every ν > −1/2 through Poisson's integral
    I_ν(κ) = (κ/2)^ν / (√π Γ(ν + 1/2)) ∫₀^π e^(κ cos θ) sin^(2ν) θ dθ,
so log C_d(κ) = −log |S^(d−2)| − κ − log ∫₀^π g(θ) dθ, with |S^(d−2)| = 2π^((d−1)/2)/Γ((d−1)/2).
jax.scipy.special has i0e/i1e only; this is stable from κ → 0 (where the integral is a Beta
function) to κ = 10⁵ and beyond (where it concentrates near θ = 0) and its κ-derivative is the
same rule's −m, exact to the rule.

Shapes: `loc` is B_loc + (d,), `concentration` is B_κ; the batch shape B is broadcast(B_loc, B_κ).
Samples have shape `sample_shape + B + (d,)` (one event axis, last); `log_prob` has shape
broadcast(x.shape[:-1], B); `entropy` and `kl_to_uniform` are B; `mean` is B + (d,).

There is no `noise`/`transform`/`noise_shape`: a rejection sampler consumes a random,
parameter-dependent amount of noise, so there is no fixed-shape parameter-free ε (as for
von_mises, gamma, beta; docs/DESIGN.md).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln, logsumexp

from reparam import checks
from reparam.families._gamma_sampler import batched_rejection, log_gamma

Array = jax.Array

PARAMS = ("loc", "concentration")
EVENT_NDIMS = 1
PARAM_EVENT_NDIMS = {"loc": 1}

# |‖loc‖ − 1| allowed: loc is normalized inside; this catches vectors that are not meant as
# directions (zeros, (1, 1, 0)), not the rounding of a normalization in low precision.
_UNIT_TOLERANCE = 1e-3


def _gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes and weights on [0, 1]."""
    nodes, weights = np.polynomial.legendre.leggauss(n)
    return 0.5 * (nodes + 1), 0.5 * weights


# Over [0, θ_hi] (normalizer, A_d, once per κ): 96 nodes put log I_ν within 2e-13 (relative) of
# scipy.special.ive for ν ≤ 100 and κ from 1e-4 to 1e5; 64 nodes would leave 1e-6 at ν = 100.
_GL_NODES, _GL_WEIGHTS = _gauss_legendre(96)
# Over [0, θ] or [θ, end] (dθ/dκ, once per sample): the integrand relative to g(θ) is smooth and
# monotone there; 64 nodes agree with the d = 3 closed form to 3e-12 (48 do as well).
_GL_SAMPLE_NODES, _GL_SAMPLE_WEIGHTS = _gauss_legendre(64)

# Wood's acceptance probability falls from 1 (κ → 0) to ≈ 0.66-0.71 (κ → ∞); measured ≥ 0.659
# over d ∈ {2, 3, 5, 10, 100, 1000} and κ from 1e-4 to 1e5. The compacted lists of
# `batched_rejection` are sized for a rejection rate of at most this.
_REJECTION_RATE = 0.35

# Relative size below which a tail of g is left out of an integral over θ: e^(−40) ≈ 4e-18.
_TAIL_LOG = 40.0


def _params(where: str, loc, concentration) -> tuple[Array, Array, tuple[int, ...]]:
    """Checked (unit loc, κ, batch shape); `where` is the short function name."""
    where = f"reparam.von_mises_fisher.{where}"
    (loc, concentration), batch_shape = checks.broadcast(
        where, event_ndims=PARAM_EVENT_NDIMS, loc=loc, concentration=concentration
    )
    if loc.shape[-1] < 2:
        raise ValueError(
            f"{where}: `loc` must have shape (..., d) with d ≥ 2 (a unit vector in R^d, the "
            f"sphere S^(d−1)); got shape {loc.shape}"
        )
    norm = jnp.sqrt(jnp.sum(loc * loc, axis=-1))
    checks.require(
        where,
        "loc",
        norm,
        lambda x, xp: xp.abs(x - 1) <= _UNIT_TOLERANCE,
        f"unit vectors on its last axis (norm within {_UNIT_TOLERANCE} of 1; the norm is shown)",
    )
    checks.positive(where, "concentration", concentration)
    checks.finite(where, "concentration", concentration)
    return loc / norm[..., None], concentration, batch_shape


def _compute_dtype(dtype):
    """float16/bfloat16 are computed in float32 (the quadrature and the sampler need range)."""
    return jnp.float32 if jnp.finfo(dtype).bits < 32 else jnp.dtype(dtype)


# ------------------------------------------------------------------ quadrature in θ = arccos w
def _theta_high(concentration: Array, power) -> Array:
    """θ_hi: g(θ) = e^(κ(cos θ − 1)) sin^power θ is below e^(−40) of its peak beyond it."""
    bound = 1.6 * (jnp.sqrt(power + 2.0) + 9.0) * jax.lax.rsqrt(concentration)
    return jax.lax.stop_gradient(jnp.minimum(math.pi, bound))


def _log_g_terms(concentration: Array, power) -> tuple[Array, Array]:
    """(log of g·weight at the nodes of [0, θ_hi], 2 sin²(θ/2) at them): shapes κ.shape + (n,)."""
    dtype = concentration.dtype
    high = _theta_high(concentration, power)[..., None]
    theta = high * jnp.asarray(_GL_NODES, dtype)
    one_minus_cos = 2 * jnp.sin(0.5 * theta) ** 2
    log_terms = -concentration[..., None] * one_minus_cos + jnp.log(
        high * jnp.asarray(_GL_WEIGHTS, dtype)
    )
    log_terms = log_terms + jnp.asarray(power, dtype)[..., None] * jnp.log(jnp.sin(theta))
    return log_terms, one_minus_cos


def _log_integral(concentration: Array, power) -> Array:
    """log ∫₀^π e^(κ(cos θ − 1)) sin^power θ dθ, elementwise; `power` = d − 2 = 2ν ≥ 0.

    Its κ-derivative (by autodiff through the rule; the interval is held fixed) is −m.
    """
    log_terms, _ = _log_g_terms(concentration, power)
    return logsumexp(log_terms, axis=-1)


def _one_minus_mean_cos(concentration: Array, power) -> Array:
    """m = E[1 − cos Θ] = 1 − A_d(κ) = 1 − I_(d/2)(κ)/I_(d/2−1)(κ), without cancellation."""
    log_terms, one_minus_cos = _log_g_terms(concentration, power)
    return jnp.sum(jax.nn.softmax(log_terms, axis=-1) * one_minus_cos, axis=-1)


def log_bessel_ive(order, x) -> Array:
    """log(I_ν(x) e^(−x)) for ν = `order` > −1/2 and x > 0, elementwise (broadcast).

    Poisson's integral by the module's Gauss–Legendre rule (module docstring): finite for every
    x > 0 and ν in range, where I_ν itself overflows. Differentiable in x. No value checks.
    """
    order, x = jnp.broadcast_arrays(
        *(jnp.asarray(v, checks.float_dtype(order, x)) for v in (order, x))
    )
    return (
        order * jnp.log(0.5 * x)
        - gammaln(order + 0.5)
        - 0.5 * math.log(math.pi)
        + _log_integral(x, 2 * order)
    )


def _log_sphere_area(n: int) -> float:
    """log |S^(n−1)|, the surface area of the unit sphere in R^n: log(2π^(n/2)/Γ(n/2))."""
    return math.log(2) + 0.5 * n * math.log(math.pi) - math.lgamma(0.5 * n)


def _log_normalizer(concentration: Array, d: int) -> Array:
    """−log C_d(κ) − κ = log |S^(d−2)| + log ∫₀^π g: log p(x) = −κ (1 − ⟨μ, x⟩) − this."""
    return _log_sphere_area(d - 1) + _log_integral(concentration, float(d - 2))


# ------------------------------------------------------------------ Wood's sampler for s = 1 − w
def _wood_draw(d: int, dtype):
    half = 0.5 * (d - 1)

    def draw(key: Array, m: int) -> tuple[Array, Array]:
        """Wood's noise: log(G₁/G₂) for the Beta((d−1)/2, (d−1)/2) draw G₁/(G₁ + G₂), and U."""
        key_gamma, key_u = jax.random.split(key)
        # One gamma sampler for both halves: a second copy would double the compiled code.
        log_g = log_gamma(key_gamma, jnp.full((2 * m,), half, dtype))
        return log_g[:m] - log_g[m:], jax.random.uniform(key_u, (m,), dtype)

    return draw


def _wood_test(d: int):
    def test(noise: tuple[Array, Array], params: tuple[Array, ...]) -> tuple[Array, Array]:
        """Wood's proposal and test, elementwise: (s = 1 − W, accepted), shapes (n,).

        Proposal W = (1 − (1 + b) Z)/(1 − (1 − b) Z), Z ~ Beta; accept if
        κ W + (d − 1) log(1 − x₀ W) − c ≥ log U, c = κ x₀ + (d − 1) log(1 − x₀²). Written as
          1 − W = 2bZ / ((1 − Z) + bZ),   W − x₀ = (1 − x₀) − (1 − W),
          1 − x₀ W = (1 − x₀) + x₀ (1 − W),   1 − x₀² = (1 − x₀)(1 + x₀),
        with Z and 1 − Z both from log(G₁/G₂) (a sigmoid each), so nothing cancels as b → 0.
        """
        log_ratio, u = noise
        concentration, b, one_minus_x0 = params
        z, one_minus_z = jax.nn.sigmoid(log_ratio), jax.nn.sigmoid(-log_ratio)
        s = 2 * b * z / (one_minus_z + b * z)
        x0 = 1 - one_minus_x0
        log_accept = concentration * (one_minus_x0 - s) + (d - 1) * (
            jnp.log(one_minus_x0 + x0 * s) - jnp.log(one_minus_x0) - jnp.log1p(x0)
        )
        return jnp.clip(s, 0.0, 2.0), log_accept >= jnp.log(u)

    return test


def _inverse_cdf_s2(key: Array, concentration: Array) -> Array:
    """s = 1 − w on S² (d = 3) by the exact inverse CDF, elementwise over a flat κ.

    There w has density κ e^(κw)/(2 sinh κ), so s = −log(u + (1 − u) e^(−2κ))/κ for u ~ U[0, 1):
    log1p((1 − u) expm1(−2κ)) below κ = 1/2 (no cancellation as κ → 0, where s → 2(1 − u)),
    logaddexp(log u, log1p(−u) − 2κ) above (no rounding of 1 − u as u → 0). No rejection: exact,
    and a fraction of Wood's cost in time and compiled code.
    """
    u = jax.random.uniform(key, concentration.shape, concentration.dtype)
    small = concentration < 0.5
    log_small = jnp.log1p((1 - u) * jnp.expm1(-2 * jnp.where(small, concentration, 0.0)))
    log_large = jnp.logaddexp(jnp.log(u), jnp.log1p(-u) - 2 * concentration)
    return jnp.clip(-jnp.where(small, log_small, log_large) / concentration, 0.0, 2.0)


@functools.partial(jax.jit, static_argnums=2)
def _wood(key: Array, concentration: Array, d: int) -> Array:
    """s = 1 − ⟨z, μ⟩ of vMF(μ, κ) on S^(d−1), elementwise over κ (any shape); no gradient.

    Wood's rejection sampler for every d except d = 3, which has an exact inverse CDF
    (`_inverse_cdf_s2`), as in TFP's VonMisesFisher.

    Non-positive, infinite or NaN κ (possible only under jit without `checks.checked`) yields NaN
    instead of looping forever. Wood's envelope parameters, without cancellation as κ → 0
    (b → 1) or κ → ∞ (b → 0):
      b = (d − 1)/(2κ + √(4κ² + (d − 1)²)),  1 − x₀ = 2b/(1 + b)  (x₀ = (1 − b)/(1 + b)).
    """
    dtype = concentration.dtype
    compute = _compute_dtype(dtype)
    shape = concentration.shape
    raw = concentration.reshape(-1).astype(compute)
    if raw.shape[0] == 0:
        return jnp.zeros(shape, dtype)
    valid = (raw > 0) & (raw < jnp.inf)
    # Above `largest`, b ≈ (d − 1)/(4κ) leaves the normal floats (flushed to 0; 2κ overflows
    # soon after): a test that never accepts. There 2κs ~ χ²(d − 1) to O(1/κ), so the draw for
    # `largest` is scaled by largest/κ (which underflows to 0 where s is below the normal range).
    largest = 1 / (64 * float(jnp.finfo(compute).tiny))
    kappa = jnp.where(valid, jnp.minimum(raw, largest), 1.0)
    rescale = jnp.where(raw > largest, largest / jnp.where(valid, raw, 1.0), 1.0)
    if d == 3:
        s = _inverse_cdf_s2(key, kappa)
        return jnp.where(valid, s * rescale, jnp.nan).astype(dtype).reshape(shape)
    b = (d - 1) / (2 * kappa + jnp.hypot(2 * kappa, jnp.asarray(d - 1, compute)))
    one_minus_x0 = 2 * b / (1 + b)
    s = batched_rejection(
        key,
        _wood_draw(d, compute),
        _wood_test(d),
        (kappa, b, one_minus_x0),
        _REJECTION_RATE,
        compute,
    )
    s = jnp.where(valid, s * rescale, jnp.nan)
    return s.astype(dtype).reshape(shape)


# ------------------------------------------------------------------ implicit gradient of s in κ
def _theta_of(s: Array) -> Array:
    """θ = arccos(1 − s) = 2 arcsin(√(s/2)), exact for small s."""
    return 2 * jnp.arcsin(jnp.sqrt(jnp.clip(0.5 * s, 0.0, 1.0)))


def _mode_s(concentration: Array, d: int) -> Array:
    """1 − cos θ* at the mode θ* of g (where κ sin²θ = (d − 2) cos θ), without cancellation:
    with q = √((d − 2)² + 4κ²), 1 − cos θ* = ((d − 2)²/(q + 2κ) + (d − 2)) / (q + d − 2)."""
    c = jnp.asarray(d - 2, concentration.dtype)
    q = jnp.hypot(c, 2 * concentration)
    return (c * c / (q + 2 * concentration) + c) / (q + c)


def _ds_dconcentration(s: Array, concentration: Array, d: int) -> Array:
    """ds/dκ = sin θ · dθ/dκ for s = 1 − w = 1 − cos θ (module docstring), shape of s.

    `concentration` broadcasts to s; m = 1 − A_d(κ) is computed at its own (batch) shape, once
    per κ rather than once per sample.
    """
    theta = _theta_of(s)
    sin_theta = jnp.sqrt(jnp.clip(s * (2 - s), 0.0, None))
    power = float(d - 2)
    m = jnp.broadcast_to(_one_minus_mean_cos(concentration, power), s.shape)
    concentration = jnp.broadcast_to(concentration, s.shape)
    below_mode = s <= _mode_s(concentration, d)
    # Above the mode: up to θ_hi when θ is in the bulk; in the far tail, up to where the log-
    # concave part of g has fallen by e^(−40) along its slope at θ.
    slope = -concentration * jnp.sin(theta) + power * jnp.cos(theta) / jnp.maximum(sin_theta, 1e-30)
    tail_end = jnp.minimum(math.pi, theta + _TAIL_LOG / jnp.maximum(-slope, 1e-30))
    high = _theta_high(concentration, power)
    end = jax.lax.stop_gradient(jnp.where(theta < high, high, tail_end))
    start = jnp.where(below_mode, 0.0, theta)
    stop = jnp.where(below_mode, theta, jnp.maximum(end, theta))
    nodes = jnp.asarray(_GL_SAMPLE_NODES, s.dtype)
    weights = jnp.asarray(_GL_SAMPLE_WEIGHTS, s.dtype)
    phi = start[..., None] + (stop - start)[..., None] * nodes
    theta_, kappa_ = theta[..., None], concentration[..., None]
    log_ratio = -2 * kappa_ * jnp.sin(0.5 * (phi - theta_)) * jnp.sin(0.5 * (phi + theta_))
    if d > 2:  # (d − 2)·log(sin φ / sin θ); skipped for d = 2, where θ may be 0 (0·−inf)
        log_ratio = log_ratio + power * (jnp.log(jnp.sin(phi)) - jnp.log(sin_theta[..., None]))
    integrand = (m[..., None] - 2 * jnp.sin(0.5 * phi) ** 2) * jnp.exp(log_ratio)
    integral = (stop - start) * jnp.sum(weights * integrand, axis=-1)
    dtheta = jnp.where(below_mode, -integral, integral)
    return sin_theta * dtheta


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _implicit_s(s: Array, concentration: Array, d: int) -> Array:
    """Returns `s` (drawn under stop_gradient(κ)); its JVP is the implicit one in κ.

    `concentration` has the batch shape (it broadcasts to s), so that per-κ work stays per κ.
    """
    return s


@_implicit_s.defjvp
def _implicit_s_jvp(d, primals, tangents):
    s, concentration = primals
    _, concentration_dot = tangents  # s is drawn under stop_gradient: no tangent of its own
    # Calling ourselves keeps higher derivatives right (as in von_mises._implicit_omega).
    out = _implicit_s(s, concentration, d)
    return out, _ds_dconcentration(out, concentration, d) * concentration_dot


def _bucket(n: int) -> int:
    """Padded length for n draws: a power of two ≥ 4096, so that draws of different sizes share
    one compiled sampler (its code is large: Wood's rounds with a gamma sampler inside)."""
    return max(4096, 1 << max(n - 1, 0).bit_length())


def _one_minus_w(key: Array, concentration: Array, d: int, shape: tuple[int, ...]) -> Array:
    """Implicitly reparameterized s = 1 − ⟨z, μ⟩ of `shape` (κ broadcasts to it)."""
    flat = jax.lax.stop_gradient(jnp.broadcast_to(concentration, shape)).reshape(-1)
    n = flat.shape[0]
    padded = jnp.pad(flat, (0, _bucket(n) - n), constant_values=1.0)
    s = _wood(key, padded, d)[:n].reshape(shape)
    return _implicit_s(s, concentration, d)


# ------------------------------------------------------------------ direction and reflection
def _uniform_direction(key: Array, shape: tuple[int, ...], dtype) -> Array:
    """v uniform on S^(m−1), shape = (..., m): a normalized standard normal vector."""
    g = jax.random.normal(key, shape, dtype)
    norm = jnp.sqrt(jnp.sum(g * g, axis=-1, keepdims=True))
    # g = 0 has probability 0 (but not float precision 0 for m = 1): then take e₁.
    e1 = jnp.zeros(shape[-1:], dtype).at[0].set(1)
    return jnp.where(norm > 0, g / jnp.where(norm > 0, norm, 1), e1)


def _reflect(z_prime: Array, loc: Array) -> Array:
    """H z' for the orthogonal map H with H e₁ = μ, differentiable in μ everywhere.

    H = σ (I − u uᵀ/(1 − σ μ₁)), u = e₁ − σ μ, σ = −1 if μ₁ ≥ 0 else +1: a Householder
    reflection (times −1 when μ₁ ≥ 0), so the denominator 1 − σμ₁ is ≥ 1 (no 0/0 at μ = ±e₁).
    """
    sigma = jnp.where(loc[..., :1] >= 0, -1.0, 1.0).astype(loc.dtype)
    u = -sigma * loc
    u = u.at[..., 0].add(1.0)
    denominator = 1 - sigma * loc[..., :1]
    projection = jnp.sum(u * z_prime, axis=-1, keepdims=True)
    return sigma * (z_prime - u * (projection / denominator))


def _assemble(key: Array, s: Array, loc: Array) -> Array:
    """z = H (1 − s, √(s(2 − s)) v), shape s.shape + (d,)."""
    d = loc.shape[-1]
    v = _uniform_direction(key, (*s.shape, d - 1), s.dtype)
    radius = jnp.sqrt(jnp.clip(s * (2 - s), 0.0, None))
    z_prime = jnp.concatenate([(1 - s)[..., None], radius[..., None] * v], axis=-1)
    return _reflect(z_prime, jnp.broadcast_to(loc, z_prime.shape))


def _draw(where: str, key: Array, loc, concentration, sample_shape) -> tuple[Array, Array, Array]:
    """(z, s, κ): checked parameters, one key split for w and the direction."""
    key = checks.key(key, f"reparam.von_mises_fisher.{where}")
    loc, concentration, batch_shape = _params(where, loc, concentration)
    shape = checks.sample_shape(f"reparam.von_mises_fisher.{where}", sample_shape) + batch_shape
    key_w, key_direction = jax.random.split(key)
    s = _one_minus_w(key_w, concentration, loc.shape[-1], shape)
    return _assemble(key_direction, s, loc), s, concentration


# ------------------------------------------------------------------ public API
def sample(key: Array, loc, concentration, sample_shape=()) -> Array:
    """Reparameterized unit vectors of shape `sample_shape + B + (d,)`.

    Args:
      key: a PRNG key.
      loc: mean direction μ, shape B_loc + (d,), d ≥ 2, unit vectors (normalized inside).
      concentration: κ > 0, shape B_κ.
      sample_shape: leading sample dimensions.

    Gradients: exact in loc (through the reflection), implicit in κ (module docstring).
    """
    z, _, _ = _draw("sample", key, loc, concentration, sample_shape)
    return z


def sample_and_log_prob(key: Array, loc, concentration, sample_shape=()) -> tuple[Array, Array]:
    """Draw z (shape `sample_shape + B + (d,)`) and log p(z) (shape `sample_shape + B`).

    log p(z) = −κ s − log |S^(d−2)| − log ∫g, from the drawn s = 1 − ⟨z, μ⟩ itself (exact where
    ⟨z, μ⟩ rounds to 1).
    """
    z, s, concentration = _draw("sample_and_log_prob", key, loc, concentration, sample_shape)
    d = z.shape[-1]
    return z, -concentration * s - _log_normalizer(concentration, d)


def log_prob(x, loc, concentration) -> Array:
    """log vMF(x; μ, κ), shape broadcast(x.shape[:-1], B); x's last axis must have size d.

    κ ⟨μ, x⟩ is formed as κ − κ ‖x − μ‖²/2 (equal for unit x), which does not cancel at large
    κ. Does not check that x is a unit vector (a property of the data; traced x cannot be
    checked without `checks.checked`).
    """
    where = "reparam.von_mises_fisher.log_prob"
    loc, concentration, batch_shape = _params("log_prob", loc, concentration)
    d = loc.shape[-1]
    checks.broadcastable(where, "x", jnp.shape(x), batch_shape, (d,))
    x = checks.numeric(where, "x", x).astype(loc.dtype)
    half_squared_distance = 0.5 * jnp.sum((x - loc) ** 2, axis=-1)
    return -concentration * half_squared_distance - _log_normalizer(concentration, d)


def _entropy(concentration: Array, d: int) -> Array:
    return concentration * _one_minus_mean_cos(concentration, float(d - 2)) + _log_normalizer(
        concentration, d
    )


def entropy(loc, concentration) -> Array:
    """H = −log C_d(κ) − κ A_d(κ) = κ (1 − A_d) + log |S^(d−2)| + log ∫g; shape B."""
    loc, concentration, batch_shape = _params("entropy", loc, concentration)
    return jnp.broadcast_to(_entropy(concentration, loc.shape[-1]), batch_shape)


def mean(loc, concentration) -> Array:
    """E[z] = A_d(κ) μ, A_d = I_(d/2)(κ)/I_(d/2−1)(κ); shape B + (d,)."""
    loc, concentration, batch_shape = _params("mean", loc, concentration)
    d = loc.shape[-1]
    ratio = 1 - _one_minus_mean_cos(concentration, float(d - 2))
    return jnp.broadcast_to(ratio[..., None] * loc, (*batch_shape, d))


def kl_to_uniform(loc, concentration) -> Array:
    """KL(vMF(μ, κ) ‖ uniform on S^(d−1)) = log |S^(d−1)| − H ≥ 0; shape B."""
    loc, concentration, batch_shape = _params("kl_to_uniform", loc, concentration)
    d = loc.shape[-1]
    return jnp.broadcast_to(_log_sphere_area(d) - _entropy(concentration, d), batch_shape)


__all__ = [
    "EVENT_NDIMS",
    "PARAMS",
    "PARAM_EVENT_NDIMS",
    "entropy",
    "kl_to_uniform",
    "log_bessel_ive",
    "log_prob",
    "mean",
    "sample",
    "sample_and_log_prob",
]
