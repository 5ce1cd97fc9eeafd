"""The Bernoulli-latent VAE's ELBO with a choice of encoder-gradient estimator, its evaluation,
and the variance of an estimator's gradient.

The model of the REBAR / RELAX / ARM / DisARM benchmark (Tucker et al. 2017; Grathwohl et al.
2018; Yin & Zhou 2019; Dong, Mnih & Tucker 2020): D independent Bernoulli latents b ∈ {0, 1}^D,
q(b|x) = Π_d Bernoulli(b_d; σ(logits_d)), a factorized prior p(b) = Π_d Bernoulli(σ(a_d)) whose
logits a are learned (google-research/disarm, binary/experiment_launcher_singlelayer.py:
`prior_logit = tf.Variable(tf.zeros([200]))`, trained by SGD), and a decoder p(x|b). Per example

    ELBO(x) = E_q[f(b)],      f(b) = log p(x|b) + log p(b) − log q(b|x).

`elbo` takes the encoder's logits, the decoder as a callable and the prior's logits:

  logits                          (B, D), differentiable in the encoder's parameters
  log_likelihood(b) -> (K, B)     log p(x|b) for codes b (K, B, D), differentiable in the
                                  decoder; rebar/relax's control variate and the straight-through
                                  family also call it with real-valued b in [0, 1]
  prior_logits                    a, broadcastable to (B, D), differentiable

and returns `(surrogate, objective)`, both (B,): train by minimising `-surrogate.mean()`.
Estimators of the encoder's gradient (`ESTIMATORS`), all from `reparam.estimators`:

Unbiased. The encoder's gradient is the estimator applied to the learning signal f with every
parameter under stop_gradient (as in google-research/disarm, where f is the whole one-sample
ELBO, its −log q term included); the decoder and the prior get the plain Monte-Carlo gradient
mean_k ∇[log p(x|b_k) + log p(b_k)] at the codes the estimator evaluated f at. K is
`num_samples`:

  "disarm"          Dong et al. (2020): K antithetic pairs, 2K evaluations of f.
  "arm"             Yin & Zhou (2019): K antithetic pairs, 2K evaluations of f.
  "reinforce_loo"   REINFORCE with the leave-one-out baseline over K ≥ 2 independent samples
                    (with K = 2, the baseline of the DisARM paper: the same two evaluations).
  "rebar"           Tucker et al. (2017): K samples, c(z) = η · f(σ(z/λ)).
  "relax"           Grathwohl et al. (2018): c(z) = η · (f(σ(z/λ)) + r_ψ(z)), as in
                    google-research/disarm (`get_relax_control_variate`: the learned residual is
                    scaled by η too).
  "vimco"           Mnih & Rezende (2016): the K-sample bound log mean_k exp f(b_k) (K ≥ 2) and
                    its gradient for encoder, decoder and prior; its objective is that bound,
                    not the ELBO.

For "rebar" and "relax" the control variate's parameters φ (η, log λ and ψ) are trained to
minimise the estimator's variance: the surrogate carries a zero-valued term whose gradient in φ
is ∇φ Σ ĝ², ĝ the estimate for the logits (`estimators.estimate_and_variance_gradient`; the same
stand-in for the encoder's parameters' gradient as `reparam.models.discrete_vae`). The relaxed
f of the control variate sees the decoder, prior and logits under stop_gradient.

Biased (pathwise through a surrogate sample; f is differentiated at the hard code, for the
decoder and prior as well): "straight_through" (Bengio et al. 2013), "reinmax" (Liu et al.
2023), "gumbel_rao" (Paulus et al. 2021). They estimate E_q[log p(x|b) + log p(b)] and add the
entropy H(q) in closed form, so only the part that needs an estimator is biased.

Evaluation: `discrete_elbo` (one-sample ELBO, a stochastic lower bound on log p(x)),
`importance_sampled_log_likelihood` (the K-sample bound with codes b_k ~ q(b|x)), and
`gradient_variance` (the variance of any stochastic gradient over independent keys).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from reparam import checks, estimators
from reparam.estimators import diagnostics
from reparam.models import evaluate

Array = jax.Array
LogLikelihood = Callable[[Array], Array]
sg = jax.lax.stop_gradient

WHERE = "reparam.models.bernoulli_vae"
UNBIASED = ("disarm", "arm", "reinforce_loo", "rebar", "relax", "vimco")
BIASED = ("straight_through", "reinmax", "gumbel_rao")
# Estimators whose K counts independent samples that the leave-one-out baselines average over.
AT_LEAST_TWO = ("reinforce_loo", "vimco")


# ---------------------------------------------------------------- pieces
def bernoulli_log_prob(b: Array, logits: Array) -> Array:
    """log Bernoulli(b; σ(logits)) per latent, b·log σ(l) + (1 − b)·log σ(−l): broadcast shape.

    Also defined (and used by the relaxed control variates) for real b in [0, 1]."""
    return b * jax.nn.log_sigmoid(logits) + (1 - b) * jax.nn.log_sigmoid(-logits)


def entropy(logits: Array) -> Array:
    """H(q) = −Σ_d [σ(l) log σ(l) + σ(−l) log σ(−l)], independent Bernoullis: (..., D) -> (...)."""
    terms = jax.nn.sigmoid(logits) * jax.nn.log_sigmoid(logits)
    terms = terms + jax.nn.sigmoid(-logits) * jax.nn.log_sigmoid(-logits)
    return -jnp.sum(terms, axis=-1)


def _sample(key: Array, logits: Array, sample_shape: tuple[int, ...] = ()) -> Array:
    shape = (*sample_shape, *logits.shape)
    return jax.random.bernoulli(key, jax.nn.sigmoid(logits), shape).astype(logits.dtype)


# A family module for `estimators.score_function`: independent Bernoullis, b in {0, 1}.
bernoulli = SimpleNamespace(
    sample=lambda key, logits, sample_shape=(): _sample(
        key, logits, checks.sample_shape(f"{WHERE}.bernoulli.sample", sample_shape)
    ),
    log_prob=bernoulli_log_prob,
)


def rebar_params(eta: float = 1.0, temperature: float = 0.1) -> dict[str, Array]:
    """Initial REBAR / RELAX control-variate parameters {"eta", "log_temperature"} (scalars);
    the defaults are google-research/disarm's (scaling 1, temperature 0.1). RELAX adds
    {"residual": ψ}."""
    if not temperature > 0:
        raise ValueError(f"{WHERE}.rebar_params: `temperature` must be > 0; got {temperature}")
    return {
        "eta": jnp.asarray(eta, jnp.float32),
        "log_temperature": jnp.asarray(np.log(temperature), jnp.float32),
    }


class _Problem(NamedTuple):
    """`elbo`'s arguments, checked, for the per-estimator functions of `_ELBOS`."""

    logits: Array  # (B, D)
    prior_logits: Array  # broadcastable to (B, D)
    log_joint: LogLikelihood  # b -> log p(x|b) + log p(b), differentiable in decoder and prior
    signal: LogLikelihood  # b -> f(b), every parameter under stop_gradient
    num_samples: int
    temperature: Any
    num_inner: int
    cv_params: dict[str, Any] | None
    residual: Callable[[Any, Array], Array] | None


