"""Mixture of full-covariance normals: p(z) = Σₖ wₖ N(z; locsₖ, Lₖ Lₖᵀ), w = softmax(logits).

Shapes: `logits` is B₁ + (K,), `locs` B₂ + (K, d), `scale_trils` B₃ + (K, d, d); the component
axis (K, or 1 to share a value across components) is not part of the sample's shape. The batch
shape B is the broadcast of B₁, B₂, B₃. Samples have shape `sample_shape + B + (d,)` (one event
axis, last); `log_prob` has shape broadcast(x.shape[:-1], B); `mean`, `variance` are B + (d,),
`covariance` B + (d, d). As for multivariate_normal, only the lower triangle of each scale_tril
is read and its diagonal must be > 0.

Noise: ε = (n₁, …, n_d, u) of shape `shape + (d + 1,)`: d standard normals for the component's
draw and one uniform u ∈ [0, 1) that picks the component k* by the categorical's inverse CDF
(the k with Σ_{i<k} wᵢ ≤ u < Σ_{i≤k} wᵢ; a component of weight 0 is never picked).
:func:`transform` maps it to z = locs_k* + L_k* n.

Gradients: as for normal_mixture, the pathwise derivative of that map at fixed ε ignores the
component choice and is biased. `transform` (and so `sample`) carries the implicit gradient of
Graves (2016), "Stochastic backpropagation through mixture density distributions", through
`jax.custom_jvp`, generalized to full covariances: z is the inverse of the Rosenblatt map
u_j = F_j(z_j | z_<j; θ) of sequential conditional CDFs, each a 1-D normal mixture. With
εₖ = Lₖ⁻¹(z − locsₖ), component k's conditional of z_j given z_<j is normal with mean
locsₖⱼ + Σ_{i<j} Lₖⱼᵢ εₖᵢ and sd Lₖⱼⱼ, weighted by πₖⱼ ∝ wₖ N(z_<j; locsₖ,<j, Σₖ,<j<j)
= wₖ Πᵢ<ⱼ φ(εₖᵢ)/Lₖᵢᵢ. Holding every F_j fixed,

    ∂F_j/∂θ · θ̇ + Σ_{i<j} ∂F_j/∂z_i ż_i + p_j(z_j | z_<j) ż_j = 0,

a unit lower-triangular system (after dividing row j by p_j) solved for ż by one triangular
solve per draw; see `_implicit_tangent`. It is an unbiased gradient of E[f(z)], not the derivative
of `transform` at fixed ε (finite differences of `transform` do not reproduce it). For d = 1 it
is normal_mixture's gradient.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from reparam import checks
from reparam._linalg import PRECISION, matvec, solve_lower, triangular_solve

# Φ(a) − Φ(b) from the nearer tail: the conditional CDFs' weight derivatives need it as the
# 1-D mixture's do.
from reparam.families.normal_mixture import _stable_ndtr_difference

Array = jax.Array

PARAMS = ("logits", "locs", "scale_trils")
EVENT_NDIMS = 1
PARAM_EVENT_NDIMS = {"logits": 1, "locs": 2, "scale_trils": 3}

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _params(where: str, logits, locs, scale_trils) -> tuple[Array, Array, Array, tuple[int, ...]]:
    """Checked (logits (..., K), locs (..., K, d), tril(scale_trils) (..., K, d, d), batch shape),
    the component axes broadcast to K; `where` is the short function name."""
    where = f"reparam.multivariate_normal_mixture.{where}"
    (logits, locs, scale_trils), batch_shape = checks.broadcast(
        where, event_ndims=PARAM_EVENT_NDIMS, logits=logits, locs=locs, scale_trils=scale_trils
    )
    d = locs.shape[-1]
    if scale_trils.shape[-2:] != (d, d):
        raise ValueError(
            f"{where}: `scale_trils` must have shape (..., K, {d}, {d}) (square, matching `locs` "
            f"of shape {locs.shape} with event size {d}); got shape {scale_trils.shape}"
        )
    k = _num_components(where, logits, locs, scale_trils)
    logits = jnp.broadcast_to(logits, (*logits.shape[:-1], k))
    locs = jnp.broadcast_to(locs, (*locs.shape[:-2], k, d))
    scale_trils = jnp.broadcast_to(scale_trils, (*scale_trils.shape[:-3], k, d, d))
    checks.require(where, "logits", logits, lambda x, xp: x < xp.inf, "< +inf")
    # A logit of −inf switches a component off; all of them off leaves no distribution.
    checks.require(
        where,
        "logits",
        jnp.max(logits, axis=-1),
        lambda x, xp: x > -xp.inf,
        "finite for at least one component (all are -inf)",
    )
    checks.finite(where, "locs", locs)
    checks.require(
        where,
        "scale_trils",
        jnp.diagonal(scale_trils, axis1=-2, axis2=-1),
        lambda x, xp: x > 0,
        "lower triangular with diagonal entries > 0 (the index is (batch..., k, i) of entry i, i)",
    )
    tril = jnp.tril(scale_trils)
    checks.finite(where, "scale_trils", tril)
    return logits, locs, tril, batch_shape


def _num_components(where: str, logits: Array, locs: Array, scale_trils: Array) -> int:
    """K, the broadcast size of the parameters' component axes."""
    sizes = {
        "logits": logits.shape[-1],
        "locs": locs.shape[-2],
        "scale_trils": scale_trils.shape[-3],
    }
    try:
        (k,) = np.broadcast_shapes(*((size,) for size in sizes.values()))
    except ValueError:
        described = ", ".join(f"`{name}` {size}" for name, size in sizes.items())
        raise ValueError(
            f"{where}: the component axes (logits' last, locs' and scale_trils' K) do not "
            f"broadcast: {described}"
        ) from None
    return k


