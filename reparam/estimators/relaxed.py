"""Estimators for discrete latents through continuous relaxations: Gumbel-softmax / Concrete
(optionally straight-through), and the unbiased REBAR and RELAX with their shared draws
(`relax_draws`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from reparam import checks
from reparam.estimators._common import dice, evaluate, reduce_to, score_term, sg
from reparam.families import relaxed_bernoulli, relaxed_categorical

Array = jax.Array

DISCRETE = ("bernoulli", "categorical")


def gumbel_softmax(
    key: Array,
    f: Callable[[Array], Array],
    logits: Any,
    temperature: Any,
    num_samples: int,
    *,
    distribution: str = "categorical",
    straight_through: bool = False,
) -> Array:
    """Gumbel-softmax / Concrete pathwise estimator (Jang et al. 2017; Maddison et al. 2017).

    The pathwise estimator through `reparam.relaxed_categorical` (or `relaxed_bernoulli`):
    f sees relaxed samples in the simplex (or (0, 1)), so the gradient is unbiased for the
    relaxed objective but biased for the discrete one. With `straight_through`, f sees the
    hard one-hot (or {0, 1}) sample and the gradient is the relaxed one (Bengio et al. 2013).

    Args:
      key: a PRNG key.
      f: relaxed or hard samples of shape (K, *batch, n) (categorical) or (K, *batch)
        (bernoulli) -> values (K, *out).
      logits: shape (*batch, n) or (*batch,); temperature: > 0, broadcastable.
      num_samples: K ≥ 1.
      distribution: "categorical" or "bernoulli".
      straight_through: hard forward pass, relaxed backward pass.

    Returns:
      The surrogate, shape `out`.
    """
    where = "reparam.estimators.gumbel_softmax"
    checks.choice(where, "distribution", distribution, DISCRETE)
    family = relaxed_categorical if distribution == "categorical" else relaxed_bernoulli
    key = checks.key(key, where)
    f = checks.function(where, "f", f)
    num_samples = checks.count(where, "num_samples", num_samples)
    z = family.sample(
        key, logits, temperature, sample_shape=(num_samples,), straight_through=straight_through
    )
    return jnp.mean(evaluate(where, f, z, num_samples), axis=0)


def _bernoulli_relax_pieces(key: Array, logits: Array, shape: tuple[int, ...]):
    """z = logits + Logistic noise, b = H(z), and z̃ ~ p(z | b) reparameterized in logits."""
    u_key, v_key = jax.random.split(key)
    tiny = jnp.finfo(logits.dtype).tiny
    u = jax.random.uniform(u_key, shape, logits.dtype, minval=tiny, maxval=1.0)
    v = jax.random.uniform(v_key, shape, logits.dtype, minval=tiny, maxval=1.0)
    z = logits + jnp.log(u) - jnp.log1p(-u)
    b = sg((z > 0).astype(logits.dtype))
    # z̃ is z's logistic law truncated to z > 0 (b = 1) or z ≤ 0 (b = 0), by inverse CDF with
    # the uniform v; written with log-sigmoids so |logits| ≫ 1 stays finite.
    p = jax.nn.sigmoid(logits)
    positive = jax.nn.softplus(logits) - jnp.log(v) + jnp.log1p(-p * v)
    negative = jnp.log(v) - jax.nn.softplus(-logits) - jnp.log1p(-(1 - p) * v)
    z_tilde = jnp.where(b > 0, positive, negative)
    log_prob = b * jax.nn.log_sigmoid(logits) + (1 - b) * jax.nn.log_sigmoid(-logits)
    return z, b, z_tilde, log_prob


def _categorical_relax_pieces(key: Array, logits: Array, shape: tuple[int, ...]):
    """z = log θ + Gumbel noise, b = one_hot(argmax z), and z̃ ~ p(z | b) (Tucker et al. 2017,
    appendix): the maximum keeps a standard Gumbel, the others are Gumbels truncated below it."""
    u_key, v_key = jax.random.split(key)
    tiny = jnp.finfo(logits.dtype).tiny
    log_theta = jax.nn.log_softmax(logits, axis=-1)
    u = jax.random.uniform(u_key, shape, logits.dtype, minval=tiny, maxval=1.0)
    v = jax.random.uniform(v_key, shape, logits.dtype, minval=tiny, maxval=1.0)
    z = log_theta - jnp.log(-jnp.log(u))
    b = sg(jax.nn.one_hot(jnp.argmax(z, axis=-1), shape[-1], dtype=logits.dtype))
    log_v = jnp.log(v)
    log_v_top = jnp.sum(b * log_v, axis=-1, keepdims=True)
    top = -jnp.log(-log_v)
    # −log(−log v · θ⁻¹ − log v_top) in log space: θ⁻¹ = exp(−log θ) overflows float32 once a
    # category's log-probability is below about −88, which a confident encoder reaches.
    rest = -jnp.logaddexp(jnp.log(-log_v) - log_theta, jnp.log(-log_v_top))
    z_tilde = jnp.where(b > 0, top, rest)
    log_prob = jnp.sum(b * log_theta, axis=-1)
    return z, b, z_tilde, log_prob


def relax_draws(
    key: Array, logits: Array, num_samples: int, *, distribution: str = "bernoulli"
) -> tuple[Array, Array, Array, Array]:
    """The draws `rebar` and `relax` make with `key`, for code that must see the same samples.

    Args:
      logits: (*batch,) Bernoulli or (*batch, C) categorical logits.
    Returns:
      (z, b, z̃, log p(b)): the continuous relaxation z, the discrete sample b = H(z), z̃ ~ p(z | b)
      (each (num_samples, *logits.shape)) and log p(b) ((num_samples, *batch)).
    """
    where = "reparam.estimators.relax_draws"
    checks.choice(where, "distribution", distribution, DISCRETE)
    pieces = _categorical_relax_pieces if distribution == "categorical" else _bernoulli_relax_pieces
    return pieces(key, logits, (num_samples, *jnp.shape(logits)))


def relax(
    key: Array,
    f: Callable[[Array], Array],
    logits: Any,
    num_samples: int,
    control_variate: Callable[[Array], Array],
    *,
    distribution: str = "bernoulli",
) -> Array:
    """RELAX (Grathwohl et al. 2018): unbiased gradient for Bernoulli / categorical latents.

    With z the continuous relaxation's pre-threshold variable (z = logits + Logistic noise for
    Bernoulli, log θ + Gumbel noise for categorical), b = H(z) the discrete sample and z̃ a
    draw from p(z | b) reparameterized in the logits:

        ĝ = [f(b) − c(z̃)] ∇ log p(b) + ∇ c(z) − ∇ c(z̃).

    Unbiased for any c; c's parameters stay differentiable in ĝ (train them by minimizing ĝ²,
    `estimate_and_variance_gradient`). REBAR is c(z) = η · f(σ_λ(z)), see `rebar`.

    Args:
      key: a PRNG key.
      f: b of shape (K, *batch) in {0, 1} (bernoulli) or (K, *batch, n) one-hot (categorical)
        -> values (K, *out), `out` a prefix of batch.
      logits: shape `batch` (bernoulli) or (*batch, n) (categorical).
      num_samples: K ≥ 1.
      control_variate: z of b's shape -> (K, *out).
      distribution: "bernoulli" or "categorical".

    Returns:
      The surrogate, shape `out`: value mean f(b), gradient ĝ.
    """
    where = "reparam.estimators.relax"
    key = checks.key(key, where)
    f = checks.function(where, "f", f)
    control_variate = checks.function(where, "control_variate", control_variate)
    num_samples = checks.count(where, "num_samples", num_samples)
    checks.choice(where, "distribution", distribution, DISCRETE)
    (logits,), batch = checks.broadcast(where, logits=logits)
    if distribution == "categorical":
        if logits.ndim < 1:
            raise ValueError(
                f"{where}: categorical `logits` need a trailing category axis; got shape ()"
            )
        pieces = _categorical_relax_pieces
    else:
        pieces = _bernoulli_relax_pieces
    z, b, z_tilde, log_prob = pieces(key, logits, (num_samples, *batch))
    values = sg(evaluate(where, f, b, num_samples))
    log_prob = reduce_to(where, log_prob, values.shape[1:])

    def control(x: Array) -> Array:
        return checks.per_sample(where, "control_variate", control_variate(x), num_samples)

    c_tilde = control(sg(z_tilde))
    # c(z(θ)) − c(sg z) is zero in value and in c's parameters; only ∇θ c(z) survives.
    carrier = (
        score_term(values - c_tilde, log_prob)
        + (control(z) - control(sg(z)))
        - (control(z_tilde) - c_tilde)
    )
    return dice(jnp.mean(values, axis=0), jnp.mean(carrier, axis=0))


def rebar(
    key: Array,
    f: Callable[[Array], Array],
    logits: Any,
    num_samples: int,
    *,
    temperature: Any = 0.5,
    eta: Any = 1.0,
    distribution: str = "bernoulli",
) -> Array:
    """REBAR (Tucker et al. 2017): RELAX with the control variate c(z) = η · f(σ_λ(z)).

    σ_λ is the Concrete relaxation at temperature λ (sigmoid(z/λ) or softmax(z/λ)), so f must
    also accept relaxed inputs. Unbiased for any η and λ > 0; both may be traced arrays, tuned
    by minimizing the squared estimate (`estimate_and_variance_gradient`).
    """
    where = "reparam.estimators.rebar"
    checks.choice(where, "distribution", distribution, DISCRETE)
    f = checks.function(where, "f", f)
    checks.positive(where, "temperature", temperature)

    def relaxed(z: Array) -> Array:
        if distribution == "categorical":
            return jax.nn.softmax(z / temperature, axis=-1)
        return jax.nn.sigmoid(z / temperature)

    return relax(
        key, f, logits, num_samples, lambda z: eta * f(relaxed(z)), distribution=distribution
    )


__all__ = ["DISCRETE", "gumbel_softmax", "rebar", "relax", "relax_draws"]