# ---------------------------------------------------------------- the objective
def elbo(
    key: Array,
    logits: Array,
    log_likelihood: LogLikelihood,
    prior_logits: Any,
    *,
    estimator: str,
    num_samples: int = 1,
    signal: LogLikelihood | None = None,
    temperature: Any = 1.0,
    num_inner: int = 10,
    cv_params: dict[str, Any] | None = None,
    residual: Callable[[Any, Array], Array] | None = None,
) -> tuple[Array, Array]:
    """The Bernoulli-latent ELBO with the encoder-gradient estimator `estimator`.

    Args:
      key: a PRNG key.
      logits: q(b|x)'s logits, (B, D).
      log_likelihood: b (K, B, D) -> log p(x|b) (K, B), differentiable in the decoder.
      prior_logits: the prior's logits, broadcastable to (B, D) (e.g. (D,)).
      estimator: one of ESTIMATORS (see the module docstring).
      num_samples: K ≥ 1: antithetic pairs for "disarm"/"arm", samples otherwise (≥ 2 for
        "reinforce_loo" and "vimco").
      signal: `log_likelihood` with the decoder's parameters under stop_gradient (default:
        `log_likelihood`); the learning signal of the unbiased estimators and of rebar/relax's
        control variate, which must not add gradients to the decoder.
      temperature: τ > 0 of "straight_through", "reinmax" and "gumbel_rao".
      num_inner: "gumbel_rao"'s conditional noise draws per sample.
      cv_params: "rebar": {"eta", "log_temperature"} (`rebar_params`); "relax": the same plus
        {"residual": ψ}. Trained by the variance gradient carried in the surrogate.
      residual: "relax": (ψ, z (K, B, D)) -> (K, B), the learned part r_ψ(z) of the control
        variate (z = logits + logistic noise, continuous).

    Returns:
      (surrogate, objective), each (B,). `objective` (under stop_gradient) is an unbiased
      estimate of the ELBO, mean_k f(b_k) over the codes drawn (plus the closed-form entropy for
      the biased estimators), and for "vimco" the K-sample bound; `surrogate` has the same value.
    """
    where = f"{WHERE}.elbo"
    checks.choice(where, "estimator", estimator, ESTIMATORS)
    key = checks.key(key, where)
    logits = checks.numeric(where, "logits", logits)
    if logits.ndim != 2:
        raise ValueError(
            f"{where}: `logits` must have shape (B, D) (batch, latents); got {logits.shape}"
        )
    prior_logits = checks.numeric(where, "prior_logits", prior_logits)
    try:
        jnp.broadcast_shapes(prior_logits.shape, logits.shape)
    except ValueError:
        raise ValueError(
            f"{where}: `prior_logits` must broadcast to the logits' shape {logits.shape}; got "
            f"{prior_logits.shape}"
        ) from None
    log_likelihood = checks.function(where, "log_likelihood", log_likelihood)
    signal = checks.function(where, "signal", signal if signal is not None else log_likelihood)
    minimum = 2 if estimator in AT_LEAST_TWO else 1
    why = " (the leave-one-out baseline averages the other K − 1 samples)" if minimum > 1 else ""
    num_samples = checks.count(where, "num_samples", num_samples, minimum, why)
    batch = logits.shape[0]

    def checked(fn: LogLikelihood) -> LogLikelihood:
        def call(b: Array) -> Array:
            values = jnp.asarray(fn(b))
            if values.shape != b.shape[:2]:
                raise ValueError(
                    f"{where}: `log_likelihood` must map codes of shape (K, B={batch}, D) to "
                    f"shape (K, B) = {b.shape[:2]}; got {values.shape}"
                )
            return values

        return call

    live, stopped = checked(log_likelihood), checked(signal)

    def log_joint(b: Array) -> Array:
        return live(b) + jnp.sum(bernoulli_log_prob(b, prior_logits), axis=-1)

    def learning_signal(b: Array) -> Array:
        log_prior = jnp.sum(bernoulli_log_prob(b, sg(prior_logits)), axis=-1)
        return stopped(b) + log_prior - jnp.sum(bernoulli_log_prob(b, sg(logits)), axis=-1)

    problem = _Problem(
        logits=logits,
        prior_logits=prior_logits,
        log_joint=log_joint,
        signal=learning_signal,
        num_samples=num_samples,
        temperature=temperature,
        num_inner=checks.count(where, "num_inner", num_inner),
        cv_params=cv_params,
        residual=residual,
    )
    return _ELBOS[estimator](key, problem)


