"""PowerSpherical(loc, concentration) on the unit sphere S^(d−1) ⊂ R^d (De Cao & Aziz, 2020).

Density p(x) = C(κ, d) (1 + μᵀx)^κ with respect to the surface measure, μ = `loc` a unit vector,
κ = `concentration` > 0, and with α = (d − 1)/2 + κ, β = (d − 1)/2:

    log C(κ, d) = −[(α + β) log 2 + β log π + log Γ(α) − log Γ(α + β)].

Sampling (the paper's Algorithm 1), with no rejection step:

1. z ~ Beta(α, β) and t = 2z − 1 = z − (1 − z): the coordinate along e₁,
2. v ~ Uniform(S^(d−2)), as a normalized standard normal in R^(d−1),
3. y = (t, √(1 − t²) v), with √(1 − t²) = 2 √(z (1 − z)),
4. x = Q y with an orthogonal Q, Q e₁ = μ: the paper's Householder reflection I − 2uuᵀ,
   u = (e₁ − μ)/‖e₁ − μ‖, where μ₁ < 0, and minus the reflection with u = (e₁ + μ)/‖e₁ + μ‖ where
   μ₁ ≥ 0, so that u never divides by a vanishing norm (the paper's is singular at μ = e₁, whose
   gradient in μ would be wrong there).

The beta draw is `reparam.beta.log_sample` (log z and log(1 − z) of the same gammas), so t and
√(1 − t²) are exact at both ends and carry the implicit reparameterization gradient in κ
(−(∂F/∂κ)/p of the gammas, `reparam.gamma`); steps 2–4 are explicit and differentiable in μ. There
is no parameter-free ε with an explicit map (the beta has no closed-form inverse CDF), hence no
`noise`/`transform`/`noise_shape`, as for `reparam.beta`.

Closed forms, with w = μᵀx = t ~ 2 Beta(α, β) − 1:

* mean E[x] = μ (α − β)/(α + β) = μ κ/(d − 1 + κ),
* entropy H = −log C − κ (log 2 + ψ(α) − ψ(α + β)),
* `kl_uniform(concentration, dimension)` = KL(PowerSpherical ‖ Uniform(S^(d−1)))
  = −H + log|S^(d−1)| with |S^(d−1)| = 2 π^(d/2) / Γ(d/2); it does not depend on μ.

Shapes: `loc` is B_loc + (d,) with d ≥ 2, `concentration` is B_κ; the batch shape B is
broadcast(B_loc, B_κ). Samples have shape `sample_shape + B + (d,)` (one event axis, last);
`log_prob` has shape broadcast(x.shape[:-1], B); `entropy` is B; `mean` is B + (d,).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import digamma, gammaln, xlog1py

from reparam import checks
from reparam.families import beta

Array = jax.Array

PARAMS = ("loc", "concentration")
EVENT_NDIMS = 1
PARAM_EVENT_NDIMS = {"loc": 1, "concentration": 0}

# ‖loc‖ may differ from 1 by this much (a float32 vector normalized by the caller is well inside).
UNIT_NORM_TOLERANCE = 1e-4


def _params(where: str, loc, concentration) -> tuple[Array, Array, tuple[int, ...]]:
    where = f"reparam.power_spherical.{where}"
    (loc, concentration), batch_shape = checks.broadcast(
        where, event_ndims=PARAM_EVENT_NDIMS, loc=loc, concentration=concentration
    )
    if loc.shape[-1] < 2:
        raise ValueError(
            f"{where}: `loc` must be a unit vector in R^d with d >= 2 on its last axis (the event "
            f"axis); got shape {loc.shape}"
        )
    checks.require(
        where,
        "loc",
        jnp.linalg.norm(loc, axis=-1),
        lambda norm, xp: xp.abs(norm - 1) <= UNIT_NORM_TOLERANCE,
        f"a unit vector along its last axis (‖loc‖ = 1 ± {UNIT_NORM_TOLERANCE:g}; the value "
        "shown is the norm)",
    )
    checks.positive(where, "concentration", concentration)
    checks.finite(where, "concentration", concentration)
    return loc, concentration, batch_shape


def _beta_concentrations(concentration: Array, dimension: int) -> tuple[Array, float]:
    """(α, β) = ((d − 1)/2 + κ, (d − 1)/2) of the beta law of (1 + μᵀx)/2."""
    half = 0.5 * (dimension - 1)
    return half + concentration, half


def _log_normalizer(concentration: Array, dimension: int) -> Array:
    """log N = −log C(κ, d) = (α + β) log 2 + β log π + log Γ(α) − log Γ(α + β)."""
    alpha, beta_ = _beta_concentrations(concentration, dimension)
    return (
        (alpha + beta_) * math.log(2)
        + beta_ * math.log(math.pi)
        + gammaln(alpha)
        - gammaln(alpha + beta_)
    )


def _rotate(y: Array, loc: Array) -> Array:
    """An orthogonal map Q with Q e₁ = μ, applied to y: a Householder reflection, smooth in μ.

    With s = 1 where μ₁ ≥ 0, else −1, and u = (e₁ + sμ)/‖e₁ + sμ‖: the reflection H = I − 2uuᵀ maps
    e₁ to −sμ, so Q = −sH maps it to μ. The paper's u = (e₁ − μ)/‖e₁ − μ‖ (s = −1 everywhere) is
    singular at μ = e₁, where its pathwise gradient in μ is wrong; here ‖e₁ + sμ‖² ≥ 2 always.
    Both choices give the same distribution: y's law is invariant under rotations fixing e₁.
    """
    d = loc.shape[-1]
    sign = jnp.where(loc[..., :1] >= 0, 1.0, -1.0).astype(loc.dtype)
    direction = sign * loc + jnp.zeros(d, loc.dtype).at[0].set(1.0)
    u = direction / jnp.linalg.norm(direction, axis=-1, keepdims=True)
    return -sign * (y - 2 * u * jnp.sum(u * y, axis=-1, keepdims=True))


def _draw(key: Array, loc: Array, concentration: Array, shape: tuple[int, ...]) -> tuple:
    """(x, log(1 + μᵀx)) of shape `shape + (d,)` and `shape`; shape = sample_shape + B."""
    d = loc.shape[-1]
    key_beta, key_direction = jax.random.split(key)
    alpha, beta_ = _beta_concentrations(concentration, d)
    log_z, log1m_z = beta.log_sample(key_beta, alpha, jnp.full((), beta_, loc.dtype), shape)
    t = jnp.exp(log_z) - jnp.exp(log1m_z)  # 2z − 1, exact near both −1 and 1
    radius = 2 * jnp.exp(0.5 * (log_z + log1m_z))  # √(1 − t²) = 2√(z (1 − z))
    normal = jax.random.normal(key_direction, (*shape, d - 1), loc.dtype)
    direction = normal / jnp.linalg.norm(normal, axis=-1, keepdims=True)
    y = jnp.concatenate([t[..., None], radius[..., None] * direction], axis=-1)
    return _rotate(y, loc), math.log(2) + log_z


def sample(key: Array, loc, concentration, sample_shape=()) -> Array:
    """Reparameterized unit vectors of shape `sample_shape + B + (d,)`.

    Explicit in `loc` (Householder reflection), implicit in `concentration` (through the beta).
    """
    where = "reparam.power_spherical.sample"
    key = checks.key(key, where)
    loc, concentration, batch_shape = _params("sample", loc, concentration)
    shape = checks.sample_shape(where, sample_shape) + batch_shape
    x, _ = _draw(key, loc, concentration, shape)
    return x


def sample_and_log_prob(key: Array, loc, concentration, sample_shape=()) -> tuple[Array, Array]:
    """Draw x and log p(x) = log C + κ log(2z), from the beta's log z (no μᵀx recomputed)."""
    where = "reparam.power_spherical.sample_and_log_prob"
    key = checks.key(key, where)
    loc, concentration, batch_shape = _params("sample_and_log_prob", loc, concentration)
    shape = checks.sample_shape(where, sample_shape) + batch_shape
    x, log1p_w = _draw(key, loc, concentration, shape)
    d = loc.shape[-1]
    return x, concentration * log1p_w - _log_normalizer(concentration, d)


