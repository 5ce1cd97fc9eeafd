"""Relaxed Bernoulli — the binary Concrete distribution (Maddison et al. 2017, section 3.3).

Sampling: L ~ Logistic(0, 1) and z = sigmoid((logits + L) / temperature) in (0, 1); as
temperature → 0 it approaches the indicator [logits + L > 0], a draw of Bernoulli(sigmoid(logits)).
(L = g₁ − g₂ for two Gumbels: this is the K = 2 relaxed categorical seen through its first
coordinate, with logits = the logit difference.)

`straight_through=True` (in `transform` and `sample`) returns that indicator exactly (0.0 or
1.0) in the forward pass, with the gradient of the relaxed z: hard + (z − stop_gradient(z)).

Density, with λ = temperature and y = logit(x) = log x − log(1 − x), from the change of
variables L = λ y − logits:

    log p(x) = log λ + log Logistic(λ y − logits) − log x − log(1 − x),
    log Logistic(u) = −u − 2 softplus(−u),

which equals Maddison et al.'s λ α x^(−λ−1)(1 − x)^(−λ−1) / (α x^(−λ) + (1 − x)^(−λ))² without
forming the powers (they overflow for small λ). The CDF is P(z ≤ x) = sigmoid(λ y − logits).

Shapes: parameters broadcast to a batch shape B; samples have shape `sample_shape + B`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from reparam import checks

Array = jax.Array

PARAMS = ("logits", "temperature")
EVENT_NDIMS = 0


def _params(where: str, logits, temperature) -> tuple[Array, Array, tuple[int, ...]]:
    where = f"reparam.relaxed_bernoulli.{where}"
    (logits, temperature), batch_shape = checks.broadcast(
        where, logits=logits, temperature=temperature
    )
    # ±inf logits would make logits + L − ... NaN, or its gradient NaN.
    checks.finite(where, "logits", logits)
    checks.positive(where, "temperature", temperature)
    return logits, temperature, batch_shape


@functools.partial(jax.jit, static_argnames="straight_through")
def _relax(eps: Array, logits: Array, temperature: Array, straight_through: bool) -> Array:
    scaled = (logits + eps) / temperature
    soft = jax.nn.sigmoid(scaled)
    if not straight_through:
        return soft
    # Decide on the pre-sigmoid value: sigmoid(tiny > 0) rounds to 0.5 and would be ambiguous.
    hard = (scaled > 0).astype(soft.dtype)
    return hard + (soft - jax.lax.stop_gradient(soft))


def _log_logistic(u: Array) -> Array:
    """log of the standard logistic density, −u − 2 softplus(−u), smooth and finite for all u."""
    return -u - 2.0 * jax.nn.softplus(-u)


def noise(key: Array, shape: tuple[int, ...] = (), dtype=None) -> Array:
    """Standard logistic L of `shape`."""
    key = checks.key(key, "reparam.relaxed_bernoulli.noise")
    shape = checks.sample_shape("reparam.relaxed_bernoulli.noise", shape, "shape")
    return jax.random.logistic(key, shape, checks.noise_dtype(dtype))


def transform(eps: Array, logits, temperature, *, straight_through: bool = False) -> Array:
    """z = sigmoid((logits + ε)/temperature) for logistic ε; shape broadcast(ε, logits, temp.).

    With `straight_through=True` the value is the 0/1 indicator and the gradient that of z.
    """
    logits, temperature, batch_shape = _params("transform", logits, temperature)
    checks.broadcastable("reparam.relaxed_bernoulli.transform", "eps", jnp.shape(eps), batch_shape)
    eps = checks.numeric("reparam.relaxed_bernoulli.transform", "eps", eps)
    return _relax(eps, logits, temperature, straight_through)


def noise_shape(sample_shape, logits, temperature) -> tuple[int, ...]:
    """The shape of ε that `sample(key, logits, temperature, sample_shape)` draws:
    `sample_shape + B`, the sample's shape
    (for callers that bring their own ε: quasi-Monte-Carlo, common random numbers)."""
    where = "reparam.relaxed_bernoulli.noise_shape"
    _, _, batch_shape = _params("noise_shape", logits, temperature)
    return checks.sample_shape(where, sample_shape) + batch_shape


def sample(
    key: Array, logits, temperature, sample_shape=(), *, straight_through: bool = False
) -> Array:
    """Reparameterized draw in [0, 1] of shape `sample_shape + B`.

    With `straight_through=True`: exactly 0 or 1 forward, relaxed gradient backward.
    """
    where = "reparam.relaxed_bernoulli.sample"
    key = checks.key(key, where)
    logits, temperature, batch_shape = _params("sample", logits, temperature)
    shape = checks.sample_shape(where, sample_shape) + batch_shape
    eps = jax.random.logistic(key, shape, logits.dtype)
    return _relax(eps, logits, temperature, straight_through)


def sample_and_log_prob(key: Array, logits, temperature, sample_shape=()) -> tuple[Array, Array]:
    """Draw z (as `sample`) and log p(z) from the pre-sigmoid y and the noise L.

    log z = −softplus(−y) and log(1 − z) = −softplus(y) stay exact where z rounds to 0 or 1.
    """
    where = "reparam.relaxed_bernoulli.sample_and_log_prob"
    key = checks.key(key, where)
    logits, temperature, batch_shape = _params("sample_and_log_prob", logits, temperature)
    eps = jax.random.logistic(
        key, checks.sample_shape(where, sample_shape) + batch_shape, logits.dtype
    )
    scaled = (logits + eps) / temperature
    # λ y − logits is exactly the noise L; −log z − log(1 − z) = softplus(−y) + softplus(y).
    log_p = (
        jnp.log(temperature)
        + _log_logistic(eps)
        + jax.nn.softplus(-scaled)
        + jax.nn.softplus(scaled)
    )
    return jax.nn.sigmoid(scaled), log_p


def log_prob(x, logits, temperature) -> Array:
    """Binary Concrete log-density at x in (0, 1); shape broadcast(x, logits, temperature).

    Not finite at x = 0 or 1 exactly (e.g. a straight-through sample, or a relaxed one that
    rounded); `sample_and_log_prob` is exact there.
    """
    logits, temperature, batch_shape = _params("log_prob", logits, temperature)
    checks.broadcastable("reparam.relaxed_bernoulli.log_prob", "x", jnp.shape(x), batch_shape)
    x = jnp.asarray(x, jnp.result_type(x, logits))
    log_x, log1m_x = jnp.log(x), jnp.log1p(-x)
    return (
        jnp.log(temperature)
        + _log_logistic(temperature * (log_x - log1m_x) - logits)
        - log_x
        - log1m_x
    )


def cdf(x, logits, temperature) -> Array:
    """P(z ≤ x) = sigmoid(temperature · logit(x) − logits); 0 below 0 and 1 above 1."""
    logits, temperature, _ = _params("cdf", logits, temperature)
    x = jnp.clip(jnp.asarray(x, jnp.result_type(x, logits)), 0.0, 1.0)
    return jax.nn.sigmoid(temperature * (jnp.log(x) - jnp.log1p(-x)) - logits)


__all__ = [
    "EVENT_NDIMS",
    "PARAMS",
    "cdf",
    "log_prob",
    "noise",
    "noise_shape",
    "sample",
    "sample_and_log_prob",
    "transform",
]