def noise(key: Array, shape: tuple[int, ...], dtype=None) -> Array:
    """ε of `shape` = `batch + (d + 1,)`: d standard normals, then one uniform on [0, 1).

    dtype defaults to JAX's default float (float32 unless x64 is enabled).
    """
    where = "reparam.multivariate_normal_mixture.noise"
    key = checks.key(key, where)
    shape = checks.sample_shape(where, shape, "shape")
    if len(shape) < 1 or shape[-1] < 2:
        raise ValueError(
            f"{where}: `shape` must end in d + 1 ≥ 2 (d normals and one uniform), got {shape}"
        )
    dtype = checks.noise_dtype(dtype)
    key_normal, key_choice = jax.random.split(key)
    normal = jax.random.normal(key_normal, (*shape[:-1], shape[-1] - 1), dtype)
    uniform = jax.random.uniform(key_choice, (*shape[:-1], 1), dtype)
    return jnp.concatenate([normal, uniform], axis=-1)


# jit: eager calls (and check_grads, which evaluates many of them) would otherwise dispatch each
# small op separately.
@jax.jit
def _choose(eps: Array, logits: Array, locs: Array, tril: Array) -> tuple[Array, Array]:
    """(locs_k*, L_k*) of shapes S + (d,), S + (d, d), k* picked by the uniform eps[..., d]."""
    d = locs.shape[-1]
    weights = jax.nn.softmax(logits, axis=-1)
    upper = jnp.cumsum(weights, axis=-1)
    lower = upper - weights  # Σ_{i<k} wᵢ (the bins' left edges; nondecreasing as `upper` is)
    v = eps[..., d, None] * upper[..., -1:]  # u times the total, which may differ from 1 by ulps
    # The last component whose bin starts at or below v; weight-0 components have empty bins and
    # are skipped, so that v at the very top (rounding) still lands on a component that exists.
    candidate = (lower <= v) & (weights > 0)
    k = weights.shape[-1]
    chosen = jnp.max(jnp.where(candidate, jnp.arange(k), -1), axis=-1)
    full = jnp.broadcast_shapes(eps.shape[:-1], logits.shape[:-1], locs.shape[:-2], tril.shape[:-3])
    index = jnp.broadcast_to(chosen, full)[..., None, None]
    loc = jnp.take_along_axis(jnp.broadcast_to(locs, (*full, k, d)), index, axis=-2)[..., 0, :]
    scale_tril = jnp.take_along_axis(
        jnp.broadcast_to(tril, (*full, k, d, d)), index[..., None], axis=-3
    )[..., 0, :, :]
    return loc, scale_tril


