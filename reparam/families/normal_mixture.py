"""Univariate mixture of normals: p(z) = Σₖ wₖ N(z; locₖ, scaleₖ²), w = softmax(logits).

Shapes: the last axis of every parameter indexes the K components (size K, or 1 to share a value
across components) and is not part of the sample's shape; the batch shape B is the broadcast of
the parameters' other axes, and samples have shape `sample_shape + B`.

Noise: ε = (g₁, …, g_K, n) of shape `shape + (K + 1,)` — K standard Gumbels that pick the
component by the Gumbel-max trick and one standard normal — see :func:`noise_event_shape`.
:func:`transform` maps it to z = loc_k* + scale_k* · n with k* = argmax(logits + g).

Gradients: that map is piecewise smooth in the parameters but its pathwise derivative ignores
the component choice (d z/d logits = 0), which makes the pathwise gradient of E[f(z)] biased.
`transform` (and so `sample`) instead carries the implicit reparameterization gradient of
Graves (2016) / Figurnov et al. (2018) through `jax.custom_jvp`: holding F(z) fixed,

    dz/dθ = −(∂F/∂θ)(z) / p(z),   F(z) = Σₖ wₖ Φ(tₖ),   tₖ = (z − locₖ)/scaleₖ,

written out by hand in a cancellation-free form (see `_implicit_tangent`). It is an unbiased
gradient of E[f(z)], but it is *not* the derivative of `transform` at fixed ε, so finite
differences of `transform` do not reproduce it (that is the point).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp, ndtr

from reparam import checks

Array = jax.Array

PARAMS = ("logits", "locs", "scales")
EVENT_NDIMS = 0
PARAM_EVENT_NDIMS = {"logits": 1, "locs": 1, "scales": 1}

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _params(where: str, logits, locs, scales) -> tuple[Array, Array, Array, tuple[int, ...]]:
    where = f"reparam.normal_mixture.{where}"
    (logits, locs, scales), batch_shape = checks.broadcast(
        where, event_ndims=PARAM_EVENT_NDIMS, logits=logits, locs=locs, scales=scales
    )
    k = _num_components(where, logits, locs, scales)
    # A single logit shared by all components means equal weights: spell it out, so that the
    # softmax runs over K entries (locs and scales may keep a size-1 component axis).
    logits = jnp.broadcast_to(logits, (*logits.shape[:-1], k))
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
    checks.positive(where, "scales", scales)
    checks.finite(where, "scales", scales)
    return logits, locs, scales, batch_shape


def _num_components(where: str, logits: Array, locs: Array, scales: Array) -> int:
    """K, the broadcast size of the parameters' component (last) axes."""
    sizes = {"logits": logits.shape[-1], "locs": locs.shape[-1], "scales": scales.shape[-1]}
    try:
        (k,) = np.broadcast_shapes(*((size,) for size in sizes.values()))
    except ValueError:
        described = ", ".join(f"`{name}` {size}" for name, size in sizes.items())
        raise ValueError(
            f"{where}: the component axes (last) do not broadcast: {described}"
        ) from None
    return k


def noise_event_shape(logits, locs, scales) -> tuple[int]:
    """(K + 1,): the trailing shape of ε for these parameters (K Gumbels and one normal)."""
    where = "reparam.normal_mixture.noise_event_shape"
    arrays = [
        checks.numeric(where, n, p) for n, p in zip(PARAMS, (logits, locs, scales), strict=True)
    ]
    for name, array in zip(PARAMS, arrays, strict=True):
        if array.ndim < 1:
            raise ValueError(f"{where}: `{name}` must have a component axis, got shape ()")
    return (_num_components(where, *arrays) + 1,)


def noise(key: Array, shape: tuple[int, ...], dtype=None) -> Array:
    """ε of `shape` = `batch + (K + 1,)`: K standard Gumbels, then one standard normal.

    dtype defaults to JAX's default float (float32 unless x64 is enabled).
    """
    key = checks.key(key, "reparam.normal_mixture.noise")
    shape = checks.sample_shape("reparam.normal_mixture.noise", shape, "shape")
    if len(shape) < 1 or shape[-1] < 2:
        raise ValueError(
            "reparam.normal_mixture.noise: `shape` must end in K + 1 ≥ 2 (K Gumbels and one "
            f"normal), got {shape}"
        )
    dtype = checks.noise_dtype(dtype)
    key_choice, key_normal = jax.random.split(key)
    gumbels = jax.random.gumbel(key_choice, (*shape[:-1], shape[-1] - 1), dtype)
    normal = jax.random.normal(key_normal, (*shape[:-1], 1), dtype)
    return jnp.concatenate([gumbels, normal], axis=-1)