def log_prob(x, loc, concentration) -> Array:
    """log p(x) = log C(κ, d) + κ log(1 + μᵀx), shape broadcast(x.shape[:-1], B).

    x is taken to be on the sphere (not checked: the density is w.r.t. the surface measure).
    """
    loc, concentration, batch_shape = _params("log_prob", loc, concentration)
    d = loc.shape[-1]
    checks.broadcastable("reparam.power_spherical.log_prob", "x", jnp.shape(x), batch_shape, (d,))
    x = jnp.asarray(x, loc.dtype)
    w = jnp.sum(loc * x, axis=-1)
    return xlog1py(concentration, w) - _log_normalizer(concentration, d)


def entropy(loc, concentration) -> Array:
    """H = −log C − κ (log 2 + ψ(α) − ψ(α + β)); shape B."""
    loc, concentration, batch_shape = _params("entropy", loc, concentration)
    return jnp.broadcast_to(_entropy(concentration, loc.shape[-1]), batch_shape)


def _entropy(concentration: Array, dimension: int) -> Array:
    alpha, beta_ = _beta_concentrations(concentration, dimension)
    mean_log1p_w = math.log(2) + digamma(alpha) - digamma(alpha + beta_)
    return _log_normalizer(concentration, dimension) - concentration * mean_log1p_w


def mean(loc, concentration) -> Array:
    """E[x] = μ κ/(d − 1 + κ); shape B + (d,)."""
    loc, concentration, batch_shape = _params("mean", loc, concentration)
    d = loc.shape[-1]
    value = loc * (concentration / (d - 1 + concentration))[..., None]
    return jnp.broadcast_to(value, (*batch_shape, d))


def kl_uniform(concentration, dimension: int) -> Array:
    """KL(PowerSpherical(·, κ) ‖ Uniform(S^(d−1))) = −H + log(2 π^(d/2) / Γ(d/2)); shape of κ.

    Args:
      concentration: κ > 0, any shape.
      dimension: d >= 2, the ambient dimension (the sphere is S^(d−1) ⊂ R^d; `loc.shape[-1]`).
    """
    where = "reparam.power_spherical.kl_uniform"
    dimension = checks.count(where, "dimension", dimension, minimum=2, why=" (S^(d−1) ⊂ R^d)")
    (concentration,), _ = checks.broadcast(where, concentration=concentration)
    checks.positive(where, "concentration", concentration)
    checks.finite(where, "concentration", concentration)
    log_area = math.log(2) + 0.5 * dimension * math.log(math.pi) - math.lgamma(0.5 * dimension)
    return log_area - _entropy(concentration, dimension)


__all__ = [
    "EVENT_NDIMS",
    "PARAMS",
    "PARAM_EVENT_NDIMS",
    "UNIT_NORM_TOLERANCE",
    "entropy",
    "kl_uniform",
    "log_prob",
    "mean",
    "sample",
    "sample_and_log_prob",
]
