"""The categorical-latent VAE's ELBO with a choice of gradient estimator, and its evaluation.

The model (Jang, Gu & Poole 2017): q(z|x) = Π_l Cat(z_l; softmax(logits_l)) over L categorical
variables of C categories, a uniform prior p(z) = C^(−L), and a decoder p(x|z). Its ELBO is

    ELBO(x) = E_q[log p(x|z)] − KL(q(z|x) ‖ p(z)),

with the KL in closed form (Σ_l Σ_c q_lc log(C q_lc), as in Jang et al.'s code), so only the
reconstruction term needs a gradient estimator. `elbo` takes the encoder's logits and the
decoder as a callable, like `reparam.objectives`:

  logits                          (B, L, C), differentiable in the encoder's parameters
  log_likelihood(z) -> (K, B)     log p(x|z) for codes z (K, B, L, C) (one-hot or relaxed)

and returns `(surrogate, objective)`, both (B,): train by minimising `-surrogate.mean()`.
Estimators (`ESTIMATORS`), all through `reparam.estimators`:

  "gumbel_softmax"    the decoder sees the relaxed code softmax((logits + g)/τ) (pathwise; the
                      objective is the relaxed one, biased for the discrete ELBO).
  "straight_through"  the decoder sees the one-hot argmax, the gradient is the relaxed one
                      (biased); the objective's value is the discrete ELBO.
  "score_function"    REINFORCE on the one-hot code with a baseline (unbiased). The default,
                      "batch_leave_one_out", subtracts from example i's learning signal the mean
                      signal of the other examples of the batch: it costs nothing, needs no
                      state, and is unbiased because the other examples' codes are independent of
                      example i's. "leave_one_out" averages the other K − 1 samples of the same
                      example (K ≥ 2 decoder passes per example); None uses no baseline.
  "rebar"             Tucker et al. (2017): control variate c(z) = η · f(softmax(z/λ)), unbiased.
  "relax"             Grathwohl et al. (2018): c(z) = η · f(softmax(z/λ)) + r_ψ(z), unbiased.
  "st"                plain straight-through (Bengio et al. 2013; `estimators.straight_through`):
                      the decoder sees a one-hot z ~ q, the gradient is ∂f/∂z pushed through
                      softmax(logits/τ); no Gumbel noise (biased). Not "straight_through", which
                      is the straight-through *Gumbel-softmax* of Jang et al.
  "reinmax"           ReinMax (Liu et al. 2023; `estimators.reinmax`): straight-through with
                      Heun's second-order correction, τ in its π_D (biased).
  "gumbel_rao"        Gumbel-Rao (Paulus et al. 2021; `estimators.gumbel_rao`): straight-through
                      Gumbel-softmax with its Jacobian averaged over `num_inner` Gumbel draws
                      conditioned on the one-hot code (same mean as "straight_through", less
                      variance; biased).
  "indecater"         IndeCateR (De Smet et al. 2023; `estimators.indecater`): per latent, the
                      exact sum over its C values with the others sampled (unbiased); costs
                      K·(L·C + 1) decoder evaluations per example.
  "vimco"             VIMCO (Mnih & Rezende 2016; `estimators.vimco`): the objective is *not* the
                      ELBO but the K-sample bound log (1/K) Σ_k p(x, z_k)/q(z_k|x) (K =
                      num_samples ≥ 2, the IWAE bound of the discrete model, z_k one-hot), with
                      log p(x, z) = log p(x|z) + log p(z) under the uniform prior; the gradient
                      (leave-one-out learning signals for the encoder, Σ_k w̃_k ∇ log p(x|z_k) for
                      the decoder) is unbiased for the expected K-sample bound.

ARM and DisARM (`estimators.arm`, `estimators.disarm`) are defined for Bernoulli latents only
and do not apply to this categorical model.

For "rebar" and "relax" the control variate's parameters φ (η, log λ and ψ) are trained to
minimise the variance of the estimator: the surrogate carries a zero-valued term whose gradient
in φ is ∇φ Σ ĝ², ĝ the estimate of the gradient with respect to the logits (Grathwohl et al.'s
single-sample variance gradient, `estimators.estimate_and_variance_gradient`). The variance of
the logits' gradient stands in for the variance of the encoder's parameters' gradient (a linear
map of it, J^T ĝ): one extra backward pass through the decoder instead of one through the
encoder as well. For the score function, REBAR, RELAX and IndeCateR the decoder's own
gradient is the plain Monte-Carlo one, E_q[∇ log p(x|z)] at the sampled codes; the learning
signal f = log p(x|z) should then be given with the decoder's parameters under stop_gradient
(`signal=`), so that REBAR/RELAX's relaxed control variate does not add its (zero-mean) gradient
to the decoder. The straight-through family ("st", "reinmax", "gumbel_rao") gives the decoder
the pathwise gradient at the one-hot codes, VIMCO the importance-weighted Σ_k w̃_k ∇ log p(x|z_k).

Evaluation: `discrete_elbo` (hard samples, a true lower bound on log p(x)) and
`importance_sampled_log_likelihood` (log (1/K) Σ_k p(x|z_k) p(z_k)/q(z_k|x), z_k ~ q(z|x)
one-hot, chunked over K).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from reparam import checks, estimators
from reparam.models import evaluate

Array = jax.Array
LogLikelihood = Callable[[Array], Array]
sg = jax.lax.stop_gradient

SF_BASELINES = ("batch_leave_one_out", "leave_one_out", None)


# ---------------------------------------------------------------- pieces
def temperature_schedule(
    step: Any,
    *,
    initial: float = 1.0,
    minimum: float = 0.5,
    rate: float = 1e-4,
    interval: int = 1000,
) -> Array:
    """Jang et al.'s annealing: τ = max(minimum, initial · exp(−rate · t)), t the global step
    rounded down to a multiple of `interval` (τ is updated every `interval` steps).

    `step` may be traced (the train step's global step, `reparam.train.make_train_epoch(...,
    with_step=True)`). Returns a float32 scalar.
    """
    where = "reparam.discrete_vae.temperature_schedule"
    if not (minimum > 0 and initial > 0):
        raise ValueError(
            f"{where}: `initial` and `minimum` temperatures must be > 0; got {initial}, {minimum}"
        )
    if rate < 0 or interval < 1:
        raise ValueError(
            f"{where}: `rate` must be >= 0 and `interval` >= 1; got {rate}, {interval}"
        )
    t = (jnp.asarray(step, jnp.int32) // interval * interval).astype(jnp.float32)
    return jnp.maximum(jnp.float32(minimum), jnp.float32(initial) * jnp.exp(-rate * t))


def categorical_kl_uniform(logits: Array) -> Array:
    """KL(Π_l Cat(softmax(logits_l)) ‖ uniform) = Σ_l Σ_c q log(C q): (..., L, C) -> (...)."""
    log_q = jax.nn.log_softmax(logits, axis=-1)
    q = jnp.exp(log_q)
    return jnp.sum(q * (log_q + math.log(logits.shape[-1])), axis=(-2, -1))


def _sample_one_hot(key: Array, logits: Array, sample_shape: tuple[int, ...] = ()) -> Array:
    """One-hot Cat(softmax(logits)) draws (Gumbel-max), shape sample_shape + logits.shape."""
    shape = (*sample_shape, *logits.shape)
    gumbel = jax.random.gumbel(key, shape, logits.dtype)
    index = jnp.argmax(logits + gumbel, axis=-1)
    return jax.nn.one_hot(index, logits.shape[-1], dtype=logits.dtype)


def _one_hot_log_prob(z: Array, logits: Array) -> Array:
    """log q(z) of one-hot z (..., L, C) under independent categoricals: per variable (..., L)."""
    return jnp.sum(z * jax.nn.log_softmax(logits, axis=-1), axis=-1)


# A family module for `estimators.score_function`: one-hot categorical, event axis last.
one_hot_categorical = SimpleNamespace(
    sample=lambda key, logits, sample_shape=(): _sample_one_hot(
        key,
        logits,
        checks.sample_shape("reparam.discrete_vae.one_hot_categorical.sample", sample_shape),
    ),
    log_prob=_one_hot_log_prob,
)


def rebar_params(eta: float = 1.0, temperature: float = 0.5) -> dict[str, Array]:
    """Initial REBAR control-variate parameters {"eta", "log_temperature"} (scalars)."""
    if temperature <= 0:
        raise ValueError(
            f"reparam.discrete_vae.rebar_params: `temperature` must be > 0; got {temperature}"
        )
    return {
        "eta": jnp.asarray(eta, jnp.float32),
        "log_temperature": jnp.asarray(math.log(temperature), jnp.float32),
    }


def _check_log_likelihood(where: str, values: Array, num_samples: int, batch: int) -> Array:
    if values.shape != (num_samples, batch):
        raise ValueError(
            f"{where}: `log_likelihood` must map codes of shape (K={num_samples}, B={batch}, L, C) "
            f"to shape (K, B) = {(num_samples, batch)}; got {values.shape}"
        )
    return values


# ---------------------------------------------------------------- the objective
def elbo(
    key: Array,
    logits: Array,
    log_likelihood: LogLikelihood,
    *,
    estimator: str,
    temperature: Any = None,
    num_samples: int = 1,
    signal: LogLikelihood | None = None,
    baseline: str | None = "batch_leave_one_out",
    cv_params: dict[str, Any] | None = None,
    residual: Callable[[Any, Array], Array] | None = None,
    num_inner: int = 10,
) -> tuple[Array, Array]:
    """The categorical-latent ELBO (for "vimco": the K-sample bound) with the gradient
    estimator `estimator`.

    Args:
      key: a PRNG key.
      logits: q(z|x)'s logits, (B, L, C).
      log_likelihood: z (K, B, L, C) -> log p(x|z) (K, B), differentiable in the decoder.
      estimator: one of ESTIMATORS (see the module docstring).
      temperature: τ > 0 of the relaxation (may be traced, e.g. `temperature_schedule(step)`);
        required by "gumbel_softmax", "straight_through", "st" (τ of its backward softmax),
        "reinmax" (τ of its π_D) and "gumbel_rao"; unused by the others.
      num_samples: K codes per example: ≥ 1 (the objective averages them), ≥ 2 for "vimco"
        (the K of its K-sample bound).
      signal: the learning signal of "score_function" / "rebar" / "relax" / "indecater", the
        same function as `log_likelihood` with the decoder's parameters under stop_gradient
        (default: `log_likelihood`).
      baseline: the score function's baseline, one of SF_BASELINES.
      cv_params: "rebar": {"eta", "log_temperature"} (`rebar_params`); "relax": the same plus
        {"residual": ψ}. Trained by the variance gradient carried in the surrogate.
      residual: "relax": (ψ, z (K, B, L, C)) -> (K, B), the learned part r_ψ of the control
        variate (it sees the continuous z = log q + Gumbel noise).
      num_inner: "gumbel_rao": M ≥ 1 conditional Gumbel draws per code (no extra decoder
        evaluations; Paulus et al. report M = 10, 100 and 1000).

    Returns:
      (surrogate, objective), each (B,). `objective` is the value under stop_gradient: the
      discrete ELBO at the K one-hot codes (their mean) for the hard-sample estimators, the
      relaxed objective (E[log p(x|relaxed z)] − KL) for "gumbel_softmax", and the K-sample
      bound log (1/K) Σ_k p(x, z_k)/q(z_k|x) for "vimco" (tighter than the ELBO, so not
      comparable with the others' objectives: compare runs on `discrete_elbo` or the NLL).
    """
    where = "reparam.discrete_vae.elbo"
    checks.choice(where, "estimator", estimator, ESTIMATORS)
    key = checks.key(key, where)
    logits = checks.numeric(where, "logits", logits)
    if logits.ndim != 3:
        raise ValueError(
            f"{where}: `logits` must have shape (B, L, C) (batch, latents, categories); got "
            f"{logits.shape}"
        )
    batch = logits.shape[0]

    def checked(fn: LogLikelihood) -> LogLikelihood:
        return lambda z: _check_log_likelihood(where, fn(z), z.shape[0], batch)

    problem = _Problem(
        where=where,
        logits=logits,
        kl=categorical_kl_uniform(logits),
        f=checked(log_likelihood),
        signal=checked(signal if signal is not None else log_likelihood),
        num_samples=checks.count(where, "num_samples", num_samples),
        temperature=temperature,
        baseline=baseline,
        cv_params=cv_params,
        residual=residual,
        num_inner=checks.count(where, "num_inner", num_inner),
    )
    return _ELBOS[estimator](key, problem)


class _Problem(NamedTuple):
    """`elbo`'s arguments, checked, for the per-estimator functions of `_ELBOS`."""

    where: str
    logits: Array  # (B, L, C)
    kl: Array  # (B,), KL(q ‖ uniform)
    f: LogLikelihood  # log p(x|z), differentiable in the decoder
    signal: LogLikelihood  # the learning signal (decoder under stop_gradient)
    num_samples: int
    temperature: Any
    baseline: str | None
    cv_params: dict[str, Any] | None
    residual: Callable[[Any, Array], Array] | None
    num_inner: int


def _temperature(problem: _Problem, estimator: str) -> Array:
    """The checked temperature of a relaxation-based estimator, in the logits' dtype."""
    if problem.temperature is None:
        raise ValueError(f"{problem.where}: estimator {estimator!r} needs a `temperature` > 0")
    checks.positive(problem.where, "temperature", problem.temperature)
    return jnp.asarray(problem.temperature, problem.logits.dtype)


def _relaxed(key: Array, problem: _Problem, *, straight_through: bool) -> tuple[Array, Array]:
    """ "gumbel_softmax" / "straight_through": the pathwise estimator through the relaxation."""
    temperature = _temperature(
        problem, "straight_through" if straight_through else "gumbel_softmax"
    )
    reconstruction = estimators.gumbel_softmax(
        key,
        problem.f,
        problem.logits,
        temperature,
        problem.num_samples,
        distribution="categorical",
        straight_through=straight_through,
    )
    surrogate = reconstruction - problem.kl
    return surrogate, sg(surrogate)


def _straight_through_family(key: Array, problem: _Problem, *, kind: str) -> tuple[Array, Array]:
    """ "st", "reinmax", "gumbel_rao": the decoder sees one-hot codes z ~ q (the value is the
    discrete ELBO), the encoder's gradient is the estimator's backward pass of ∂f/∂z."""
    temperature = _temperature(problem, kind)
    logits, f, num_samples = problem.logits, problem.f, problem.num_samples
    if kind == "gumbel_rao":
        reconstruction = estimators.gumbel_rao(
            key, f, logits, temperature, num_samples, num_inner=problem.num_inner
        )
    else:
        estimate = estimators.straight_through if kind == "st" else estimators.reinmax
        reconstruction = estimate(key, f, logits, num_samples, temperature=temperature)
    surrogate = reconstruction - problem.kl
    return surrogate, sg(surrogate)


def _indecater(key: Array, problem: _Problem) -> tuple[Array, Array]:
    """ "indecater": the encoder's gradient by IndeCateR on the learning signal, the decoder's
    by the plain Monte-Carlo mean at independent codes (both unbiased)."""
    encoder_key, decoder_key = jax.random.split(key)
    encoder_term = estimators.indecater(
        encoder_key, problem.signal, problem.logits, problem.num_samples
    )
    z = _sample_one_hot(decoder_key, sg(problem.logits), (problem.num_samples,))
    return _hard_sample_elbo(problem, z, encoder_term - sg(encoder_term))


def _vimco(key: Array, problem: _Problem) -> tuple[Array, Array]:
    """ "vimco": the K-sample bound log (1/K) Σ_k p(x, z_k)/q(z_k|x) under the uniform prior."""
    if problem.num_samples < 2:
        raise ValueError(
            f"{problem.where}: estimator 'vimco' needs `num_samples` >= 2 (its leave-one-out "
            f"baselines average the other K − 1 samples); got {problem.num_samples}"
        )
    latents, categories = problem.logits.shape[-2:]
    log_prior = -latents * math.log(categories)
    bound = estimators.vimco(
        key,
        lambda z: problem.f(z) + log_prior,
        problem.logits,
        problem.num_samples,
        distribution="categorical",
    )
    return bound, sg(bound)


def _hard_sample_elbo(problem: _Problem, z: Array, encoder_term: Array) -> tuple[Array, Array]:
    """The discrete ELBO at the one-hot codes z an unbiased estimator drew, its encoder gradient
    carried by the zero-valued `encoder_term`, the decoder's by the plain Monte-Carlo mean."""
    reconstruction = jnp.mean(problem.f(sg(z)), axis=0)
    objective = sg(reconstruction) - problem.kl
    # value: the discrete ELBO; gradient: decoder (Monte Carlo) + encoder (estimator) + KL.
    surrogate = objective + (reconstruction - sg(reconstruction)) + encoder_term
    return surrogate, sg(objective)


def _score_function(key: Array, problem: _Problem) -> tuple[Array, Array]:
    """ "score_function": REINFORCE on the one-hot codes with `problem.baseline`."""
    where, logits, num_samples = problem.where, problem.logits, problem.num_samples
    baseline = checks.choice(where, "baseline", problem.baseline, SF_BASELINES)
    batch = logits.shape[0]
    z = one_hot_categorical.sample(key, logits, (num_samples,))
    values = sg(problem.signal(z))  # the same draw score_function makes with this key
    if baseline == "batch_leave_one_out":
        if batch < 2:
            raise ValueError(f"{where}: the batch leave-one-out baseline needs B >= 2")
        per_example = jnp.mean(values, axis=0)
        sf_baseline: Any = (jnp.sum(per_example) - per_example) / (batch - 1)
    else:
        sf_baseline = baseline
    # clone: the same bits drawn twice on purpose (for the key-reuse checker).
    encoder_term = estimators.score_function(
        jax.random.clone(key),
        problem.signal,
        one_hot_categorical,
        (logits,),
        num_samples,
        baseline=sf_baseline,
    )
    return _hard_sample_elbo(problem, z, encoder_term - sg(encoder_term))


def _relaxed_control_variate(
    key: Array, problem: _Problem, *, learned_residual: bool
) -> tuple[Array, Array]:
    """ "rebar" (c = η f(softmax(z/λ))) and "relax" (the same plus a learned r_ψ(z)), with the
    control variate's parameters trained by the variance gradient."""
    where, cv_params, residual = problem.where, problem.cv_params, problem.residual
    estimator = "relax" if learned_residual else "rebar"
    if cv_params is None:
        raise ValueError(f"{where}: estimator {estimator!r} needs `cv_params` (rebar_params)")
    if learned_residual and (residual is None or "residual" not in cv_params):
        raise ValueError(
            f"{where}: 'relax' needs `residual` and cv_params['residual'] (its parameters)"
        )

    def control(phi: dict[str, Any], z: Array) -> Array:
        relaxed = jax.nn.softmax(z / jnp.exp(phi["log_temperature"]), axis=-1)
        value = phi["eta"] * problem.signal(relaxed)
        if learned_residual:
            value = value + residual(phi["residual"], z)
        return value

    def surrogate_in(theta: Array, phi: dict[str, Any]) -> Array:
        return estimators.relax(
            key,
            problem.signal,
            theta,
            problem.num_samples,
            lambda z: control(phi, z),
            distribution="categorical",
        )

    log_probs = jax.nn.log_softmax(problem.logits, axis=-1)
    # ĝ (B, L, C), the estimate for the log-probabilities, and ∇φ Σ ĝ² (its variance gradient).
    estimate, cv_grad = estimators.estimate_and_variance_gradient(
        surrogate_in, sg(log_probs), cv_params
    )
    encoder_term = jnp.sum(sg(estimate) * (log_probs - sg(log_probs)), axis=(-2, -1))
    # Zero-valued, gradient −∇φ Σ ĝ² in φ for every example: minimising −mean(surrogate) takes a
    # step down the variance.
    variance_term = sum(
        jnp.sum(sg(g) * (p - sg(p)))
        for g, p in zip(
            jax.tree_util.tree_leaves(cv_grad), jax.tree_util.tree_leaves(cv_params), strict=True
        )
    )
    # The draw relax made with this key (its b is the argmax of the same Gumbel-perturbed
    # logits): the decoder's term must see the same codes.
    z = _relax_codes(jax.random.clone(key), log_probs, problem.num_samples)
    return _hard_sample_elbo(problem, z, encoder_term - variance_term)


# One function per estimator: (key, problem) -> (surrogate, objective).
_ELBOS: dict[str, Callable[[Array, _Problem], tuple[Array, Array]]] = {
    "gumbel_softmax": functools.partial(_relaxed, straight_through=False),
    "straight_through": functools.partial(_relaxed, straight_through=True),
    "score_function": _score_function,
    "rebar": functools.partial(_relaxed_control_variate, learned_residual=False),
    "relax": functools.partial(_relaxed_control_variate, learned_residual=True),
    "st": functools.partial(_straight_through_family, kind="st"),
    "reinmax": functools.partial(_straight_through_family, kind="reinmax"),
    "gumbel_rao": functools.partial(_straight_through_family, kind="gumbel_rao"),
    "indecater": _indecater,
    "vimco": _vimco,
}
ESTIMATORS = tuple(_ELBOS)


def _relax_codes(key: Array, logits: Array, num_samples: int) -> Array:
    """The one-hot codes `estimators.relax(key, ..., distribution="categorical")` draws."""
    _, b, _, _ = estimators.relax_draws(key, logits, num_samples, distribution="categorical")
    return b


# ---------------------------------------------------------------- evaluation
def discrete_elbo(
    key: Array, logits: Array, log_likelihood: LogLikelihood, num_samples: int = 1
) -> Array:
    """The ELBO with one-hot codes: mean_k log p(x|z_k) − KL(q ‖ uniform), z_k ~ q(z|x): (B,).

    An unbiased estimate of a true lower bound on log p(x) (the bound Jang et al. 2017 report).
    """
    z = _sample_one_hot(key, logits, (num_samples,))
    return jnp.mean(log_likelihood(z), axis=0) - categorical_kl_uniform(logits)


def one_hot_proposal(key: Array, logits: Array, num: int) -> tuple[Array, Any, Array]:
    """n one-hot codes z ~ q(z|x) with the uniform log p(z) (a scalar) and log q(z|x) (n, B):
    the categorical VAE's proposal for `reparam.evaluate.importance_sampled_log_likelihood`."""
    latents, categories = logits.shape[-2:]
    z = _sample_one_hot(key, logits, (num,))
    log_q = jnp.sum(_one_hot_log_prob(z, logits), axis=-1)
    return z, -latents * math.log(categories), log_q


def log_px_function(
    encode: Callable[[Array], Array],
    log_likelihood: Callable[[Array, Array], Array],
    *,
    num_samples: int,
    chunk_size: int,
    dtype=jnp.float32,
) -> Callable[[Array, Array], Array]:
    """Jitted batch_log_px(key, x (B, D)) -> (B,) importance-sampled log p(x) estimates:
    `reparam.evaluate.log_px_function` with one-hot codes z_k ~ q(z|x) (`one_hot_proposal`)."""
    return evaluate.log_px_function(
        encode,
        log_likelihood,
        num_samples=num_samples,
        chunk_size=chunk_size,
        dtype=dtype,
        proposal=one_hot_proposal,
    )


def importance_sampled_log_likelihood(
    key: Array,
    data: np.ndarray,
    encode: Callable[[Array], Array],
    log_likelihood: Callable[[Array, Array], Array],
    *,
    num_samples: int = 1000,
    chunk_size: int = 250,
    batch_size: int = 100,
    dtype=jnp.float32,
) -> np.ndarray:
    """log p(x) ≈ log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x), z_k ~ q(z|x) one-hot, per example.

    A stochastic lower bound on log p(x) that tightens as K grows (the K-sample IWAE bound of
    the discrete model); K = 1 is the discrete ELBO with a Monte-Carlo KL. It is
    `reparam.evaluate.importance_sampled_log_likelihood` with `one_hot_proposal`.

    Args:
      key: a PRNG key; batch i uses fold_in(key, i).
      data: (N, D), any dtype (cast per batch).
      encode: x (B, D) -> logits (B, L, C).
      log_likelihood: (x (B, D), z (K, B, L, C)) -> (K, B).
      num_samples, chunk_size, batch_size: K, samples per chunk, examples per call.

    Returns:
      float64 numpy array (N,) of log-likelihood estimates (nats).
    """
    return evaluate.importance_sampled_log_likelihood(
        key,
        data,
        encode,
        log_likelihood,
        num_samples=num_samples,
        chunk_size=chunk_size,
        batch_size=batch_size,
        dtype=dtype,
        proposal=one_hot_proposal,
        where="reparam.discrete_vae.importance_sampled_log_likelihood",
    )


__all__ = [
    "ESTIMATORS",
    "SF_BASELINES",
    "categorical_kl_uniform",
    "discrete_elbo",
    "elbo",
    "importance_sampled_log_likelihood",
    "log_px_function",
    "one_hot_categorical",
    "one_hot_proposal",
    "rebar_params",
    "temperature_schedule",
]