# jit: eager calls (and check_grads, which evaluates many of them) would otherwise dispatch each
# small op separately.
@jax.jit
def _choose(eps: Array, logits: Array, locs: Array, scales: Array) -> tuple[Array, Array, Array]:
    """(loc_k*, scale_k*, n) with k* = argmax(logits + g), all of the output shape."""
    gumbels, normal = eps[..., :-1], eps[..., -1]
    full = jnp.broadcast_shapes(gumbels.shape, logits.shape, locs.shape, scales.shape)
    chosen = jnp.argmax(jnp.broadcast_to(logits + gumbels, full), axis=-1)[..., None]

    def pick(values):
        return jnp.take_along_axis(jnp.broadcast_to(values, full), chosen, axis=-1)[..., 0]

    return pick(locs), pick(scales), jnp.broadcast_to(normal, full[:-1])


def _stable_ndtr_difference(a: Array, b: Array) -> Array:
    """Φ(a) − Φ(b), from the upper tails when both are in it (Φ rounds to 1 there)."""
    upper = a + b > 0
    return jnp.where(upper, ndtr(-b) - ndtr(-a), ndtr(a) - ndtr(b))


@jax.jit
def _implicit_tangent(z, logits, locs, scales, logits_dot, locs_dot, scales_dot) -> Array:
    """ż = −(Σ ∂F/∂θ · θ̇)/p(z) for the mixture, elementwise in z's shape.

    With tⱼ = (z − locⱼ)/scaleⱼ, rⱼ = wⱼ φ(tⱼ)/(scaleⱼ p(z)) (the responsibilities):
      ∂F/∂locⱼ = −wⱼ φ(tⱼ)/scaleⱼ           →  contributes  rⱼ · locⱼ̇
      ∂F/∂scaleⱼ = −wⱼ φ(tⱼ) tⱼ/scaleⱼ      →  contributes  rⱼ tⱼ · scaleⱼ̇
      ∂F/∂logitⱼ = wⱼ (Φ(tⱼ) − F(z)) = wⱼ Σᵢ wᵢ (Φ(tⱼ) − Φ(tᵢ))
                                          →  contributes −(wⱼ/p) Σᵢ wᵢ (Φ(tⱼ) − Φ(tᵢ)) · logitⱼ̇
    The responsibilities come from a softmax in log space, and Φ differences are taken from the
    nearer tail, so nothing cancels or underflows to 0/0 for well-separated or very narrow
    components.
    """
    t = (z[..., None] - locs) / scales
    log_w = jax.nn.log_softmax(logits, axis=-1)
    log_components = log_w - 0.5 * t**2 - _LOG_SQRT_2PI - jnp.log(scales)
    log_p = logsumexp(log_components, axis=-1, keepdims=True)
    responsibilities = jnp.exp(log_components - log_p)
    # wⱼ/p(z) can exceed the float range only where p(z) is absurdly small for a drawn z (lost
    # precision in t at extreme scales); cap it so the gradient stays finite.
    cap = 0.5 * math.log(np.finfo(z.dtype).max)
    w_over_p = jnp.exp(jnp.minimum(log_w - log_p, cap))
    w = jnp.exp(log_w)
    # Φ(tⱼ) − F(z) = Σᵢ wᵢ (Φ(tⱼ) − Φ(tᵢ)), pairwise, each from the nearer tail.
    differences = _stable_ndtr_difference(t[..., :, None], t[..., None, :])
    phi_minus_cdf = jnp.sum(w[..., None, :] * differences, axis=-1)
    tangent = responsibilities * (locs_dot + t * scales_dot) - w_over_p * phi_minus_cdf * logits_dot
    return jnp.sum(tangent, axis=-1)


@jax.custom_jvp
def _transform(eps: Array, logits: Array, locs: Array, scales: Array) -> Array:
    """z = loc_k* + scale_k* · n; its JVP in the parameters is the implicit one."""
    loc, scale, normal = _choose(eps, logits, locs, scales)
    return loc + scale * normal


@_transform.defjvp
def _transform_jvp(primals, tangents):
    eps, logits, locs, scales = primals
    eps_dot, logits_dot, locs_dot, scales_dot = tangents
    # Calling ourselves keeps higher derivatives right: differentiating this rule again sees z's
    # own (implicit) dependence on the parameters.
    z = _transform(eps, logits, locs, scales)
    full = jnp.broadcast_shapes(eps.shape[:-1] + logits.shape[-1:], logits.shape, locs.shape)
    full = jnp.broadcast_shapes(full, scales.shape)
    dots = [jnp.broadcast_to(d, full) for d in (logits_dot, locs_dot, scales_dot)]
    params = [jnp.broadcast_to(p, full) for p in (logits, locs, scales)]
    z_dot = _implicit_tangent(z, *params, *dots)
    # ε moves z pathwise at fixed parameters: dz/dn = scale_k* (the Gumbels only pick k*).
    _, scale, _ = _choose(eps, logits, locs, scales)
    return z, z_dot + scale * eps_dot[..., -1]


