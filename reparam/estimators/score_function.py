"""The score-function (REINFORCE) estimator with its baselines: a constant or moving average
(`ema`), leave-one-out over the K samples, or a learned control variate (LAX), and the variance
gradient that trains learned control variates (`estimate_and_variance_gradient`)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp

from reparam import checks
from reparam.estimators._common import dice, evaluate, params_tuple, reduce_to, score_term, sg

Array = jax.Array

Baseline = None | str | Any | Callable[[Array], Array]


def ema(average: Any, values: Any, decay: float = 0.9) -> Array:
    """Exponential moving average update for a score-function baseline.

    Returns decay · average + (1 − decay) · mean_k values[k]. Pass the *old* average as the
    baseline of the current estimate and update afterwards, so that the baseline never depends
    on the samples it multiplies (which would bias the estimate).

    Args:
      average: the current average, shape `out`.
      values: this step's f values, shape (K, *out).
      decay: in [0, 1).
    """
    where = "reparam.estimators.ema"
    if not 0.0 <= float(decay) < 1.0:
        raise ValueError(f"{where}: `decay` must be in [0, 1); got {decay!r}")
    values = jnp.asarray(values)
    return decay * jnp.asarray(average) + (1.0 - decay) * jnp.mean(sg(values), axis=0)


def score_function(
    key: Array,
    f: Callable[[Array], Array],
    family: ModuleType,
    params: tuple,
    num_samples: int,
    *,
    baseline: Baseline = None,
) -> Array:
    """Score-function (REINFORCE, likelihood-ratio) estimator with an optional baseline.

    ĝ = mean_k (f(z_k) − b_k) ∇θ log q(z_k; θ) [+ the control variate's correction], z ~ q,
    f never differentiated (it may be a black box or non-differentiable).

    Baselines (none of them biases the estimate):
      None                no baseline.
      an array            a constant or a moving average (see `ema`), shape broadcastable to
                          `out`; it must not depend on this call's samples.
      "leave_one_out"     b_k = mean_{j≠k} f(z_j) (Kool et al. 2019; needs K ≥ 2).
      a callable c(z)     a learned control variate, z (K, *batch, *event) -> (K, *out):
                          ĝ = mean_k [(f(z_k) − c(z_k)) ∇θ log q(z_k) + ∇θ c(z(ε_k, θ))], which
                          is LAX (Grathwohl et al. 2018) and needs a reparameterizable
                          `family.sample`; a c that ignores z is an input-dependent baseline.
                          The estimate stays differentiable in c's parameters: train them by
                          minimizing the squared estimate (`estimate_and_variance_gradient`).

    Args:
      key: a PRNG key.
      f: z of shape (K, *batch, *event) -> values of shape (K, *out), `out` a prefix of batch.
      family: a family module with `sample` and `log_prob`.
      params: the family's parameters in PARAMS order.
      num_samples: K ≥ 1 (≥ 2 for "leave_one_out").
      baseline: see above.

    Returns:
      The surrogate, shape `out`: value mean_k f(z_k), gradient the estimate.
    """
    where = "reparam.estimators.score_function"
    key = checks.key(key, where)
    f = checks.function(where, "f", f)
    family = checks.family(where, family, "sample", "log_prob")
    params = params_tuple(where, params)
    leave_one_out = isinstance(baseline, str)
    if leave_one_out:
        checks.choice(where, "baseline", baseline, ("leave_one_out",))
    num_samples = checks.count(
        where,
        "num_samples",
        num_samples,
        2 if leave_one_out else 1,
        " for the leave-one-out baseline (it averages the other K − 1 samples)"
        if leave_one_out
        else "",
    )
    z_path = family.sample(key, *params, sample_shape=(num_samples,))
    z = sg(z_path)
    values = sg(evaluate(where, f, z, num_samples))
    log_prob = reduce_to(where, family.log_prob(z, *params), values.shape[1:])
    value = jnp.mean(values, axis=0)
    if baseline is None:
        carrier = score_term(values, log_prob)
    elif leave_one_out:
        others = (jnp.sum(values, axis=0) - values) / (num_samples - 1)
        carrier = score_term(values - others, log_prob)
    elif callable(baseline):
        control = checks.per_sample(where, "baseline", baseline(z), num_samples)
        # (f − c(z̄))·∇log q + ∇θ c(z(θ)); c(z(θ)) − c(z̄) is zero in value and in c's
        # parameters, so only the reparameterized correction reaches θ.
        carrier = score_term(values - control, log_prob) + (baseline(z_path) - control)
    else:
        constant = checks.numeric(where, "baseline", baseline)
        try:
            jnp.broadcast_shapes(constant.shape, value.shape)
        except ValueError:
            raise ValueError(
                f"{where}: `baseline` must broadcast to f's per-sample shape {value.shape} "
                f"(one constant per objective, not per sample); got shape {constant.shape}"
            ) from None
        if constant.ndim > value.ndim:
            raise ValueError(
                f"{where}: `baseline` must broadcast to f's per-sample shape {value.shape}; "
                f"got shape {constant.shape}"
            )
        carrier = score_term(values - sg(constant), log_prob)
    return dice(value, jnp.mean(carrier, axis=0))


def estimate_and_variance_gradient(
    surrogate: Callable[[Any, Any], Array], params: Any, cv_params: Any
) -> tuple[Any, Any]:
    """The estimate ĝ = ∇θ Σ surrogate(θ, φ) and ∇φ Σ ĝ² (a single-sample gradient of the
    estimator's variance in the control variate's parameters φ, since E[ĝ] does not depend on φ
    for an unbiased estimator; Grathwohl et al. 2018, eq. 5).

    Args:
      surrogate: (params, cv_params) -> surrogate array; close over the key.
      params: θ, a pytree.
      cv_params: φ, a pytree.

    Returns:
      (ĝ as params' pytree, ∇φ Σ ĝ² as cv_params' pytree).
    """

    def squared(phi):
        estimate = jax.grad(lambda theta: jnp.sum(surrogate(theta, phi)))(params)
        total = sum(jnp.sum(leaf**2) for leaf in jax.tree_util.tree_leaves(estimate))
        return total, estimate

    (_, estimate), cv_grad = jax.value_and_grad(squared, has_aux=True)(cv_params)
    return estimate, cv_grad


__all__ = ["Baseline", "ema", "estimate_and_variance_gradient", "score_function"]