def _monte_carlo(problem: _Problem, b: Array) -> Array:
    """mean_k f(b_k) with the gradient mean_k ∇[log p(x|b_k) + log p(b_k)] for the decoder and
    the prior (log q under stop_gradient): (B,)."""
    log_q = jnp.sum(bernoulli_log_prob(b, sg(problem.logits)), axis=-1)
    return jnp.mean(problem.log_joint(sg(b)) - log_q, axis=0)


def _with_decoder_term(estimate: Array, decoder_term: Array) -> tuple[Array, Array]:
    """The estimator's surrogate (value mean f, encoder gradient) plus the zero-valued decoder
    and prior term."""
    surrogate = estimate + (decoder_term - sg(decoder_term))
    return surrogate, sg(estimate)


def _evaluated(key: Array, problem: _Problem, estimator: Callable) -> tuple[Array, Array]:
    """ "disarm", "arm", "reinforce_loo": the estimator with f the learning signal; the decoder
    and prior get the Monte-Carlo gradient at the codes it evaluated f at, from the same values.

    f's values are recorded as the estimator calls it: they carry the decoder's and prior's
    gradient, which the estimator itself stops (these estimators never differentiate f). The
    estimators call f directly, not under a transformation, so the recorded arrays belong to
    this trace (a change there would raise jax's UnexpectedTracerError, not pass silently)."""
    values: list[Array] = []

    def f(b: Array) -> Array:
        log_q = jnp.sum(bernoulli_log_prob(b, sg(problem.logits)), axis=-1)
        values.append(problem.log_joint(b) - log_q)
        return values[-1]

    estimate = estimator(key, f, problem.logits, problem.num_samples)
    # Every evaluation once: its value is the estimator's value, mean f.
    return _with_decoder_term(estimate, jnp.mean(jnp.concatenate(values), axis=0))


