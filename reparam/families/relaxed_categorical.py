"""Relaxed one-hot categorical — Gumbel-softmax / Concrete (Maddison et al. 2017; Jang et al. 2017).

Sampling: g_k ~ Gumbel(0, 1) independently and z = softmax((logits + g) / temperature), a point
in the interior of the (K − 1)-simplex; as temperature → 0 it approaches the one-hot of
argmax(logits + g), a draw of Categorical(softmax(logits)).

`straight_through=True` (in `transform` and `sample`) returns that one-hot exactly in the
forward pass while gradients are those of the relaxed z (Jang et al.'s straight-through
Gumbel-softmax): one_hot + (z − stop_gradient(z)). The bracket is exactly 0 in floating point,
so the forward value is exactly one-hot (unlike one_hot − stop_gradient(z) + z, which can be
off by an ulp).

Density (Maddison et al. 2017, eq. 7), with respect to Lebesgue measure on the first K − 1
coordinates, λ = temperature, α = exp(logits):

    p(x) = (K − 1)! λ^(K−1) Π_k [α_k x_k^(−λ−1) / Σ_i α_i x_i^(−λ)],

evaluated in log space: with t_k = logits_k − λ log x_k,

    log p(x) = log Γ(K) + (K − 1) log λ + Σ_k [log_softmax(t)_k − log x_k],

which has no overflowing power x^(−λ) and is invariant to shifting the logits.

Shapes: `logits` is B₁ + (K,), `temperature` B₂; B = broadcast(B₁, B₂). Samples and noise have
shape `sample_shape + B + (K,)` (one event axis, last); `log_prob` has shape
broadcast(x.shape[:-1], B).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from reparam import checks

Array = jax.Array

PARAMS = ("logits", "temperature")
EVENT_NDIMS = 1
PARAM_EVENT_NDIMS = {"logits": 1, "temperature": 0}


def _params(where: str, logits, temperature) -> tuple[Array, Array, tuple[int, ...]]:
    """Checked (logits, temperature[..., None], batch shape)."""
    where = f"reparam.relaxed_categorical.{where}"
    (logits, temperature), batch_shape = checks.broadcast(
        where, event_ndims=PARAM_EVENT_NDIMS, logits=logits, temperature=temperature
    )
    # ±inf logits would make the softmax argument inf − inf (NaN) or its gradient NaN.
    checks.finite(where, "logits", logits)
    checks.positive(where, "temperature", temperature)
    # The temperature is per batch element: give it the event axis to broadcast over K.
    return logits, temperature[..., None], batch_shape


@functools.partial(jax.jit, static_argnames="straight_through")
def _relax(eps: Array, logits: Array, temperature: Array, straight_through: bool) -> Array:
    scaled = (logits + eps) / temperature
    soft = jax.nn.softmax(scaled, axis=-1)
    if not straight_through:
        return soft
    hard = jax.nn.one_hot(jnp.argmax(scaled, axis=-1), logits.shape[-1], dtype=soft.dtype)
    return hard + (soft - jax.lax.stop_gradient(soft))


@jax.jit
def _log_prob_from_log_x(log_x: Array, logits: Array, temperature: Array) -> Array:
    """Concrete log-density given log x (..., K); temperature (..., 1); shape (...)."""
    k = logits.shape[-1]
    t = logits - temperature * log_x
    return (
        math.lgamma(k)
        + (k - 1) * jnp.log(temperature[..., 0])
        + jnp.sum(jax.nn.log_softmax(t, axis=-1) - log_x, axis=-1)
    )


def noise(key: Array, shape: tuple[int, ...] = (), dtype=None) -> Array:
    """Standard Gumbel g of `shape` (last axis: the K categories)."""
    key = checks.key(key, "reparam.relaxed_categorical.noise")
    shape = checks.sample_shape("reparam.relaxed_categorical.noise", shape, "shape")
    return jax.random.gumbel(key, shape, checks.noise_dtype(dtype))


def transform(eps: Array, logits, temperature, *, straight_through: bool = False) -> Array:
    """z = softmax((logits + ε)/temperature) for Gumbel ε (..., K); shape broadcast(...) + (K,).

    With `straight_through=True` the value is the one-hot of the argmax and the gradient that of
    the relaxed z.
    """
    where = "reparam.relaxed_categorical.transform"
    logits, temperature, batch_shape = _params("transform", logits, temperature)
    checks.broadcastable(
        "reparam.relaxed_categorical.transform",
        "eps",
        jnp.shape(eps),
        batch_shape,
        logits.shape[-1:],
    )
    eps = checks.numeric(where, "eps", eps)
    if eps.ndim < 1:
        raise ValueError(
            f"{where}: `eps` must have an event axis of size {logits.shape[-1]}, "
            f"got shape {eps.shape}"
        )
    checks.event_size(where, "eps", eps, logits.shape[-1])
    return _relax(eps, logits, temperature, straight_through)


def noise_shape(sample_shape, logits, temperature) -> tuple[int, ...]:
    """The shape of ε that `sample(key, logits, temperature, sample_shape)` draws:
    `sample_shape + B + (K,)`
    (for callers that bring their own ε: quasi-Monte-Carlo, common random numbers)."""
    where = "reparam.relaxed_categorical.noise_shape"
    logits, _, batch_shape = _params("noise_shape", logits, temperature)
    return (*checks.sample_shape(where, sample_shape), *batch_shape, *(logits.shape[-1],))


def sample(
    key: Array, logits, temperature, sample_shape=(), *, straight_through: bool = False
) -> Array:
    """Reparameterized draw of shape `sample_shape + B + (K,)` on the simplex.

    With `straight_through=True`: exactly one-hot forward, relaxed gradient backward.
    """
    where = "reparam.relaxed_categorical.sample"
    key = checks.key(key, where)
    logits, temperature, batch_shape = _params("sample", logits, temperature)
    shape = (*checks.sample_shape(where, sample_shape), *batch_shape, logits.shape[-1])
    eps = jax.random.gumbel(key, shape, logits.dtype)
    return _relax(eps, logits, temperature, straight_through)


def sample_and_log_prob(key: Array, logits, temperature, sample_shape=()) -> tuple[Array, Array]:
    """Draw z (as `sample`) and log p(z), the latter from log z = log_softmax(...).

    Exact where components of z underflow to 0 (low temperatures), where `log_prob(z)` is not.
    """
    where = "reparam.relaxed_categorical.sample_and_log_prob"
    key = checks.key(key, where)
    logits, temperature, batch_shape = _params("sample_and_log_prob", logits, temperature)
    shape = (*checks.sample_shape(where, sample_shape), *batch_shape, logits.shape[-1])
    scaled = (logits + jax.random.gumbel(key, shape, logits.dtype)) / temperature
    log_z = jax.nn.log_softmax(scaled, axis=-1)
    return jax.nn.softmax(scaled, axis=-1), _log_prob_from_log_x(log_z, logits, temperature)


def log_prob(x, logits, temperature) -> Array:
    """Concrete log-density at x (..., K) in the open simplex; shape broadcast(x.shape[:-1], B).

    The density is with respect to the first K − 1 coordinates (x_K = 1 − Σ others); x is not
    checked to lie on the simplex. At a one-hot x (e.g. a straight-through sample) it is not
    finite.
    """
    where = "reparam.relaxed_categorical.log_prob"
    logits, temperature, batch_shape = _params("log_prob", logits, temperature)
    checks.broadcastable(
        "reparam.relaxed_categorical.log_prob", "x", jnp.shape(x), batch_shape, logits.shape[-1:]
    )
    x = checks.numeric(where, "x", x).astype(logits.dtype)
    if x.ndim < 1:
        raise ValueError(
            f"{where}: `x` must have an event axis of size {logits.shape[-1]}, got shape {x.shape}"
        )
    checks.event_size(where, "x", x, logits.shape[-1])
    return _log_prob_from_log_x(jnp.log(x), logits, temperature)


__all__ = [
    "EVENT_NDIMS",
    "PARAMS",
    "PARAM_EVENT_NDIMS",
    "log_prob",
    "noise",
    "noise_shape",
    "sample",
    "sample_and_log_prob",
    "transform",
]
