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

For "rebar" and "relax" the control variate's parameters φ (η, log λ and ψ) are trained to
minimise the variance of the estimator: the surrogate carries a zero-valued term whose gradient
in φ is ∇φ Σ ĝ², ĝ the estimate of the gradient with respect to the logits (Grathwohl et al.'s
single-sample variance gradient, `estimators.estimate_and_variance_gradient`). The variance of
the logits' gradient stands in for the variance of the encoder's parameters' gradient (a linear
map of it, J^T ĝ): one extra backward pass through the decoder instead of one through the
encoder as well. For the three unbiased estimators the decoder's own gradient is the plain
Monte-Carlo one, E_q[∇ log p(x|z)] at the sampled codes; the learning signal f = log p(x|z)
should then be given with the decoder's parameters under stop_gradient (`signal=`), so that
REBAR/RELAX's relaxed control variate does not add its (zero-mean) gradient to the decoder.

Evaluation: `discrete_elbo` (hard samples, a true lower bound on log p(x)) and
`importance_sampled_log_likelihood` (log (1/K) Σ_k p(x|z_k) p(z_k)/q(z_k|x), z_k ~ q(z|x)
one-hot, chunked over K).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from reparam import checks, estimators

Array = jax.Array
LogLikelihood = Callable[[Array], Array]
sg = jax.lax.stop_gradient

ESTIMATORS = ("gumbel_softmax", "straight_through", "score_function", "rebar", "relax")
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
    sample=lambda key, logits, sample_shape=(): _sample_one_hot(key, logits, tuple(sample_shape)),
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


def _per_sample(where: str, values: Array, num_samples: int, batch: int) -> Array:
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
) -> tuple[Array, Array]:
    """The categorical-latent ELBO with the gradient estimator `estimator`.

    Args:
      key: a PRNG key.
      logits: q(z|x)'s logits, (B, L, C).
      log_likelihood: z (K, B, L, C) -> log p(x|z) (K, B), differentiable in the decoder.
      estimator: one of ESTIMATORS (see the module docstring).
      temperature: τ > 0 of the relaxation (may be traced, e.g. `temperature_schedule(step)`);
        required by "gumbel_softmax" and "straight_through", unused by the others.
      num_samples: K ≥ 1 codes per example (the objective averages them).
      signal: the learning signal of "score_function" / "rebar" / "relax", the same function as
        `log_likelihood` with the decoder's parameters under stop_gradient (default:
        `log_likelihood`).
      baseline: the score function's baseline, one of SF_BASELINES.
      cv_params: "rebar": {"eta", "log_temperature"} (`rebar_params`); "relax": the same plus
        {"residual": ψ}. Trained by the variance gradient carried in the surrogate.
      residual: "relax": (ψ, z (K, B, L, C)) -> (K, B), the learned part r_ψ of the control
        variate (it sees the continuous z = log q + Gumbel noise).

    Returns:
      (surrogate, objective), each (B,). `objective` is the value under stop_gradient: the
      one-sample discrete ELBO for the hard-sample estimators, the relaxed objective
      (E[log p(x|relaxed z)] − KL) for "gumbel_softmax".
    """
    where = "reparam.discrete_vae.elbo"
    if estimator not in ESTIMATORS:
        raise ValueError(f"{where}: `estimator` must be one of {ESTIMATORS}; got {estimator!r}")
    key = checks.key(key, where)
    logits = checks.numeric(where, "logits", logits)
    if logits.ndim != 3:
        raise ValueError(
            f"{where}: `logits` must have shape (B, L, C) (batch, latents, categories); got "
            f"{logits.shape}"
        )
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"{where}: `num_samples` must be an int >= 1; got {num_samples!r}")
    batch = logits.shape[0]
    kl = categorical_kl_uniform(logits)

    def checked(fn: LogLikelihood) -> LogLikelihood:
        return lambda z: _per_sample(where, fn(z), z.shape[0], batch)

    f = checked(log_likelihood)
    f_signal = checked(signal if signal is not None else log_likelihood)

    if estimator in ("gumbel_softmax", "straight_through"):
        if temperature is None:
            raise ValueError(f"{where}: estimator {estimator!r} needs a `temperature` > 0")
        checks.positive(where, "temperature", temperature)
        reconstruction = estimators.gumbel_softmax(
            key,
            f,
            logits,
            jnp.asarray(temperature, logits.dtype),
            num_samples,
            distribution="categorical",
            straight_through=estimator == "straight_through",
        )
        surrogate = reconstruction - kl
        return surrogate, sg(surrogate)

    if estimator == "score_function":
        if baseline not in SF_BASELINES:
            raise ValueError(f"{where}: `baseline` must be one of {SF_BASELINES}; got {baseline!r}")
        z = one_hot_categorical.sample(key, logits, (num_samples,))
        values = sg(f_signal(z))  # the same draw score_function makes with this key
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
            f_signal,
            one_hot_categorical,
            (logits,),
            num_samples,
            baseline=sf_baseline,
        )
        encoder_term = encoder_term - sg(encoder_term)
    else:  # rebar, relax
        if cv_params is None:
            raise ValueError(f"{where}: estimator {estimator!r} needs `cv_params` (rebar_params)")
        if estimator == "relax" and (residual is None or "residual" not in cv_params):
            raise ValueError(
                f"{where}: 'relax' needs `residual` and cv_params['residual'] (its parameters)"
            )

        def control(phi: dict[str, Any], z: Array) -> Array:
            relaxed = jax.nn.softmax(z / jnp.exp(phi["log_temperature"]), axis=-1)
            value = phi["eta"] * f_signal(relaxed)
            if estimator == "relax":
                value = value + residual(phi["residual"], z)
            return value

        def surrogate_in(theta: Array, phi: dict[str, Any]) -> Array:
            return estimators.relax(
                key,
                f_signal,
                theta,
                num_samples,
                lambda z: control(phi, z),
                distribution="categorical",
            )

        log_probs = jax.nn.log_softmax(logits, axis=-1)
        # ĝ (B, L, C), the estimate for the log-probabilities, and ∇φ Σ ĝ² (its variance
        # gradient).
        estimate, cv_grad = estimators.estimate_and_variance_gradient(
            surrogate_in, sg(log_probs), cv_params
        )
        encoder_term = jnp.sum(sg(estimate) * (log_probs - sg(log_probs)), axis=(-2, -1))
        # Zero-valued, gradient −∇φ Σ ĝ² in φ for every example: minimising −mean(surrogate)
        # takes a step down the variance.
        variance_term = sum(
            jnp.sum(sg(g) * (p - sg(p)))
            for g, p in zip(
                jax.tree_util.tree_leaves(cv_grad),
                jax.tree_util.tree_leaves(cv_params),
                strict=True,
            )
        )
        encoder_term = encoder_term - variance_term
        # The draw relax made with this key (its b is the argmax of the same Gumbel-perturbed
        # logits): the decoder's term below must see the same codes.
        z = _relax_codes(jax.random.clone(key), log_probs, num_samples)
    decoder_values = f(sg(z))
    reconstruction = jnp.mean(decoder_values, axis=0)
    objective = sg(reconstruction) - kl
    # value: the discrete ELBO; gradient: decoder (Monte Carlo) + encoder (estimator) + KL.
    surrogate = objective + (reconstruction - sg(reconstruction)) + encoder_term
    return surrogate, sg(objective)


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