def _exclusive_cumsum(x: Array, axis: int) -> Array:
    """Σ_{i<j} x_i along `axis` (0 at j = 0), without the cancellation of cumsum(x) − x."""
    x = jnp.moveaxis(x, axis, -1)
    shifted = jnp.concatenate([jnp.zeros_like(x[..., :1]), x[..., :-1]], axis=-1)
    return jnp.moveaxis(jnp.cumsum(shifted, axis=-1), -1, axis)


@jax.jit
def _implicit_tangent(z, logits, locs, tril, logits_dot, locs_dot, tril_dot) -> Array:
    """ż from the Rosenblatt map u_j = F_j(z_j | z_<j; θ) held fixed; shape of z, (..., d).

    Per component k (axis −2 below) and coordinate j (axis −1): εₖ = Lₖ⁻¹(z − locsₖ),
    Mₖ = Lₖ⁻¹, conditional log-weights ℓₖⱼ = log wₖ + Σ_{m<j} (log φ(εₖₘ) − log Lₖₘₘ),
    πₖⱼ = softmax over k of ℓₖⱼ, conditional density p_j = Σₖ πₖⱼ φ(εₖⱼ)/Lₖⱼⱼ,
    responsibilities rₖⱼ = πₖⱼ φ(εₖⱼ)/(Lₖⱼⱼ p_j), and
    qₖⱼ = (πₖⱼ/p_j)(Φ(εₖⱼ) − F_j) = (πₖⱼ/p_j) Σᵢ πᵢⱼ (Φ(εₖⱼ) − Φ(εᵢⱼ)) (pairwise, nearer tail).
    Dividing row j of the implicit equation by p_j gives A ż = rhs with A unit lower triangular:
      A_ji = Σₖ rₖⱼ Lₖⱼⱼ Mₖⱼᵢ − Σₖ qₖⱼ Σ_{m<j} εₖₘ Mₖₘᵢ           (= ∂F_j/∂z_i / p_j)
      rhs_j = Σₖ rₖⱼ Lₖⱼⱼ gₖⱼ − Σₖ qₖⱼ ℓ̇ₖⱼ                          (= −∂F_j/∂θ · θ̇ / p_j)
    with gₖ = Mₖ(locsₖ̇ + L̇ₖ εₖ) (= −ε̇ₖ at fixed z) and
    ℓ̇ₖⱼ = logitsₖ̇ + Σ_{m<j} (εₖₘ gₖₘ − L̇ₖₘₘ/Lₖₘₘ). Weights and densities stay in log space, so
    far components get π = r = q = 0 instead of 0/0.
    """
    d = z.shape[-1]
    inverse = triangular_solve(tril, jnp.eye(d, dtype=tril.dtype))  # Mₖ: (..., K, d, d)
    diagonal = jnp.diagonal(tril, axis1=-2, axis2=-1)  # (..., K, d)
    eps = solve_lower(tril, z[..., None, :] - locs)  # (..., K, d)

    log_marginal = -0.5 * eps**2 - _LOG_SQRT_2PI - jnp.log(diagonal)  # log φ(εₖⱼ)/Lₖⱼⱼ
    log_w = jax.nn.log_softmax(logits, axis=-1)
    ell = log_w[..., None] + _exclusive_cumsum(log_marginal, axis=-1)
    log_pi = ell - logsumexp(ell, axis=-2, keepdims=True)
    log_joint = log_pi + log_marginal
    log_p = logsumexp(log_joint, axis=-2, keepdims=True)  # log p_j, (..., 1, d)
    responsibilities = jnp.exp(log_joint - log_p)
    # π/p can exceed the float range only where p_j is absurdly small for a drawn z (lost
    # precision at extreme scales); cap it so the gradient stays finite (as normal_mixture does).
    cap = 0.5 * math.log(np.finfo(z.dtype).max)
    pi_over_p = jnp.exp(jnp.minimum(log_pi - log_p, cap))
    pi = jnp.exp(log_pi)
    differences = _stable_ndtr_difference(eps[..., :, None, :], eps[..., None, :, :])  # k, i, j
    q = pi_over_p * jnp.sum(pi[..., None, :, :] * differences, axis=-2)  # (..., K, d)

    r_diag = responsibilities * diagonal  # rₖⱼ Lₖⱼⱼ
    earlier = _exclusive_cumsum(eps[..., :, None] * inverse, axis=-2)  # Σ_{m<j} εₖₘ Mₖₘᵢ
    system = jnp.sum(r_diag[..., None] * inverse - q[..., None] * earlier, axis=-3)  # (..., d, d)

    g = matvec(inverse, locs_dot + matvec(jnp.tril(tril_dot), eps))
    diagonal_dot = jnp.diagonal(tril_dot, axis1=-2, axis2=-1)
    ell_dot = logits_dot[..., None] + _exclusive_cumsum(eps * g - diagonal_dot / diagonal, -1)
    rhs = jnp.sum(r_diag * g - q * ell_dot, axis=-2)  # (..., d)
    return triangular_solve(system, rhs[..., None], unit_diagonal=True)[..., 0]