def transform(eps: Array, logits, locs, scales) -> Array:
    """z = loc_k* + scale_k* · n for ε = (g, n), k* = argmax(logits + g); implicit gradients.

    Args:
      eps: shape `S + (K + 1,)` from :func:`noise`.
      logits, locs, scales: shapes `B + (K,)` (or `(1,)` on the component axis).

    Returns:
      z of shape broadcast(S, B).
    """
    where = "reparam.normal_mixture.transform"
    logits, locs, scales, batch_shape = _params("transform", logits, locs, scales)
    checks.broadcastable(
        "reparam.normal_mixture.transform",
        "eps",
        jnp.shape(eps),
        batch_shape,
        (logits.shape[-1] + 1,),
    )
    eps = checks.numeric(where, "eps", eps)
    if eps.ndim < 1:
        raise ValueError(f"{where}: `eps` must end in the noise axis of size K + 1, got shape ()")
    k = _num_components(where, logits, locs, scales)
    checks.event_size(where, "eps", eps, k + 1)
    dtype = jnp.result_type(eps, logits)
    return _transform(
        eps.astype(dtype), logits.astype(dtype), locs.astype(dtype), scales.astype(dtype)
    )


def noise_shape(sample_shape, logits, locs, scales) -> tuple[int, ...]:
    """The shape of ε that `sample(key, logits, locs, scales, sample_shape)` draws:
    `sample_shape + B + (K + 1,)` (K Gumbels, then one normal)
    (for callers that bring their own ε: quasi-Monte-Carlo, common random numbers)."""
    where = "reparam.normal_mixture.noise_shape"
    logits, _, _, batch_shape = _params("noise_shape", logits, locs, scales)
    return (*checks.sample_shape(where, sample_shape), *batch_shape, *(logits.shape[-1] + 1,))


def sample(key: Array, logits, locs, scales, sample_shape=()) -> Array:
    """Draw of shape `sample_shape + B`; equals `transform(noise(key, …), …)` bit for bit."""
    key = checks.key(key, "reparam.normal_mixture.sample")
    logits, locs, scales, batch_shape = _params("sample", logits, locs, scales)
    k = _num_components("reparam.normal_mixture.sample", logits, locs, scales)
    shape = checks.sample_shape("reparam.normal_mixture.sample", sample_shape) + batch_shape
    eps = noise(key, (*shape, k + 1), logits.dtype)
    return _transform(eps, logits, locs, scales)


def sample_and_log_prob(key: Array, logits, locs, scales, sample_shape=()) -> tuple[Array, Array]:
    """Draw z (as :func:`sample`) and its log-density."""
    where = "reparam.normal_mixture.sample_and_log_prob"
    z = sample(key, logits, locs, scales, checks.sample_shape(where, sample_shape))
    return z, log_prob(z, logits, locs, scales)


def log_prob(x, logits, locs, scales) -> Array:
    """log Σₖ wₖ N(x; locₖ, scaleₖ²) by logsumexp; shape broadcast(x, B)."""
    logits, locs, scales, batch_shape = _params("log_prob", logits, locs, scales)
    checks.broadcastable("reparam.normal_mixture.log_prob", "x", jnp.shape(x), batch_shape)
    return _log_prob(jnp.asarray(x, logits.dtype), logits, locs, scales)


@jax.jit  # one dispatch for eager callers (check_grads evaluates it many times)
def _log_prob(x: Array, logits: Array, locs: Array, scales: Array) -> Array:
    t = (x[..., None] - locs) / scales
    log_components = jax.nn.log_softmax(logits, axis=-1) - 0.5 * t**2 - jnp.log(scales)
    return logsumexp(log_components, axis=-1) - _LOG_SQRT_2PI


def cdf(x, logits, locs, scales) -> Array:
    """F(x) = Σₖ wₖ Φ((x − locₖ)/scaleₖ); shape broadcast(x, B)."""
    logits, locs, scales, _ = _params("cdf", logits, locs, scales)
    x = jnp.asarray(x, logits.dtype)
    weights = jax.nn.softmax(logits, axis=-1)
    return jnp.sum(weights * ndtr((x[..., None] - locs) / scales), axis=-1)


def mean(logits, locs, scales) -> Array:
    """Σₖ wₖ locₖ, shape B."""
    logits, locs, scales, batch_shape = _params("mean", logits, locs, scales)
    weights = jax.nn.softmax(logits, axis=-1)
    return jnp.broadcast_to(jnp.sum(weights * locs, axis=-1), batch_shape)


def variance(logits, locs, scales) -> Array:
    """Σₖ wₖ (scaleₖ² + (locₖ − mean)²): total variance, free of E[z²] − E[z]² cancellation."""
    logits, locs, scales, batch_shape = _params("variance", logits, locs, scales)
    weights = jax.nn.softmax(logits, axis=-1)
    mu = jnp.sum(weights * locs, axis=-1, keepdims=True)
    value = jnp.sum(weights * (scales**2 + (locs - mu) ** 2), axis=-1)
    return jnp.broadcast_to(value, batch_shape)


__all__ = [
    "EVENT_NDIMS",
    "PARAMS",
    "PARAM_EVENT_NDIMS",
    "cdf",
    "log_prob",
    "mean",
    "noise",
    "noise_event_shape",
    "noise_shape",
    "sample",
    "sample_and_log_prob",
    "transform",
    "variance",
]
