"""KL divergences KL(p ‖ q) = E_p[log p(z) − log q(z)]: closed forms and a Monte-Carlo fallback.

Closed forms are pure functions named `<p>_<q>` that take p's parameters, then q's, each in the
order of the family's PARAMS with a `_p` / `_q` suffix, e.g.
`normal_normal(loc_p, scale_p, loc_q, scale_q)`. They are elementwise over batch shapes: the
result has shape `broadcast(batch shapes of all parameters)`; event axes (the last axis of a
`loc` or `concentration` vector, the last two of a `scale_tril`) are summed over.

`kl_divergence(p, p_params, q, q_params, *, key=None, num_samples=1)` dispatches on the family
modules (`reparam.normal`, ...): the registered closed form if there is one, else
`monte_carlo_kl`, a reparameterized estimate whose gradient flows to both parameter sets. The key
is keyword-only because only the Monte-Carlo path needs one (the rule in `reparam.checks`: key
first where a function always draws, keyword-only `key=` where it draws only on some paths).

Parameters are validated through `reparam.checks` like the families do, so bad values raise a
ValueError naming the argument (`scale_q`), and inside `jax.jit` under `checks.checked`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import MappingProxyType, ModuleType
from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy.special import digamma, gammaln, i0e, i1e
from jax.typing import ArrayLike

from reparam import checks
from reparam._linalg import cholesky, solve_lower, triangular_solve

Array = jax.Array
Shape = tuple[int, ...]

_EULER_GAMMA = 0.5772156649015329


def _where(name: str) -> str:
    return f"reparam.kl.{name}"


def _positive(where: str, **params: Array) -> None:
    for name, value in params.items():
        checks.positive(where, name, value)


def _relative_log_ratio_term(log_ratio: Array) -> Array:
    """r − 1 − log r for r = exp(log_ratio), ≥ 0, without the cancellation of r − 1 near r = 1."""
    return jnp.expm1(log_ratio) - log_ratio


# ---------------------------------------------------------------- location-scale families
def _normal_kl(
    where: str, loc_p: ArrayLike, scale_p: ArrayLike, loc_q: ArrayLike, scale_q: ArrayLike
) -> Array:
    (loc_p, scale_p, loc_q, scale_q), batch_shape = checks.broadcast(
        where, loc_p=loc_p, scale_p=scale_p, loc_q=loc_q, scale_q=scale_q
    )
    _positive(where, scale_p=scale_p, scale_q=scale_q)
    # KL = ½[(σp/σq)² − 1 − 2 log(σp/σq)] + ½((μp − μq)/σq)²; the bracket via expm1 so that
    # KL(p, p) is exactly 0 and nearby values keep their relative precision.
    log_ratio = jnp.log(scale_p) - jnp.log(scale_q)
    kl = 0.5 * _relative_log_ratio_term(2.0 * log_ratio) + 0.5 * ((loc_p - loc_q) / scale_q) ** 2
    return jnp.broadcast_to(kl, batch_shape)


def normal_normal(
    loc_p: ArrayLike, scale_p: ArrayLike, loc_q: ArrayLike, scale_q: ArrayLike
) -> Array:
    """KL(N(loc_p, scale_p²) ‖ N(loc_q, scale_q²)), elementwise; shape broadcast of the four."""
    return _normal_kl(_where("normal_normal"), loc_p, scale_p, loc_q, scale_q)


def lognormal_lognormal(
    loc_p: ArrayLike, scale_p: ArrayLike, loc_q: ArrayLike, scale_q: ArrayLike
) -> Array:
    """KL between log-normals (parameters of the underlying normals); equals normal_normal.

    KL is invariant under a shared bijection (here exp), so it is the normals' KL.
    """
    return _normal_kl(_where("lognormal_lognormal"), loc_p, scale_p, loc_q, scale_q)


def tanh_normal_tanh_normal(
    loc_p: ArrayLike, scale_p: ArrayLike, loc_q: ArrayLike, scale_q: ArrayLike
) -> Array:
    """KL between tanh-normals (parameters of the pre-tanh normals); equals normal_normal.

    KL is invariant under a shared bijection (here tanh), so it is the normals' KL.
    """
    return _normal_kl(_where("tanh_normal_tanh_normal"), loc_p, scale_p, loc_q, scale_q)


def laplace_laplace(
    loc_p: ArrayLike, scale_p: ArrayLike, loc_q: ArrayLike, scale_q: ArrayLike
) -> Array:
    """KL(Laplace(loc_p, scale_p) ‖ Laplace(loc_q, scale_q)), elementwise.

    = log(b_q/b_p) + |μp − μq|/b_q + (b_p/b_q)·exp(−|μp − μq|/b_p) − 1.
    """
    where = _where("laplace_laplace")
    (loc_p, scale_p, loc_q, scale_q), batch_shape = checks.broadcast(
        where, loc_p=loc_p, scale_p=scale_p, loc_q=loc_q, scale_q=scale_q
    )
    _positive(where, scale_p=scale_p, scale_q=scale_q)
    distance = jnp.abs(loc_p - loc_q)
    log_ratio = jnp.log(scale_p) - jnp.log(scale_q)
    # r·e^{−d/b_p} − 1 − log r (r = b_p/b_q) as expm1(log r − d/b_p) − log r: exact 0 at p = q.
    kl = jnp.expm1(log_ratio - distance / scale_p) - log_ratio + distance / scale_q
    return jnp.broadcast_to(kl, batch_shape)


def gumbel_gumbel(
    loc_p: ArrayLike, scale_p: ArrayLike, loc_q: ArrayLike, scale_q: ArrayLike
) -> Array:
    """KL(Gumbel(loc_p, scale_p) ‖ Gumbel(loc_q, scale_q)) (max-Gumbel, scipy's gumbel_r).

    With r = β_p/β_q: log(1/r) + γ(r − 1) + (μp − μq)/β_q + Γ(1 + r)·exp((μq − μp)/β_q) − 1,
    from E[T] = γ and E[exp(−sT)] = Γ(1 + s) for a standard Gumbel T.
    """
    where = _where("gumbel_gumbel")
    (loc_p, scale_p, loc_q, scale_q), batch_shape = checks.broadcast(
        where, loc_p=loc_p, scale_p=scale_p, loc_q=loc_q, scale_q=scale_q
    )
    _positive(where, scale_p=scale_p, scale_q=scale_q)
    ratio = scale_p / scale_q
    shift = (loc_p - loc_q) / scale_q
    # Γ(1 + r)e^{−shift} in log space: it overflows separately when loc_q ≫ loc_p.
    kl = (
        -jnp.log(ratio)
        + _EULER_GAMMA * (ratio - 1.0)
        + shift
        + jnp.expm1(gammaln(1.0 + ratio) - shift)
    )
    return jnp.broadcast_to(kl, batch_shape)


def cauchy_cauchy(
    loc_p: ArrayLike, scale_p: ArrayLike, loc_q: ArrayLike, scale_q: ArrayLike
) -> Array:
    """KL(Cauchy(loc_p, scale_p) ‖ Cauchy(loc_q, scale_q)), elementwise.

    = log[((γp + γq)² + (μp − μq)²) / (4 γp γq)] (Chyzak & Nielsen 2019); symmetric in p, q.
    """
    where = _where("cauchy_cauchy")
    (loc_p, scale_p, loc_q, scale_q), batch_shape = checks.broadcast(
        where, loc_p=loc_p, scale_p=scale_p, loc_q=loc_q, scale_q=scale_q
    )
    _positive(where, scale_p=scale_p, scale_q=scale_q)
    # (γp + γq)²/(4γpγq) = 1 + (γp − γq)²/(4γpγq): log1p keeps KL(p, p) = 0 and small values exact.
    kl = jnp.log1p(((scale_p - scale_q) ** 2 + (loc_p - loc_q) ** 2) / (4.0 * scale_p * scale_q))
    return jnp.broadcast_to(kl, batch_shape)


def half_normal_half_normal(scale_p: ArrayLike, scale_q: ArrayLike) -> Array:
    """KL(HalfNormal(σ_p) ‖ HalfNormal(σ_q)) = log(σ_q/σ_p) + σ_p²/(2σ_q²) − ½, elementwise.

    Both densities are twice a centred normal's on z ≥ 0, so the log-ratio and the KL are those
    of N(0, σ_p²) ‖ N(0, σ_q²).
    """
    where = _where("half_normal_half_normal")
    (scale_p, scale_q), batch_shape = checks.broadcast(where, scale_p=scale_p, scale_q=scale_q)
    _positive(where, scale_p=scale_p, scale_q=scale_q)
    kl = 0.5 * _relative_log_ratio_term(2.0 * (jnp.log(scale_p) - jnp.log(scale_q)))
    return jnp.broadcast_to(kl, batch_shape)


def half_cauchy_half_cauchy(scale_p: ArrayLike, scale_q: ArrayLike) -> Array:
    """KL(HalfCauchy(γ_p) ‖ HalfCauchy(γ_q)) = log[(γ_p + γ_q)²/(4γ_pγ_q)], elementwise: as for
    half_normal_half_normal, that of Cauchy(0, γ_p) ‖ Cauchy(0, γ_q)."""
    where = _where("half_cauchy_half_cauchy")
    (scale_p, scale_q), batch_shape = checks.broadcast(where, scale_p=scale_p, scale_q=scale_q)
    _positive(where, scale_p=scale_p, scale_q=scale_q)
    kl = jnp.log1p((scale_p - scale_q) ** 2 / (4.0 * scale_p * scale_q))
    return jnp.broadcast_to(kl, batch_shape)


# ---------------------------------------------------------------- positive / bounded families
def exponential_exponential(rate_p: ArrayLike, rate_q: ArrayLike) -> Array:
    """KL(Exp(rate_p) ‖ Exp(rate_q)) = λq/λp − 1 − log(λq/λp), elementwise."""
    where = _where("exponential_exponential")
    (rate_p, rate_q), batch_shape = checks.broadcast(where, rate_p=rate_p, rate_q=rate_q)
    _positive(where, rate_p=rate_p, rate_q=rate_q)
    kl = _relative_log_ratio_term(jnp.log(rate_q) - jnp.log(rate_p))
    return jnp.broadcast_to(kl, batch_shape)


def gamma_gamma(
    concentration_p: ArrayLike, rate_p: ArrayLike, concentration_q: ArrayLike, rate_q: ArrayLike
) -> Array:
    """KL(Gamma(α_p, β_p) ‖ Gamma(α_q, β_q)) with rate β, elementwise.

    = (α_p − α_q)ψ(α_p) − log Γ(α_p) + log Γ(α_q) + α_q log(β_p/β_q) + α_p(β_q/β_p − 1).
    """
    where = _where("gamma_gamma")
    (a_p, b_p, a_q, b_q), batch_shape = checks.broadcast(
        where,
        concentration_p=concentration_p,
        rate_p=rate_p,
        concentration_q=concentration_q,
        rate_q=rate_q,
    )
    _positive(where, concentration_p=a_p, rate_p=b_p, concentration_q=a_q, rate_q=b_q)
    return jnp.broadcast_to(_gamma_terms(a_p, b_p, a_q, b_q), batch_shape)


def _gamma_terms(a_p: Array, b_p: Array, a_q: Array, b_q: Array) -> Array:
    """KL(Gamma(a_p, rate b_p) ‖ Gamma(a_q, rate b_q)) of checked parameters (shapes broadcast)."""
    log_ratio = jnp.log(b_q) - jnp.log(b_p)
    # α_q log(β_p/β_q) + α_p(β_q/β_p − 1) = α_p·(r − 1 − log r) + (α_p − α_q)·log r, r = β_q/β_p.
    return (
        (a_p - a_q) * digamma(a_p)
        - gammaln(a_p)
        + gammaln(a_q)
        + a_p * _relative_log_ratio_term(log_ratio)
        + (a_p - a_q) * log_ratio
    )


def inverse_gamma_inverse_gamma(
    concentration_p: ArrayLike, scale_p: ArrayLike, concentration_q: ArrayLike, scale_q: ArrayLike
) -> Array:
    """KL(InvGamma(a_p, s_p) ‖ InvGamma(a_q, s_q)), elementwise.

    1/z ~ Gamma(a, rate=s), and KL is invariant under a shared bijection (here 1/z), so it is
    gamma_gamma(a_p, s_p, a_q, s_q).
    """
    where = _where("inverse_gamma_inverse_gamma")
    (a_p, s_p, a_q, s_q), batch_shape = checks.broadcast(
        where,
        concentration_p=concentration_p,
        scale_p=scale_p,
        concentration_q=concentration_q,
        scale_q=scale_q,
    )
    _positive(where, concentration_p=a_p, scale_p=s_p, concentration_q=a_q, scale_q=s_q)
    return jnp.broadcast_to(_gamma_terms(a_p, s_p, a_q, s_q), batch_shape)


def chi2_chi2(df_p: ArrayLike, df_q: ArrayLike) -> Array:
    """KL(χ²(k_p) ‖ χ²(k_q)), elementwise: gamma_gamma(k_p/2, ½, k_q/2, ½), which with equal
    rates is (a_p − a_q)ψ(a_p) − log Γ(a_p) + log Γ(a_q) for a = k/2."""
    where = _where("chi2_chi2")
    (df_p, df_q), batch_shape = checks.broadcast(where, df_p=df_p, df_q=df_q)
    _positive(where, df_p=df_p, df_q=df_q)
    a_p, a_q = df_p / 2, df_q / 2
    kl = (a_p - a_q) * digamma(a_p) - gammaln(a_p) + gammaln(a_q)
    return jnp.broadcast_to(kl, batch_shape)


def pareto_pareto(
    concentration_p: ArrayLike, scale_p: ArrayLike, concentration_q: ArrayLike, scale_q: ArrayLike
) -> Array:
    """KL(Pareto(α_p, s_p) ‖ Pareto(α_q, s_q)), elementwise.

    = α_q·log(s_p/s_q) + r − 1 − log r with r = α_q/α_p, when s_q ≤ s_p (from E_p[log z] =
    log s_p + 1/α_p), and +inf when s_q > s_p (p puts mass on [s_p, s_q), where q has none).
    The gradient is that of the finite branch where s_q ≤ s_p and 0 where the KL is +inf.
    """
    where = _where("pareto_pareto")
    (a_p, s_p, a_q, s_q), batch_shape = checks.broadcast(
        where,
        concentration_p=concentration_p,
        scale_p=scale_p,
        concentration_q=concentration_q,
        scale_q=scale_q,
    )
    _positive(where, concentration_p=a_p, scale_p=s_p, concentration_q=a_q, scale_q=s_q)
    # Both branches have finite gradients, so where() does not leak NaN into the other one.
    finite = a_q * (jnp.log(s_p) - jnp.log(s_q)) + _relative_log_ratio_term(
        jnp.log(a_q) - jnp.log(a_p)
    )
    kl = jnp.where(s_q <= s_p, finite, jnp.inf)
    return jnp.broadcast_to(kl, batch_shape)


def weibull_weibull(
    scale_p: ArrayLike, concentration_p: ArrayLike, scale_q: ArrayLike, concentration_q: ArrayLike
) -> Array:
    """KL(Weibull(λ_p, k_p) ‖ Weibull(λ_q, k_q)) (scale λ, concentration k), elementwise.

    Bauckhage (2013): log k_p − k_p log λ_p − log k_q + k_q log λ_q + (k_p − k_q)(log λ_p − γ/k_p)
    + (λ_p/λ_q)^{k_q} Γ(k_q/k_p + 1) − 1, which collapses, with L = log(λ_p/λ_q), to
    log(k_p/k_q) − k_q L + γ(k_q/k_p − 1) + [exp(k_q L + log Γ(k_q/k_p + 1)) − 1].
    """
    where = _where("weibull_weibull")
    (lam_p, k_p, lam_q, k_q), batch_shape = checks.broadcast(
        where,
        scale_p=scale_p,
        concentration_p=concentration_p,
        scale_q=scale_q,
        concentration_q=concentration_q,
    )
    _positive(where, scale_p=lam_p, concentration_p=k_p, scale_q=lam_q, concentration_q=k_q)
    log_scale_ratio = jnp.log(lam_p) - jnp.log(lam_q)
    # The power term through exp of a log (no early overflow); expm1 keeps KL(p, p) = 0 exactly.
    kl = (
        jnp.log(k_p)
        - jnp.log(k_q)
        - k_q * log_scale_ratio
        + _EULER_GAMMA * (k_q / k_p - 1.0)
        + jnp.expm1(k_q * log_scale_ratio + gammaln(k_q / k_p + 1.0))
    )
    return jnp.broadcast_to(kl, batch_shape)


def beta_beta(
    concentration1_p: ArrayLike,
    concentration0_p: ArrayLike,
    concentration1_q: ArrayLike,
    concentration0_q: ArrayLike,
) -> Array:
    """KL(Beta(a_p, b_p) ‖ Beta(a_q, b_q)) (a = concentration1, b = concentration0), elementwise.

    = log B(a_q, b_q) − log B(a_p, b_p) + (a_p − a_q)ψ(a_p) + (b_p − b_q)ψ(b_p)
      + (a_q − a_p + b_q − b_p)ψ(a_p + b_p).
    """
    where = _where("beta_beta")
    (a_p, b_p, a_q, b_q), batch_shape = checks.broadcast(
        where,
        concentration1_p=concentration1_p,
        concentration0_p=concentration0_p,
        concentration1_q=concentration1_q,
        concentration0_q=concentration0_q,
    )
    _positive(
        where,
        concentration1_p=a_p,
        concentration0_p=b_p,
        concentration1_q=a_q,
        concentration0_q=b_q,
    )
    kl = _dirichlet_terms(
        jnp.stack(jnp.broadcast_arrays(a_p, b_p), axis=-1),
        jnp.stack(jnp.broadcast_arrays(a_q, b_q), axis=-1),
    )
    return jnp.broadcast_to(kl, batch_shape)


def _dirichlet_terms(alpha_p: Array, alpha_q: Array) -> Array:
    """KL(Dir(α_p) ‖ Dir(α_q)) over the last axis (shapes broadcast)."""
    total_p = jnp.sum(alpha_p, axis=-1)
    total_q = jnp.sum(alpha_q, axis=-1)
    return (
        gammaln(total_p)
        - gammaln(total_q)
        - jnp.sum(gammaln(alpha_p) - gammaln(alpha_q), axis=-1)
        + jnp.sum((alpha_p - alpha_q) * (digamma(alpha_p) - digamma(total_p)[..., None]), axis=-1)
    )


def dirichlet_dirichlet(concentration_p: ArrayLike, concentration_q: ArrayLike) -> Array:
    """KL(Dir(α_p) ‖ Dir(α_q)); α of shape (..., K), result of shape broadcast(...).

    = log Γ(α_p,0) − log Γ(α_q,0) − Σ[log Γ(α_p,i) − log Γ(α_q,i)]
      + Σ(α_p,i − α_q,i)(ψ(α_p,i) − ψ(α_p,0)), with α_0 = Σ α_i.
    """
    where = _where("dirichlet_dirichlet")
    (alpha_p, alpha_q), batch_shape = checks.broadcast(
        where,
        {"concentration_p": 1, "concentration_q": 1},
        concentration_p=concentration_p,
        concentration_q=concentration_q,
    )
    checks.event_size(where, "concentration_q", alpha_q, alpha_p.shape[-1])
    _positive(where, concentration_p=alpha_p, concentration_q=alpha_q)
    return jnp.broadcast_to(_dirichlet_terms(alpha_p, alpha_q), batch_shape)


def uniform_uniform(
    low_p: ArrayLike, high_p: ArrayLike, low_q: ArrayLike, high_q: ArrayLike
) -> Array:
    """KL(U(low_p, high_p) ‖ U(low_q, high_q)), elementwise.

    = log((high_q − low_q)/(high_p − low_p)) when [low_p, high_p] ⊆ [low_q, high_q], and +inf
    otherwise (p puts mass where q has none). The gradient is that of the finite branch where
    the supports nest and 0 where the KL is +inf (never NaN).
    """
    where = _where("uniform_uniform")
    (low_p, high_p, low_q, high_q), batch_shape = checks.broadcast(
        where, low_p=low_p, high_p=high_p, low_q=low_q, high_q=high_q
    )
    checks.less(where, "low_p", low_p, "high_p", high_p)
    checks.less(where, "low_q", low_q, "high_q", high_q)
    nested = (low_q <= low_p) & (high_p <= high_q)
    # Both branches have finite gradients, so where() does not leak NaN into the other one.
    finite = jnp.log(high_q - low_q) - jnp.log(high_p - low_p)
    kl = jnp.where(nested, finite, jnp.inf)
    return jnp.broadcast_to(kl, batch_shape)


def von_mises_von_mises(
    loc_p: ArrayLike, concentration_p: ArrayLike, loc_q: ArrayLike, concentration_q: ArrayLike
) -> Array:
    """KL(vonMises(μ_p, κ_p) ‖ vonMises(μ_q, κ_q)), elementwise.

    = A(κ_p)(κ_p − κ_q cos(μ_p − μ_q)) + log I0(κ_q) − log I0(κ_p), A = I1/I0, using
    E_p[cos(z − μ_p)] = A(κ_p) and E_p[sin(z − μ_p)] = 0.
    """
    where = _where("von_mises_von_mises")
    (loc_p, k_p, loc_q, k_q), batch_shape = checks.broadcast(
        where,
        loc_p=loc_p,
        concentration_p=concentration_p,
        loc_q=loc_q,
        concentration_q=concentration_q,
    )
    _positive(where, concentration_p=k_p, concentration_q=k_q)
    # Exponentially scaled Bessel functions: log I0(κ) = log i0e(κ) + κ, no overflow at large κ.
    mean_cos = i1e(k_p) / i0e(k_p)
    kl = (
        mean_cos * (k_p - k_q * jnp.cos(loc_p - loc_q))
        + jnp.log(i0e(k_q))
        + k_q
        - jnp.log(i0e(k_p))
        - k_p
    )
    return jnp.broadcast_to(kl, batch_shape)


# ---------------------------------------------------------------- multivariate normals
def _check_square(where: str, name: str, value: Array, size: int) -> None:
    checks.event_size(where, name, value, size, axis=-1)
    checks.event_size(where, name, value, size, axis=-2)


def _diagonal(tril: Array) -> Array:
    return jnp.diagonal(tril, axis1=-2, axis2=-1)


def multivariate_normal_multivariate_normal(
    loc_p: ArrayLike, scale_tril_p: ArrayLike, loc_q: ArrayLike, scale_tril_q: ArrayLike
) -> Array:
    """KL(N(μ_p, L_p L_pᵀ) ‖ N(μ_q, L_q L_qᵀ)) for loc (..., K) and scale_tril (..., K, K).

    = ½[‖L_q⁻¹L_p‖²_F + ‖L_q⁻¹(μ_p − μ_q)‖² − K] + Σ log diag L_q − Σ log diag L_p, by
    triangular solves (no inverse, no Cholesky). scale_tril must be lower triangular with a
    positive diagonal; its strictly upper triangle is ignored. Result shape: the batch shape.
    """
    where = _where("multivariate_normal_multivariate_normal")
    (loc_p, tril_p, loc_q, tril_q), batch_shape = checks.broadcast(
        where,
        {"loc_p": 1, "scale_tril_p": 2, "loc_q": 1, "scale_tril_q": 2},
        loc_p=loc_p,
        scale_tril_p=scale_tril_p,
        loc_q=loc_q,
        scale_tril_q=scale_tril_q,
    )
    size = loc_p.shape[-1]
    checks.event_size(where, "loc_q", loc_q, size)
    _check_square(where, "scale_tril_p", tril_p, size)
    _check_square(where, "scale_tril_q", tril_q, size)
    diag_p, diag_q = _diagonal(tril_p), _diagonal(tril_q)
    checks.require(where, "scale_tril_p", diag_p, lambda x, xp: x > 0, "with a positive diagonal")
    checks.require(where, "scale_tril_q", diag_q, lambda x, xp: x > 0, "with a positive diagonal")
    tril_p, tril_q = jnp.tril(tril_p), jnp.tril(tril_q)
    whitened_scale = triangular_solve(tril_q, tril_p)  # L_q⁻¹ L_p: tr(Σ_q⁻¹Σ_p) = its squared norm
    whitened_shift = solve_lower(tril_q, loc_p - loc_q)
    kl = (
        0.5 * (jnp.sum(whitened_scale**2, axis=(-2, -1)) - size)
        + 0.5 * jnp.sum(whitened_shift**2, axis=-1)
        + jnp.sum(jnp.log(diag_q), axis=-1)
        - jnp.sum(jnp.log(diag_p), axis=-1)
    )
    return jnp.broadcast_to(kl, batch_shape)


def low_rank_normal_normal(
    loc_p: ArrayLike,
    cov_factor_p: ArrayLike,
    scale_diag_p: ArrayLike,
    loc_q: ArrayLike,
    scale_q: ArrayLike,
) -> Array:
    """KL(N(μ_p, W Wᵀ + diag(d²)) ‖ N(μ_q, diag(σ_q²))), summed over the event axis K.

    Shapes: loc_p, scale_diag_p, loc_q, scale_q (..., K); cov_factor_p (..., K, R). q is a
    `reparam.normal` with independent coordinates on the last axis (the usual VAE prior). The
    log-determinant of Σ_p uses the matrix determinant lemma with the R × R capacitance matrix
    I + Wᵀ diag(d⁻²) W, so the cost is O(K R²), not O(K³).
    """
    where = _where("low_rank_normal_normal")
    (loc_p, factor, diag_p, loc_q, scale_q), batch_shape = checks.broadcast(
        where,
        {"loc_p": 1, "cov_factor_p": 2, "scale_diag_p": 1, "loc_q": 1, "scale_q": 1},
        loc_p=loc_p,
        cov_factor_p=cov_factor_p,
        scale_diag_p=scale_diag_p,
        loc_q=loc_q,
        scale_q=scale_q,
    )
    size = loc_p.shape[-1]
    checks.event_size(where, "cov_factor_p", factor, size, axis=-2)
    for name, value in (("scale_diag_p", diag_p), ("loc_q", loc_q), ("scale_q", scale_q)):
        checks.event_size(where, name, value, size)
    _positive(where, scale_diag_p=diag_p, scale_q=scale_q)
    rank = factor.shape[-1]
    trace = jnp.sum((jnp.sum(factor**2, axis=-1) + diag_p**2) / scale_q**2, axis=-1)
    mahalanobis = jnp.sum(((loc_p - loc_q) / scale_q) ** 2, axis=-1)
    scaled = factor / diag_p[..., None]
    capacitance = jnp.eye(rank, dtype=factor.dtype) + jnp.swapaxes(scaled, -1, -2) @ scaled
    log_det_capacitance = 2.0 * jnp.sum(jnp.log(_diagonal(cholesky(capacitance))), -1)
    log_det_p = 2.0 * jnp.sum(jnp.log(diag_p), axis=-1) + log_det_capacitance
    log_det_q = 2.0 * jnp.sum(jnp.log(scale_q), axis=-1)
    kl = 0.5 * (trace + mahalanobis - size + log_det_q - log_det_p)
    return jnp.broadcast_to(kl, batch_shape)


# ---------------------------------------------------------------- registry and dispatch
def _registered(p: str, q: str, fn: Callable[..., Array]) -> tuple[tuple[str, str], Callable]:
    return (f"reparam.families.{p}", f"reparam.families.{q}"), fn


#: Closed forms by (p module name, q module name); read-only, looked up by `kl_divergence`.
#: generalized_normal has none: with loc_p ≠ loc_q, E_p|z − loc_q|^β has no closed form for
#: general β, even for equal powers (β = 1, 2 are laplace_laplace and normal_normal).
CLOSED_FORMS: MappingProxyType[tuple[str, str], Callable[..., Array]] = MappingProxyType(
    dict(
        [
            _registered("normal", "normal", normal_normal),
            _registered("lognormal", "lognormal", lognormal_lognormal),
            _registered("tanh_normal", "tanh_normal", tanh_normal_tanh_normal),
            _registered("laplace", "laplace", laplace_laplace),
            _registered("gumbel", "gumbel", gumbel_gumbel),
            _registered("cauchy", "cauchy", cauchy_cauchy),
            _registered("exponential", "exponential", exponential_exponential),
            _registered("gamma", "gamma", gamma_gamma),
            _registered("weibull", "weibull", weibull_weibull),
            _registered("beta", "beta", beta_beta),
            _registered("dirichlet", "dirichlet", dirichlet_dirichlet),
            _registered("uniform", "uniform", uniform_uniform),
            _registered("von_mises", "von_mises", von_mises_von_mises),
            _registered(
                "multivariate_normal",
                "multivariate_normal",
                multivariate_normal_multivariate_normal,
            ),
            _registered("low_rank_normal", "normal", low_rank_normal_normal),
            _registered("half_normal", "half_normal", half_normal_half_normal),
            _registered("half_cauchy", "half_cauchy", half_cauchy_half_cauchy),
            _registered("inverse_gamma", "inverse_gamma", inverse_gamma_inverse_gamma),
            _registered("chi2", "chi2", chi2_chi2),
            _registered("pareto", "pareto", pareto_pareto),
        ]
    )
)


def _family_params(where: str, role: str, module: ModuleType, params: Any) -> tuple:
    name = f"{role}_params"
    if not isinstance(params, Sequence) or isinstance(params, str):
        raise TypeError(
            f"{where}: `{name}` must be a tuple of {module.__name__}'s parameters, got {params!r}"
        )
    expected = getattr(module, "PARAMS", None)
    if expected is not None and len(params) != len(expected):
        raise TypeError(
            f"{where}: `{name}` must hold {len(expected)} parameters {tuple(expected)} for "
            f"{module.__name__}, got {len(params)}"
        )
    return tuple(params)


def _sum_trailing(values: Array, ndims: int) -> Array:
    return jnp.sum(values, axis=tuple(range(-ndims, 0))) if ndims > 0 else values


def monte_carlo_kl(
    p: ModuleType,
    p_params: Sequence[ArrayLike],
    q: ModuleType,
    q_params: Sequence[ArrayLike],
    *,
    key: Array,
    num_samples: int = 1,
) -> Array:
    """Reparameterized estimate mean_n[log p(z_n) − log q(z_n)], z = p.sample(key, *p_params).

    Unbiased for KL(p ‖ q); its gradient flows to p_params through the pathwise samples and to
    q_params through q.log_prob. Shape: the batch shape of log p(z) − log q(z). When the families
    have different event ranks (a multivariate p against a univariate q such as reparam.normal),
    the lower-rank log-density is summed over the extra trailing axes: q's coordinates are
    treated as independent. z outside q's support gives +inf.

    Args:
      p, q: family modules (reparam.normal, ...).
      p_params, q_params: their parameters in PARAMS order.
      key: PRNG key for the draws (keyword only).
      num_samples: number of draws averaged (a Python int, static under jit).
    """
    where = _where("monte_carlo_kl")
    p = checks.family(where, p, "sample", "log_prob", name="p")
    q = checks.family(where, q, "sample", "log_prob", name="q")
    p_params = _family_params(where, "p", p, p_params)
    q_params = _family_params(where, "q", q, q_params)
    key = checks.key(key, where)
    num_samples = checks.count(where, "num_samples", num_samples)
    z = p.sample(key, *p_params, sample_shape=(num_samples,))
    log_p = p.log_prob(z, *p_params)
    log_q = q.log_prob(z, *q_params)
    p_rank, q_rank = getattr(p, "EVENT_NDIMS", 0), getattr(q, "EVENT_NDIMS", 0)
    log_p = _sum_trailing(log_p, q_rank - p_rank)
    log_q = _sum_trailing(log_q, p_rank - q_rank)
    return jnp.mean(log_p - log_q, axis=0)


def closed_form(p: ModuleType, q: ModuleType) -> Callable[..., Array] | None:
    """The registered closed-form KL(p ‖ q) function for two family modules, or None."""
    return CLOSED_FORMS.get((getattr(p, "__name__", None), getattr(q, "__name__", None)))


def kl_divergence(
    p: ModuleType,
    p_params: Sequence[ArrayLike],
    q: ModuleType,
    q_params: Sequence[ArrayLike],
    *,
    key: Array | None = None,
    num_samples: int = 1,
) -> Array:
    """KL(p ‖ q) for family modules p, q: the closed form if registered, else Monte Carlo.

    With a closed form (see CLOSED_FORMS) `key` and `num_samples` are ignored and the result is
    exact. Otherwise `key` is required and the result is `monte_carlo_kl(..., key=key,
    num_samples=num_samples)`, a reparameterized estimate.

    Example:
      >>> kl_divergence(reparam.normal, (mu, sigma), reparam.normal, (0.0, 1.0))  # closed form
      >>> kl_divergence(reparam.normal, (mu, sigma), reparam.laplace, (0.0, 1.0), key=key,
      ...               num_samples=16)  # Monte Carlo
    """
    where = _where("kl_divergence")
    p = checks.family(where, p, "sample", "log_prob", name="p")
    q = checks.family(where, q, "sample", "log_prob", name="q")
    p_params = _family_params(where, "p", p, p_params)
    q_params = _family_params(where, "q", q, q_params)
    exact = closed_form(p, q)
    if exact is not None:
        return exact(*p_params, *q_params)
    if key is None:
        raise TypeError(
            f"{where}: no closed-form KL is registered for ({p.__name__}, {q.__name__}); pass "
            f"`key` (and `num_samples`) for the Monte-Carlo estimate"
        )
    return monte_carlo_kl(p, p_params, q, q_params, key=key, num_samples=num_samples)


__all__ = [
    "CLOSED_FORMS",
    "beta_beta",
    "cauchy_cauchy",
    "chi2_chi2",
    "closed_form",
    "dirichlet_dirichlet",
    "exponential_exponential",
    "gamma_gamma",
    "gumbel_gumbel",
    "half_cauchy_half_cauchy",
    "half_normal_half_normal",
    "inverse_gamma_inverse_gamma",
    "kl_divergence",
    "laplace_laplace",
    "lognormal_lognormal",
    "low_rank_normal_normal",
    "monte_carlo_kl",
    "multivariate_normal_multivariate_normal",
    "normal_normal",
    "pareto_pareto",
    "tanh_normal_tanh_normal",
    "uniform_uniform",
    "von_mises_von_mises",
    "weibull_weibull",
]