@jax.custom_jvp
def _transform(eps: Array, logits: Array, locs: Array, tril: Array) -> Array:
    """z = locs_k* + L_k* n; its JVP in the parameters is the implicit one."""
    loc, scale_tril = _choose(eps, logits, locs, tril)
    return loc + matvec(scale_tril, eps[..., :-1])


@_transform.defjvp
def _transform_jvp(primals, tangents):
    eps, logits, locs, tril = primals
    eps_dot, logits_dot, locs_dot, tril_dot = tangents
    # Calling ourselves keeps higher derivatives right: differentiating this rule again sees z's
    # own (implicit) dependence on the parameters.
    z = _transform(eps, logits, locs, tril)
    # Parameters keep their own batch axes (L⁻¹ is formed once per component, not per draw).
    z_dot = _implicit_tangent(z, logits, locs, tril, logits_dot, locs_dot, tril_dot)
    # ε moves z pathwise at fixed parameters: dz/dn = L_k* (the uniform only picks k*).
    _, scale_tril = _choose(eps, logits, locs, tril)
    return z, z_dot + matvec(scale_tril, eps_dot[..., :-1])


def transform(eps: Array, logits, locs, scale_trils) -> Array:
    """z = locs_k* + L_k* n for ε = (n, u), k* the component whose weight bin holds u; implicit
    gradients in the parameters.

    Args:
      eps: shape `S + (d + 1,)` from :func:`noise`, S broadcastable with B.
      logits, locs, scale_trils: shapes `B + (K,)`, `B + (K, d)`, `B + (K, d, d)`.

    Returns:
      z of shape broadcast(S, B) + (d,).
    """
    where = "reparam.multivariate_normal_mixture.transform"
    logits, locs, tril, batch_shape = _params("transform", logits, locs, scale_trils)
    d = locs.shape[-1]
    checks.broadcastable(where, "eps", jnp.shape(eps), batch_shape, (d + 1,))
    eps = checks.numeric(where, "eps", eps)
    dtype = jnp.result_type(eps, logits)
    return _transform(
        eps.astype(dtype), logits.astype(dtype), locs.astype(dtype), tril.astype(dtype)
    )


def noise_shape(sample_shape, logits, locs, scale_trils) -> tuple[int, ...]:
    """The shape of ε that `sample(key, logits, locs, scale_trils, sample_shape)` draws:
    `sample_shape + B + (d + 1,)` (d normals, then one uniform)
    (for callers that bring their own ε: quasi-Monte-Carlo, common random numbers)."""
    where = "reparam.multivariate_normal_mixture.noise_shape"
    _, locs, _, batch_shape = _params("noise_shape", logits, locs, scale_trils)
    return (*checks.sample_shape(where, sample_shape), *batch_shape, locs.shape[-1] + 1)


def sample(key: Array, logits, locs, scale_trils, sample_shape=()) -> Array:
    """Draw of shape `sample_shape + B + (d,)`; equals `transform(noise(key, …), …)` bit for bit."""
    where = "reparam.multivariate_normal_mixture.sample"
    key = checks.key(key, where)
    logits, locs, tril, batch_shape = _params("sample", logits, locs, scale_trils)
    shape = (*checks.sample_shape(where, sample_shape), *batch_shape, locs.shape[-1] + 1)
    return _transform(noise(key, shape, logits.dtype), logits, locs, tril)