def _reinforce_loo(key: Array, f: LogLikelihood, logits: Array, num_samples: int) -> Array:
    return estimators.score_function(
        key, f, bernoulli, (logits,), num_samples, baseline="leave_one_out"
    )


def _relaxed_control_variate(
    key: Array, problem: _Problem, *, learned_residual: bool
) -> tuple[Array, Array]:
    """ "rebar" and "relax", with the control variate's parameters trained by the variance
    gradient."""
    where, cv_params, residual = f"{WHERE}.elbo", problem.cv_params, problem.residual
    name = "relax" if learned_residual else "rebar"
    if cv_params is None or not {"eta", "log_temperature"} <= set(cv_params):
        raise ValueError(f"{where}: estimator {name!r} needs `cv_params` (rebar_params)")
    if learned_residual and (residual is None or "residual" not in cv_params):
        raise ValueError(
            f"{where}: 'relax' needs `residual` and cv_params['residual'] (its parameters)"
        )

    def control(phi: dict[str, Any], z: Array) -> Array:
        value = problem.signal(jax.nn.sigmoid(z / jnp.exp(phi["log_temperature"])))
        if learned_residual:
            value = value + residual(phi["residual"], z)
        return phi["eta"] * value

    def surrogate_in(theta: Array, phi: dict[str, Any]) -> Array:
        return estimators.relax(
            key, problem.signal, theta, problem.num_samples, lambda z: control(phi, z)
        )

    logits = problem.logits
    # ĝ (B, D), the estimate for the logits, and ∇φ Σ ĝ² (its variance gradient).
    estimate, cv_grad = estimators.estimate_and_variance_gradient(
        surrogate_in, sg(logits), cv_params
    )
    encoder_term = jnp.sum(sg(estimate) * (logits - sg(logits)), axis=-1)
    # Zero-valued, gradient −∇φ Σ ĝ² in φ for every example: minimising −mean(surrogate) takes a
    # step down the variance.
    variance_term = sum(
        jnp.sum(sg(g) * (p - sg(p)))
        for g, p in zip(
            jax.tree_util.tree_leaves(cv_grad), jax.tree_util.tree_leaves(cv_params), strict=True
        )
    )
    # The codes relax drew with this key (clone: the same bits on purpose, for the key checker).
    _, b, _, _ = estimators.relax_draws(jax.random.clone(key), sg(logits), problem.num_samples)
    decoder_term = _monte_carlo(problem, b)
    return decoder_term + (encoder_term - variance_term), sg(decoder_term)


def _vimco(key: Array, problem: _Problem) -> tuple[Array, Array]:
    """ "vimco": the K-sample bound with log w_k = log p(x, b_k) − log q(b_k|x)."""
    bound = estimators.vimco(key, problem.log_joint, problem.logits, problem.num_samples)
    return bound, sg(bound)


def _pathwise(key: Array, problem: _Problem, *, kind: str) -> tuple[Array, Array]:
    """The straight-through family on E_q[log p(x|b) + log p(b)], plus the closed-form H(q)."""
    where = f"{WHERE}.elbo"
    checks.positive(where, "temperature", problem.temperature)
    logits, temperature = problem.logits, problem.temperature
    if kind == "gumbel_rao":
        estimate = estimators.gumbel_rao(
            key,
            problem.log_joint,
            logits,
            temperature,
            problem.num_samples,
            num_inner=problem.num_inner,
            distribution="bernoulli",
        )
    else:
        estimate = getattr(estimators, kind)(
            key,
            problem.log_joint,
            logits,
            problem.num_samples,
            temperature=temperature,
            distribution="bernoulli",
        )
    surrogate = estimate + entropy(logits)
    return surrogate, sg(surrogate)


# One function per estimator: (key, problem) -> (surrogate, objective).
_ELBOS: dict[str, Callable[[Array, _Problem], tuple[Array, Array]]] = {
    "disarm": functools.partial(_evaluated, estimator=estimators.disarm),
    "arm": functools.partial(_evaluated, estimator=estimators.arm),
    "reinforce_loo": functools.partial(_evaluated, estimator=_reinforce_loo),
    "rebar": functools.partial(_relaxed_control_variate, learned_residual=False),
    "relax": functools.partial(_relaxed_control_variate, learned_residual=True),
    "vimco": _vimco,
    "straight_through": functools.partial(_pathwise, kind="straight_through"),
    "reinmax": functools.partial(_pathwise, kind="reinmax"),
    "gumbel_rao": functools.partial(_pathwise, kind="gumbel_rao"),
}
ESTIMATORS = tuple(_ELBOS)


