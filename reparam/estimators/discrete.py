"""Gradient estimators for Bernoulli and categorical latents, beyond score function and RELAX.

The library's surrogate convention (see `reparam.estimators`): every estimator returns an array
whose value is the Monte-Carlo estimate of the objective and whose `jax.grad` is the gradient
estimate, built as `sg(value) + (carrier − sg(carrier))` (`sg` = `jax.lax.stop_gradient`).

Shapes, shared by all: Bernoulli `logits` have shape `batch` and samples b ∈ {0, 1} shape
(K, *batch); categorical `logits` have shape (*batch, n) and samples are one-hot, shape
(K, *batch, n). `f` maps samples to values (K, *out), `out` a prefix of `batch` (`()` for one
objective of all latents, `batch[:1]` for per-example objectives); each out element must depend
only on the latents of its own batch slice. The surrogate has shape `out`.

Unbiased (for ∇ logits of Σ E[f(b)], or of the multi-sample bound for VIMCO):
  arm           Augment-REINFORCE-merge (Yin & Zhou 2019), Bernoulli; 2 evaluations per sample.
  disarm        ARM with the antithetic pair's noise integrated out (Dong, Mnih & Tucker 2020),
                Bernoulli; never more variance than ARM for one pair.
  vimco         multi-sample bound log mean_k exp(log w_k) with leave-one-out learning signals
                (Mnih & Rezende 2016), Bernoulli or categorical; K ≥ 2.
  indecater     independent categorical REINFORCE (De Smet et al. 2023): per latent, the exact
                sum over its values with the others sampled; K · (#latents) · n evaluations.
Biased (f must be differentiable in the sample; f's own parameters get pathwise gradients):
  straight_through   hard sample forward, ∇ softmax(logits/τ) (sigmoid) backward (Bengio 2013).
  reinmax            second-order (Heun) correction of straight-through (Liu et al. 2023).
  gumbel_rao         straight-through Gumbel-softmax Rao-Blackwellized over the Gumbel noise given
                     the sample (Paulus, Maddison & Krause 2021).
Unbiased estimators do not differentiate f (values pass through stop_gradient), except VIMCO,
whose `log_joint` gets the importance-weighted pathwise gradient Σ_k w̃_k ∇ log_joint(b_k).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from reparam import checks

Array = jax.Array
sg = jax.lax.stop_gradient

DISTRIBUTIONS = ("bernoulli", "categorical")
BERNOULLI_ONLY = ("bernoulli",)


# ---------------------------------------------------------------- argument checks
def _callable(where: str, name: str, fn: Any) -> Callable:
    if not callable(fn):
        raise TypeError(f"{where}: `{name}` must be callable, got {type(fn).__name__} {fn!r}")
    return fn


def _count(where: str, name: str, value: Any, minimum: int, why: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{where}: `{name}` must be a Python int, got {type(value).__name__} {value!r}"
        )
    if value < minimum:
        raise ValueError(f"{where}: `{name}` must be >= {minimum}{why}; got {value}")
    return int(value)


def _distribution(where: str, distribution: Any, choices: tuple[str, ...]) -> str:
    if distribution not in choices:
        extra = ""
        if distribution == "categorical":
            # ARSM (Yin et al. 2019) and the coupled estimators of Dong et al. (2021) generalize
            # ARM/DisARM to categorical latents with different constructions; not implemented.
            extra = " (ARM and DisARM are defined here for Bernoulli latents only)"
        raise ValueError(
            f"{where}: `distribution` must be one of {choices}{extra}; got {distribution!r}"
        )
    return distribution


def _logits(
    where: str, logits: Any, distribution: str, temperature: Any = None
) -> tuple[Array, Array | None, tuple[int, ...]]:
    """Checked logits (broadcast with the temperature's batch shape), temperature, batch."""
    categorical = distribution == "categorical"
    params = {"logits": logits}
    if temperature is not None:
        params["temperature"] = temperature
    arrays, batch = checks.broadcast(
        where, event_ndims={"logits": 1} if categorical else None, **params
    )
    logits = arrays[0]
    if categorical and logits.shape[-1] < 2:
        raise ValueError(
            f"{where}: categorical `logits` must have shape (*batch, n) with n >= 2 categories "
            f"on the last axis; got shape {logits.shape}"
        )
    checks.finite(where, "logits", logits)
    logits = jnp.broadcast_to(logits, (*batch, logits.shape[-1]) if categorical else batch)
    if temperature is None:
        return logits, None, batch
    temperature = arrays[1]
    checks.positive(where, "temperature", temperature)
    return logits, temperature, batch


def _values(where: str, name: str, values: Any, leading: int, batch: tuple[int, ...]) -> Array:
    """f's output: one value per sample, shape (leading, *out) with `out` a prefix of batch."""
    values = jnp.asarray(values)
    if values.ndim < 1 or values.shape[0] != leading:
        raise ValueError(
            f"{where}: `{name}` must return one value per sample, an array of shape "
            f"({leading}, *out); got shape {values.shape}"
        )
    out = values.shape[1:]
    if batch[: len(out)] != out:
        raise ValueError(
            f"{where}: `{name}` must return shape (num_samples, *out) with `out` a prefix of the "
            f"batch shape {batch} (one value per leading batch element); got out={out}"
        )
    return values


# ---------------------------------------------------------------- shared pieces
def _dice(value: Array, carrier: Array) -> Array:
    """Value of `value`, gradient of `carrier`."""
    return sg(value) + (carrier - sg(carrier))


def _to_batch(values: Array, ndim: int) -> Array:
    """(K, *out) values with trailing unit axes, to broadcast against (K, *batch[, n])."""
    return values.reshape(values.shape + (1,) * (ndim - values.ndim))


def _sum_to(x: Array, out_ndim: int) -> Array:
    """Sum a (*batch[, n]) array over the axes after the first `out_ndim`."""
    return jnp.sum(x, axis=tuple(range(out_ndim, x.ndim)))


def _linear_carrier(grad: Array, logits: Array, out_ndim: int) -> Array:
    """Zero-valued, shape `out`, with gradient `grad` (shaped like logits) w.r.t. logits."""
    return _sum_to(sg(grad) * (logits - sg(logits)), out_ndim)


def _sample(key: Array, logits: Array, num_samples: int, distribution: str) -> Array:
    """K draws: b ∈ {0, 1} of shape (K, *batch), or one-hot of shape (K, *batch, n)."""
    if distribution == "categorical":
        index = jax.random.categorical(key, logits, shape=(num_samples, *logits.shape[:-1]))
        return jax.nn.one_hot(index, logits.shape[-1], dtype=logits.dtype)
    draws = jax.random.bernoulli(key, jax.nn.sigmoid(logits), (num_samples, *logits.shape))
    return draws.astype(logits.dtype)


def _log_prob(b: Array, logits: Array, distribution: str) -> Array:
    """log q(b), per latent: shape (K, *batch)."""
    if distribution == "categorical":
        return jnp.sum(b * jax.nn.log_softmax(logits, axis=-1), axis=-1)
    return b * jax.nn.log_sigmoid(logits) + (1 - b) * jax.nn.log_sigmoid(-logits)


def _softmax_jacobian_product(probs: Array, logits: Array) -> Array:
    """Linear in logits with Jacobian diag(π) − ππᵀ (the softmax Jacobian at π = sg(probs)):
    a carrier whose gradient is that Jacobian applied to the incoming gradient."""
    probs = sg(probs)
    return probs * logits - probs * jnp.sum(probs * logits, axis=-1, keepdims=True)


# ---------------------------------------------------------------- straight-through family
def straight_through(
    key: Array,
    f: Callable[[Array], Array],
    logits: Any,
    num_samples: int,
    *,
    temperature: Any = 1.0,
    distribution: str = "categorical",
) -> Array:
    """Straight-through estimator (Bengio et al. 2013; the ST of Liu et al. 2023, Algorithm 1).

    Forward: f at a hard sample D ~ Categorical(softmax(logits)) (Bernoulli(sigmoid(logits)));
    backward: ∂f/∂D pushed through π_τ = softmax(logits/τ) (sigmoid(logits/τ)), i.e. the sample
    f sees is D + π_τ − sg(π_τ). Biased (exact only for f linear in D at τ = 1); f must accept
    real-valued inputs of D's shape. No Gumbel noise is involved (contrast `gumbel_softmax`
    with straight_through=True).

    Args:
      key: a PRNG key.
      f: D of shape (K, *batch, n) (categorical) or (K, *batch) (bernoulli) -> (K, *out).
      logits: (*batch, n) or `batch`.
      num_samples: K ≥ 1.
      temperature: τ > 0 of the backward softmax, broadcastable to `batch`.
      distribution: "categorical" or "bernoulli".

    Returns:
      The surrogate, shape `out`: value mean_k f(D_k), gradient the ST estimate.
    """
    where = "reparam.estimators.straight_through"
    return _straight_through(where, key, f, logits, num_samples, temperature, distribution, "st")


def reinmax(
    key: Array,
    f: Callable[[Array], Array],
    logits: Any,
    num_samples: int,
    *,
    temperature: Any = 1.0,
    distribution: str = "categorical",
) -> Array:
    """ReinMax (Liu et al. 2023, "Bridging Discrete and Backpropagation", Algorithm 2).

    f at a hard sample D ~ Categorical(π), π = softmax(logits); the backward pass replaces ST's
    first-order (Euler) approximation by Heun's method: with π_D = (softmax(logits/τ) + D)/2,

        ∇logits ≈ 2 J(π_D)ᵀ ∂f/∂D − ½ J(π)ᵀ ∂f/∂D,      J(p) = diag(p) − ppᵀ,

    as in the reference implementation (microsoft/ReinMax, `ReinMaxCore.backward`: J at π_D
    carries no 1/τ). The carrier is linear in the logits with exactly that Jacobian, so the
    sample f sees is D in value. Bernoulli latents are the two-category case with logits
    (0, logits): J(p) becomes p(1 − p) with p = sigmoid(logits) and π_D = (sigmoid(logits/τ) + b)/2.
    Biased; f must accept real-valued inputs.

    Args:
      key: a PRNG key.
      f: D of shape (K, *batch, n) (categorical) or (K, *batch) (bernoulli) -> (K, *out).
      logits: (*batch, n) or `batch`.
      num_samples: K ≥ 1.
      temperature: τ > 0 in π_D, broadcastable to `batch` (the paper tunes τ ∈ [1, 1.5]).
      distribution: "categorical" or "bernoulli".

    Returns:
      The surrogate, shape `out`: value mean_k f(D_k), gradient the ReinMax estimate.
    """
    where = "reparam.estimators.reinmax"
    return _straight_through(
        where, key, f, logits, num_samples, temperature, distribution, "reinmax"
    )


def _straight_through(
    where: str,
    key: Any,
    f: Any,
    logits: Any,
    num_samples: Any,
    temperature: Any,
    distribution: Any,
    kind: str,
) -> Array:
    key = checks.key(key, where)
    f = _callable(where, "f", f)
    num_samples = _count(where, "num_samples", num_samples, 1)
    distribution = _distribution(where, distribution, DISTRIBUTIONS)
    logits, temperature, batch = _logits(where, logits, distribution, temperature)
    categorical = distribution == "categorical"
    hard = sg(_sample(key, sg(logits), num_samples, distribution))
    if categorical:
        tempered = jax.nn.softmax(logits / temperature[..., None], axis=-1)
    else:
        tempered = jax.nn.sigmoid(logits / temperature)
    if kind == "st":
        carrier = tempered
    elif categorical:
        shifted = (sg(tempered) + hard) / 2
        carrier = 2 * _softmax_jacobian_product(shifted, logits) - 0.5 * (
            _softmax_jacobian_product(jax.nn.softmax(logits, axis=-1), logits)
        )
    else:
        shifted = (sg(tempered) + hard) / 2
        p = sg(jax.nn.sigmoid(logits))
        carrier = (2 * shifted * (1 - shifted) - 0.5 * p * (1 - p)) * logits
    sample = _dice(hard, carrier)
    return jnp.mean(_values(where, "f", f(sample), num_samples, batch), axis=0)


def _conditional_gumbels(
    key: Array, logits: Array, hard: Array, num_inner: int, distribution: str
) -> Array:
    """Noise G with argmax(logits + G) = hard (categorical Gumbels) or 1[logits + G > 0] = hard
    (Bernoulli: logistic noise), num_inner draws per sample: shape (num_inner, *hard.shape).

    Categorical (Paulus et al. 2021, appendix; the truncated-Gumbel trick of REBAR): with
    log θ = log_softmax(logits), the chosen category's perturbed value log θ + G is a standard
    Gumbel −log(−log v); every other one is a Gumbel at log θ_i truncated below it,
    −log(−log v_i / θ_i − log v_top). Bernoulli: logits + L is the logistic law truncated to
    (0, ∞) (b = 1) or (−∞, 0] (b = 0), by inverse CDF. Written with log-sigmoids/logaddexp so
    |logits| ≫ 1 stays finite.
    """
    tiny = jnp.finfo(logits.dtype).tiny
    v = jax.random.uniform(key, (num_inner, *hard.shape), logits.dtype, minval=tiny, maxval=1.0)
    if distribution == "categorical":
        log_theta = jax.nn.log_softmax(logits, axis=-1)
        log_v_top = jnp.sum(hard * jnp.log(v), axis=-1, keepdims=True)
        top = -jnp.log(-jnp.log(v))
        rest = -jnp.logaddexp(jnp.log(-jnp.log(v)) - log_theta, jnp.log(-log_v_top))
        return jnp.where(hard > 0, top, rest) - log_theta
    p = jax.nn.sigmoid(logits)
    positive = jax.nn.softplus(logits) - jnp.log(v) + jnp.log1p(-p * v)
    negative = jnp.log(v) - jax.nn.softplus(-logits) - jnp.log1p(-(1 - p) * v)
    return jnp.where(hard > 0, positive, negative) - logits


def gumbel_rao(
    key: Array,
    f: Callable[[Array], Array],
    logits: Any,
    temperature: Any,
    num_samples: int,
    *,
    num_inner: int = 10,
    distribution: str = "categorical",
) -> Array:
    """Gumbel-Rao (Paulus, Maddison & Krause 2021): Rao-Blackwellized straight-through
    Gumbel-softmax.

    f at a hard sample D ~ Categorical(softmax(logits)); the backward pass averages the
    straight-through Gumbel-softmax Jacobian over `num_inner` Gumbel vectors G_j drawn from their
    conditional law given D (`argmax(logits + G_j) = D`, the truncated-Gumbel trick):

        ∇logits ≈ (1/M) Σ_j ∇logits softmax((logits + G_j)/τ) ᵀ ∂f/∂D,   G_j ~ G | D.

    The G_j are held fixed in the derivative, as in the reference implementation of
    nshepperd/gumbel-rao-pytorch (`conditional_gumbel` under no_grad): so E[∇GR] = E[∇ST-GS]
    (`gumbel_softmax(..., straight_through=True)`) with no more variance, and M = 1 is ST-GS in
    distribution. (The paper's text differentiates through G_j too, which changes the mean.)
    Biased for the discrete objective like ST-GS; the bias shrinks with τ while the variance
    grows, which the M inner draws offset. Bernoulli: logistic noise, sigmoid((logits + L)/τ).

    Args:
      key: a PRNG key.
      f: D of shape (K, *batch, n) (categorical) or (K, *batch) (bernoulli) -> (K, *out).
      logits: (*batch, n) or `batch`.
      temperature: τ > 0, broadcastable to `batch`.
      num_samples: K ≥ 1 hard samples (each one evaluation of f).
      num_inner: M ≥ 1 conditional noise draws per hard sample (no evaluations of f).
      distribution: "categorical" or "bernoulli".

    Returns:
      The surrogate, shape `out`: value mean_k f(D_k), gradient the Gumbel-Rao estimate.
    """
    where = "reparam.estimators.gumbel_rao"
    key = checks.key(key, where)
    f = _callable(where, "f", f)
    num_samples = _count(where, "num_samples", num_samples, 1)
    num_inner = _count(where, "num_inner", num_inner, 1)
    distribution = _distribution(where, distribution, DISTRIBUTIONS)
    logits, temperature, batch = _logits(where, logits, distribution, temperature)
    sample_key, noise_key = jax.random.split(key)
    hard = sg(_sample(sample_key, sg(logits), num_samples, distribution))
    noise = sg(_conditional_gumbels(noise_key, sg(logits), hard, num_inner, distribution))
    if distribution == "categorical":
        relaxed = jax.nn.softmax((logits + noise) / temperature[..., None], axis=-1)
    else:
        relaxed = jax.nn.sigmoid((logits + noise) / temperature)
    sample = _dice(hard, jnp.mean(relaxed, axis=0))
    return jnp.mean(_values(where, "f", f(sample), num_samples, batch), axis=0)


# ---------------------------------------------------------------- ARM and DisARM
def _antithetic(
    where: str, key: Any, f: Any, logits: Any, num_samples: Any, distribution: Any, kind: str
) -> Array:
    key = checks.key(key, where)
    f = _callable(where, "f", f)
    num_samples = _count(where, "num_samples", num_samples, 1)
    _distribution(where, distribution, BERNOULLI_ONLY)
    logits, _, batch = _logits(where, logits, "bernoulli")
    theta = sg(logits)
    u = jax.random.uniform(key, (num_samples, *batch), logits.dtype)
    if kind == "arm":
        # Yin & Zhou (2019), eq. 5: both are Bernoulli(σ(θ)) draws from one uniform.
        first = (u > jax.nn.sigmoid(-theta)).astype(logits.dtype)
        second = (u < jax.nn.sigmoid(theta)).astype(logits.dtype)
    else:
        # Dong et al. (2020): b = 1[u < σ(θ)] and its antithetic partner b̃ = 1[1 − u < σ(θ)].
        first = (u < jax.nn.sigmoid(theta)).astype(logits.dtype)
        second = (1 - u < jax.nn.sigmoid(theta)).astype(logits.dtype)
    f_first = sg(_values(where, "f", f(first), num_samples, batch))
    f_second = sg(_values(where, "f", f(second), num_samples, batch))
    half_difference = _to_batch(f_first - f_second, len(batch) + 1) / 2
    if kind == "arm":
        per_sample = 2 * half_difference * (u - 0.5)
    else:
        # ½ (f(b) − f(b̃)) (−1)^b̃ 1[b ≠ b̃] σ(|θ|), per coordinate with the whole vectors.
        sign = jnp.where(second > 0, -1.0, 1.0) * (first != second)
        per_sample = half_difference * sign * jax.nn.sigmoid(jnp.abs(theta))
    value = jnp.mean((f_first + f_second) / 2, axis=0)
    out_ndim = f_first.ndim - 1
    return _dice(value, _linear_carrier(jnp.mean(per_sample, axis=0), logits, out_ndim))


def arm(
    key: Array,
    f: Callable[[Array], Array],
    logits: Any,
    num_samples: int,
    *,
    distribution: str = "bernoulli",
) -> Array:
    """ARM, augment-REINFORCE-merge (Yin & Zhou 2019, eq. 5 and its multivariate Theorem 1).

    For b ~ Bernoulli(σ(θ)) with independent coordinates and u ~ U(0, 1)ⁿ,

        ĝ_i = (f(1[u > σ(−θ)]) − f(1[u < σ(θ)])) (u_i − ½),

    f evaluated at the whole vectors; unbiased for ∇θ E[f(b)]. Each of the K samples is one such
    pair (two evaluations of f, both marginally Bernoulli(σ(θ)); the value averages all 2K).
    f is not differentiated.

    Args:
      key: a PRNG key.
      f: b of shape (K, *batch) in {0, 1} -> (K, *out), `out` a prefix of batch.
      logits: θ, shape `batch`.
      num_samples: K ≥ 1 pairs.
      distribution: "bernoulli" (the only one defined here).

    Returns:
      The surrogate, shape `out`: value mean f, gradient ĝ averaged over the K pairs.
    """
    return _antithetic("reparam.estimators.arm", key, f, logits, num_samples, distribution, "arm")


def disarm(
    key: Array,
    f: Callable[[Array], Array],
    logits: Any,
    num_samples: int,
    *,
    distribution: str = "bernoulli",
) -> Array:
    """DisARM (Dong, Mnih & Tucker 2020, eq. 6 and the multivariate §3.2).

    The antithetic pair b = 1[u < σ(θ)], b̃ = 1[1 − u < σ(θ)] (u ~ U(0, 1)ⁿ), with ARM's noise
    integrated out given the pair:

        ĝ_i = ½ (f(b) − f(b̃)) (−1)^{b̃_i} 1[b_i ≠ b̃_i] σ(|θ_i|),

    f evaluated at the whole vectors (google-research/disarm, `disarm_factor`). Unbiased, with
    no more variance than ARM for the same f evaluations (the paper's Theorem). f is not
    differentiated.

    Args:
      key: a PRNG key.
      f: b of shape (K, *batch) in {0, 1} -> (K, *out), `out` a prefix of batch.
      logits: θ, shape `batch`.
      num_samples: K ≥ 1 antithetic pairs.
      distribution: "bernoulli" (the only one defined here).

    Returns:
      The surrogate, shape `out`: value mean f, gradient ĝ averaged over the K pairs.
    """
    return _antithetic(
        "reparam.estimators.disarm", key, f, logits, num_samples, distribution, "disarm"
    )


# ---------------------------------------------------------------- VIMCO
def vimco(
    key: Array,
    log_joint: Callable[[Array], Array],
    logits: Any,
    num_samples: int,
    *,
    distribution: str = "bernoulli",
) -> Array:
    """VIMCO (Mnih & Rezende 2016): the multi-sample bound of discrete latents and its gradient.

    With b_k ~ q(b; logits) (k < K) and log w_k = log_joint(b_k) − log q(b_k), the bound is
    L̂ = log (1/K) Σ_k w_k (the IWAE bound; K = 1 would be the ELBO). Its gradient estimate is

        Σ_k (L̂ − L̂₋ₖ) ∇ log q(b_k) + Σ_k w̃_k ∇ log w_k,     w̃ = softmax_k(log w),

    with the leave-one-out baseline L̂₋ₖ = log (1/K)(Σ_{j≠k} w_j + ŵ₋ₖ), where w_k is replaced by
    the geometric mean of the others, ŵ₋ₖ = exp(mean_{j≠k} log w_j) (their eq. 10). It does not
    depend on b_k given the others, so the estimate is unbiased for ∇ E[L̂]: for the logits
    and for whatever `log_joint` closes over (a decoder's parameters get Σ_k w̃_k ∇ log_joint).

    Args:
      key: a PRNG key.
      log_joint: b of shape (K, *batch) (bernoulli) or (K, *batch, n) one-hot (categorical)
        -> log p(x, b) of shape (K, *out), `out` a prefix of batch; log q is summed over the
        remaining batch axes (a VAE's (B, d) latents give out = (B,)).
      logits: `batch` (bernoulli) or (*batch, n) (categorical).
      num_samples: K ≥ 2 (the baseline averages the other K − 1).
      distribution: "bernoulli" or "categorical".

    Returns:
      The surrogate, shape `out`: value L̂, gradient the VIMCO estimate.
    """
    where = "reparam.estimators.vimco"
    key = checks.key(key, where)
    log_joint = _callable(where, "log_joint", log_joint)
    num_samples = _count(
        where,
        "num_samples",
        num_samples,
        2,
        " (the leave-one-out baseline averages the other K − 1 samples)",
    )
    distribution = _distribution(where, distribution, DISTRIBUTIONS)
    logits, _, batch = _logits(where, logits, distribution)
    b = sg(_sample(key, sg(logits), num_samples, distribution))
    log_p = _values(where, "log_joint", log_joint(b), num_samples, batch)
    out_ndim = log_p.ndim - 1
    log_q = jnp.sum(
        _log_prob(b, logits, distribution), axis=tuple(range(1 + out_ndim, 1 + len(batch)))
    )
    log_w = log_p - log_q
    fixed = sg(log_w)
    bound = logsumexp(fixed, axis=0) - math.log(num_samples)
    others_mean = (jnp.sum(fixed, axis=0) - fixed) / (num_samples - 1)
    # Row k: the K log-weights with the k-th replaced by the geometric mean of the others.
    eye = jnp.eye(num_samples, dtype=bool).reshape((num_samples, num_samples) + (1,) * out_ndim)
    left_out = jnp.where(eye, others_mean[:, None], fixed[None, :])
    bound_without = logsumexp(left_out, axis=1) - math.log(num_samples)
    weights = jax.nn.softmax(fixed, axis=0)
    carrier = jnp.sum((bound - bound_without) * log_q + weights * log_w, axis=0)
    return _dice(bound, carrier)


# ---------------------------------------------------------------- IndeCateR
def indecater(
    key: Array,
    f: Callable[[Array], Array],
    logits: Any,
    num_samples: int,
    *,
    distribution: str = "categorical",
) -> Array:
    """IndeCateR (De Smet, Sansone & Zuidberg Dos Martires 2023), independent categorical
    REINFORCE; for Bernoulli latents it is the local-expectation gradient (Titsias &
    Lázaro-Gredilla 2015).

    For independent latents x_1 … x_m with probabilities p_i = softmax(logits_i), the gradient
    of E[f(x)] is summed exactly over each latent's n values with the others sampled:

        ĝ_i = (1/K) Σ_k Σ_c ∇logits_i p_i(c) · f(x_k with x_i := c),
            = p_i ⊙ (F_i − ⟨p_i, F_i⟩),   F_i(c) = (1/K) Σ_k f(x_k with x_i := c).

    Unbiased and Rao-Blackwellized per latent. Costs K · m · n evaluations of f (plus K for the
    value), m the number of latents per out element (the batch axes that f reduces): f is
    called once with a leading axis of m · n · K. f is not differentiated.

    Args:
      key: a PRNG key.
      f: x of shape (S, *batch, n) one-hot (categorical) or (S, *batch) in {0, 1} (bernoulli)
        -> (S, *out), for S = K and S = m · n · K.
      logits: (*batch, n) or `batch`.
      num_samples: K ≥ 1.
      distribution: "categorical" or "bernoulli".

    Returns:
      The surrogate, shape `out`: value mean_k f(x_k), gradient ĝ.
    """
    where = "reparam.estimators.indecater"
    key = checks.key(key, where)
    f = _callable(where, "f", f)
    num_samples = _count(where, "num_samples", num_samples, 1)
    distribution = _distribution(where, distribution, DISTRIBUTIONS)
    logits, _, batch = _logits(where, logits, distribution)
    categorical = distribution == "categorical"
    x = sg(_sample(key, sg(logits), num_samples, distribution))
    values = sg(_values(where, "f", f(x), num_samples, batch))
    out = values.shape[1:]
    rest = batch[len(out) :]
    m = math.prod(rest)
    n = logits.shape[-1] if categorical else 2
    # Bernoulli as one-hot over {0, 1}, so both cases replace one latent's one-hot by e_c.
    one_hot = x if categorical else jnp.stack([1 - x, x], axis=-1)
    flat = one_hot.reshape((num_samples, *out, m, n))
    position = jnp.eye(m, dtype=bool)[:, None, None, *([None] * len(out)), :, None]
    category = jnp.eye(n, dtype=flat.dtype)[None, :, None, *([None] * len(out)), None, :]
    replaced = jnp.where(position, category, flat[None, None])  # (m, n, K, *out, m, n)
    replaced = replaced.reshape((m * n * num_samples, *batch, n))
    if not categorical:
        replaced = replaced[..., 1]
    f_replaced = sg(_values(where, "f", f(replaced), m * n * num_samples, batch))
    means = jnp.mean(f_replaced.reshape((m, n, num_samples, *out)), axis=2)
    means = jnp.moveaxis(means.reshape((m, n, -1)), (0, 1), (1, 2)).reshape((*batch, n))
    theta = sg(logits)
    if categorical:
        p = jax.nn.softmax(theta, axis=-1)
        grad = p * (means - jnp.sum(p * means, axis=-1, keepdims=True))
    else:
        p = jax.nn.sigmoid(theta)
        grad = p * (1 - p) * (means[..., 1] - means[..., 0])
    return _dice(jnp.mean(values, axis=0), _linear_carrier(grad, logits, len(out)))


__all__ = [
    "arm",
    "disarm",
    "gumbel_rao",
    "indecater",
    "reinmax",
    "straight_through",
    "vimco",
]