def log_px_function(
    encode: Callable[[Array], Array],
    log_likelihood: Callable[[Array, Array], Array],
    *,
    num_samples: int,
    chunk_size: int,
    dtype=jnp.float32,
) -> Callable[[Array, Array], Array]:
    """Jitted batch_log_px(key, x (B, D)) -> (B,) importance-sampled log p(x) estimates.

    z_k ~ q(z|x) one-hot, K = num_samples drawn chunk_size at a time in a `lax.scan` (chunk j
    uses fold_in(key, j)) and combined by logsumexp: memory grows with the chunk, not with K.
    """
    chunk = min(chunk_size, num_samples)
    num_chunks = math.ceil(num_samples / chunk)

    @jax.jit
    def batch_log_px(batch_key: Array, x: Array) -> Array:
        x = x.astype(dtype)
        logits = encode(x)
        latents, categories = logits.shape[-2:]
        log_prior = -latents * math.log(categories)

        def one_chunk(_, j):
            z = _sample_one_hot(jax.random.fold_in(batch_key, j), logits, (chunk,))
            log_q = jnp.sum(_one_hot_log_prob(z, logits), axis=-1)
            log_w = log_likelihood(x, z) + log_prior - log_q
            index = j * chunk + jnp.arange(chunk)[:, None]  # mask an overrunning last chunk
            return None, logsumexp(jnp.where(index < num_samples, log_w, -jnp.inf), axis=0)

        _, per_chunk = jax.lax.scan(one_chunk, None, jnp.arange(num_chunks))
        return logsumexp(per_chunk, axis=0) - math.log(num_samples)

    return batch_log_px


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
    the discrete model); K = 1 is the discrete ELBO with a Monte-Carlo KL.

    Args:
      key: a PRNG key; batch i uses fold_in(key, i).
      data: (N, D), any dtype (cast per batch).
      encode: x (B, D) -> logits (B, L, C).
      log_likelihood: (x (B, D), z (K, B, L, C)) -> (K, B).
      num_samples, chunk_size, batch_size: K, samples per chunk, examples per call.

    Returns:
      float64 numpy array (N,) of log-likelihood estimates (nats).
    """
    if num_samples < 1 or chunk_size < 1 or batch_size < 1:
        raise ValueError(
            "reparam.discrete_vae.importance_sampled_log_likelihood: `num_samples`, "
            f"`chunk_size` and `batch_size` must be >= 1; got {num_samples}, {chunk_size}, "
            f"{batch_size}"
        )
    fn = log_px_function(
        encode, log_likelihood, num_samples=num_samples, chunk_size=chunk_size, dtype=dtype
    )
    out = []
    for start in range(0, len(data), batch_size):
        batch = np.asarray(data[start : start + batch_size])
        valid = len(batch)
        if valid < batch_size:  # one shape, one compilation
            batch = np.concatenate([batch, np.repeat(batch[-1:], batch_size - valid, axis=0)])
        values = fn(jax.random.fold_in(key, start // batch_size), jnp.asarray(batch))
        out.append(np.asarray(values, np.float64)[:valid])
    return np.concatenate(out)