# ---------------------------------------------------------------- evaluation
def discrete_elbo(
    key: Array,
    logits: Array,
    log_likelihood: LogLikelihood,
    prior_logits: Any,
    num_samples: int = 1,
) -> Array:
    """mean_k f(b_k), b_k ~ q(b|x): the one-sample (K = 1) ELBO estimate, (B,).

    An unbiased estimate of the ELBO, a lower bound on log p(x) (what google-research/disarm
    reports as the training ELBO, with K = 1)."""
    b = _sample(key, logits, (num_samples,))
    log_prior = jnp.sum(bernoulli_log_prob(b, prior_logits), axis=-1)
    log_q = jnp.sum(bernoulli_log_prob(b, logits), axis=-1)
    return jnp.mean(log_likelihood(b) + log_prior - log_q, axis=0)


def bernoulli_proposal(key: Array, posterior: tuple[Array, Array], num: int):
    """n codes b ~ q(b|x) with log p(b) and log q(b|x), both (n, B): the Bernoulli VAE's proposal
    for `reparam.models.evaluate`. `posterior` is (logits (B, D), prior logits (broadcastable))."""
    logits, prior_logits = posterior
    b = _sample(key, logits, (num,))
    log_prior = jnp.sum(bernoulli_log_prob(b, prior_logits), axis=-1)
    return b, log_prior, jnp.sum(bernoulli_log_prob(b, logits), axis=-1)


def importance_sampled_log_likelihood(
    key: Array,
    data: np.ndarray,
    encode: Callable[[Array], tuple[Array, Array]],
    log_likelihood: Callable[[Array, Array], Array],
    *,
    num_samples: int = 1000,
    chunk_size: int = 250,
    batch_size: int = 100,
    dtype=jnp.float32,
) -> np.ndarray:
    """log p(x) ≈ log (1/K) Σ_k p(x|b_k) p(b_k) / q(b_k|x), b_k ~ q(b|x), per example.

    The K-sample bound (a stochastic lower bound on log p(x), tighter as K grows); K = 1 is the
    one-sample ELBO. `reparam.models.evaluate.importance_sampled_log_likelihood` with
    `bernoulli_proposal`.

    Args:
      key: a PRNG key; batch i uses fold_in(key, i).
      data: (N, D_x), any dtype (cast per batch).
      encode: x (B, D_x) -> (logits (B, D), prior logits broadcastable to (B, D)).
      log_likelihood: (x (B, D_x), b (K, B, D)) -> (K, B).
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
        proposal=bernoulli_proposal,
        where=f"{WHERE}.importance_sampled_log_likelihood",
    )


def gradient_variance(
    key: Array,
    loss: Callable[[Array, Any], Array],
    params: Any,
    num_estimates: int,
    *,
    batch_size: int | None = None,
) -> dict[str, Array]:
    """The variance of the stochastic gradient ∇θ loss(key, θ) at θ = params over
    `num_estimates` independent keys (`reparam.estimators.diagnostics.gradient_statistics`).

    For a VAE: `loss(key, encoder_params)` the batch-mean −ELBO surrogate of one fixed minibatch
    with the other parameters held, so that the spread is the estimator's alone (no minibatch
    sampling). Jittable (jit it once with `loss` closed over, to measure repeatedly).

    Args:
      key: a PRNG key; estimate r uses the r-th key of `jax.random.split(key, num_estimates)`.
      loss: (key, params) -> a scalar.
      params: θ, a pytree of float arrays.
      num_estimates: N ≥ 2.
      batch_size: estimates vmapped at once (None: all N).

    Returns:
      {"mean": the per-element variance averaged over every element of θ (what
      google-research/disarm logs as `var/grad`, `compute_grad_variance`: the mean over the
      encoder's parameters), "total": its sum over the elements, "elements": their number}.
    """
    stats = diagnostics.gradient_statistics(key, loss, params, num_estimates, batch_size=batch_size)
    leaves = jax.tree_util.tree_leaves(stats.variance)
    total = sum(jnp.sum(v) for v in leaves)
    elements = sum(v.size for v in leaves)
    return {"mean": total / elements, "total": total, "elements": jnp.asarray(elements)}


__all__ = [
    "BIASED",
    "ESTIMATORS",
    "UNBIASED",
    "bernoulli",
    "bernoulli_log_prob",
    "bernoulli_proposal",
    "discrete_elbo",
    "elbo",
    "entropy",
    "gradient_variance",
    "importance_sampled_log_likelihood",
    "rebar_params",
]