def sample_and_log_prob(
    key: Array, logits, locs, scale_trils, sample_shape=()
) -> tuple[Array, Array]:
    """Draw z (as :func:`sample`) and its log-density (every component's, so from z, not ε)."""
    where = "reparam.multivariate_normal_mixture.sample_and_log_prob"
    z = sample(key, logits, locs, scale_trils, checks.sample_shape(where, sample_shape))
    return z, log_prob(z, logits, locs, scale_trils)


def log_prob(x, logits, locs, scale_trils) -> Array:
    """log Σₖ wₖ N(x; locsₖ, Lₖ Lₖᵀ) by logsumexp; x of shape (..., d), result
    broadcast(x.shape[:-1], B)."""
    where = "reparam.multivariate_normal_mixture.log_prob"
    logits, locs, tril, batch_shape = _params("log_prob", logits, locs, scale_trils)
    d = locs.shape[-1]
    checks.broadcastable(where, "x", jnp.shape(x), batch_shape, (d,))
    x = checks.numeric(where, "x", x).astype(logits.dtype)
    return _log_prob(x, logits, locs, tril)


@jax.jit  # one dispatch for eager callers (check_grads evaluates it many times)
def _log_prob(x: Array, logits: Array, locs: Array, tril: Array) -> Array:
    d = locs.shape[-1]
    y = solve_lower(tril, x[..., None, :] - locs)  # (..., K, d)
    log_det = jnp.sum(jnp.log(jnp.diagonal(tril, axis1=-2, axis2=-1)), axis=-1)
    log_components = jax.nn.log_softmax(logits, axis=-1) - 0.5 * jnp.sum(y**2, axis=-1) - log_det
    return logsumexp(log_components, axis=-1) - d * _LOG_SQRT_2PI


def mean(logits, locs, scale_trils) -> Array:
    """Σₖ wₖ locsₖ, shape B + (d,)."""
    logits, locs, _, batch_shape = _params("mean", logits, locs, scale_trils)
    weights = jax.nn.softmax(logits, axis=-1)
    value = jnp.sum(weights[..., None] * locs, axis=-2)
    return jnp.broadcast_to(value, (*batch_shape, locs.shape[-1]))


def covariance(logits, locs, scale_trils) -> Array:
    """Σₖ wₖ (Lₖ Lₖᵀ + (locsₖ − mean)(locsₖ − mean)ᵀ): the total covariance, B + (d, d)."""
    logits, locs, tril, batch_shape = _params("covariance", logits, locs, scale_trils)
    d = locs.shape[-1]
    weights = jax.nn.softmax(logits, axis=-1)[..., None, None]
    centred = locs - jnp.sum(weights[..., 0] * locs, axis=-2, keepdims=True)
    within = jnp.matmul(tril, jnp.swapaxes(tril, -1, -2), precision=PRECISION)
    between = centred[..., :, None] * centred[..., None, :]
    return jnp.broadcast_to(jnp.sum(weights * (within + between), axis=-3), (*batch_shape, d, d))


def variance(logits, locs, scale_trils) -> Array:
    """The diagonal of :func:`covariance`, Σₖ wₖ (Σᵢ Lₖⱼᵢ² + (locsₖⱼ − meanⱼ)²); B + (d,)."""
    logits, locs, tril, batch_shape = _params("variance", logits, locs, scale_trils)
    weights = jax.nn.softmax(logits, axis=-1)[..., None]
    centred = locs - jnp.sum(weights * locs, axis=-2, keepdims=True)
    value = jnp.sum(weights * (jnp.sum(tril**2, axis=-1) + centred**2), axis=-2)
    return jnp.broadcast_to(value, (*batch_shape, locs.shape[-1]))


__all__ = [
    "EVENT_NDIMS",
    "PARAMS",
    "PARAM_EVENT_NDIMS",
    "covariance",
    "log_prob",
    "mean",
    "noise",
    "noise_shape",
    "sample",
    "sample_and_log_prob",
    "transform",
    "variance",
]
