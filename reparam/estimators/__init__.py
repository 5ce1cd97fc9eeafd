"""Gradient estimators for ∇θ E_q(z;θ)[f(z)] and for the IWAE bound.

One shape for all (DiCE-style, Foerster et al. 2018): every estimator returns a *surrogate*
array whose **value** is the Monte-Carlo estimate of the objective and whose **`jax.grad`** is
the gradient estimate. Compose them like ordinary losses:

    >>> def objective(params):
    ...     return estimators.score_function(
    ...         key, f, reparam.normal, params, 16, baseline="leave_one_out").sum()
    >>> grad_loc, grad_scale = jax.grad(objective)((loc, scale))  # the gradient estimate
    >>> objective((loc, scale))  # its value: the Monte-Carlo estimate of Σ E[f(z)]

The value-preserving trick is `sg(v) + (s − sg(s))`: `s` carries the gradient, `sg(v)` the value
(`sg` = `jax.lax.stop_gradient`). Estimators whose gradient is not naturally an autodiff
derivative (measure-valued derivatives) also come as a function returning the estimate directly,
and their surrogate is `sg(value) + Σ sg(ĝ)·(θ − sg(θ))`.

Conventions shared by the estimators of E_q[f(z)]:
  * `family` is a family module of the core (`reparam.normal`, ...), `params` its parameters
    in PARAMS order; samples z have shape `(K, *batch, *event)` with K = `num_samples`.
  * `f(z)` returns per-sample values of shape `(K, *out)`, where `out` is a prefix of the batch
    shape: `()` for one scalar objective, `batch` for independent problems, `batch[:1]` for
    per-example objectives with a trailing latent axis (a VAE's `(B, d)` latents, `(B,)` values).
    The score of a value is then the log-probability summed over the remaining batch axes.
  * the surrogate has shape `out` (the mean over the K samples); differentiate its sum.

Estimators:
  pathwise            reparameterization through `family.sample` (any family of the core).
  score_function      REINFORCE with a baseline: none, a constant / moving average (an array you
                      pass in; `ema` updates it), "leave_one_out" over K ≥ 2 samples, or a
                      learned control variate `c(z)` (a callable; with the reparameterized
                      correction ∇θ c(z(θ)) this is LAX, Grathwohl et al. 2018).
  measure_valued      Gaussian measure-valued derivatives (Mohamed et al. 2020, §6), with
                      `measure_valued_normal_grad` returning (∇loc, ∇scale) directly.
  iwae_surrogate      the IWAE bound of a diagonal-normal q, with the standard, STL (Roeder et
                      al. 2017) or DReG (Tucker et al. 2018) encoder gradient.
  gumbel_softmax      relaxed (Concrete) pathwise gradient, optionally straight-through.
  rebar, relax        unbiased estimators for Bernoulli / categorical latents with relaxed
                      control variates (Tucker et al. 2017; Grathwohl et al. 2018).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from reparam import checks
from reparam.families import normal

Array = jax.Array
sg = jax.lax.stop_gradient

IWAE_GRADIENTS = ("standard", "stl", "dreg")


# ---------------------------------------------------------------- argument checks
def _callable(where: str, name: str, fn: Any) -> Callable:
    if not callable(fn):
        raise TypeError(f"{where}: `{name}` must be callable, got {type(fn).__name__} {fn!r}")
    return fn


def _num_samples(where: str, num_samples: Any, minimum: int = 1, why: str = "") -> int:
    if isinstance(num_samples, bool) or not isinstance(num_samples, numbers.Integral):
        raise TypeError(
            f"{where}: `num_samples` must be a Python int, got {type(num_samples).__name__} "
            f"{num_samples!r}"
        )
    if num_samples < minimum:
        raise ValueError(f"{where}: `num_samples` must be >= {minimum}{why}; got {num_samples}")
    return int(num_samples)


def _choice(where: str, name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{where}: `{name}` must be one of {choices}; got {value!r}")
    return value


def _per_sample(where: str, name: str, values: Any, num_samples: int) -> Array:
    """Check that `values` (f's or log_joint's output) has a leading axis of K samples."""
    values = jnp.asarray(values)
    if values.ndim < 1 or values.shape[0] != num_samples:
        raise ValueError(
            f"{where}: `{name}` must return one value per sample, an array of shape "
            f"(num_samples={num_samples}, ...); got shape {values.shape}"
        )
    return values


# ---------------------------------------------------------------- shared pieces
def _family(where: str, family: Any, *needs: str) -> ModuleType:
    missing = [name for name in needs if not callable(getattr(family, name, None))]
    if missing:
        raise TypeError(
            f"{where}: `family` must be a family module such as reparam.normal with "
            f"{', '.join(needs)}; {family!r} lacks {', '.join(missing)}"
        )
    return family


def _params_tuple(where: str, params: Any) -> tuple:
    if not isinstance(params, tuple | list):
        raise TypeError(
            f"{where}: `params` must be a tuple of the family's parameters in PARAMS order, "
            f"e.g. (loc, scale); got {type(params).__name__}"
        )
    return tuple(params)


def _evaluate(where: str, f: Callable, z: Array, num_samples: int) -> Array:
    return _per_sample(where, "f", f(z), num_samples)


def _reduce_to(where: str, log_prob: Array, out_shape: tuple[int, ...]) -> Array:
    """Sum (K, *batch) log-probabilities over the batch axes that f's values do not keep."""
    batch = log_prob.shape[1:]
    if batch[: len(out_shape)] != tuple(out_shape):
        raise ValueError(
            f"{where}: `f` must return shape (num_samples, *out) with `out` a prefix of the "
            f"batch shape {batch} (one value per leading batch element); got out={out_shape}"
        )
    return jnp.sum(log_prob, axis=tuple(range(1 + len(out_shape), log_prob.ndim)))


def _dice(value: Array, carrier: Array) -> Array:
    """Value of `value`, gradient of `carrier` (a zero-valued term may be passed as carrier)."""
    return sg(value) + (carrier - sg(carrier))


def _score_term(advantage: Array, log_prob: Array) -> Array:
    """Zero-valued term with gradient advantage · ∇ log p (the advantage is not differentiated
    with respect to the distribution's parameters, but keeps its own, e.g. a control variate's)."""
    return advantage * (log_prob - sg(log_prob))


# ---------------------------------------------------------------- pathwise
def pathwise(
    key: Array,
    f: Callable[[Array], Array],
    family: ModuleType,
    params: tuple,
    num_samples: int,
    **sample_kwargs: Any,
) -> Array:
    """Pathwise (reparameterization) estimator: mean_k f(z_k), z = family.sample(key, *params).

    Works for every family of the core: explicit transforms and implicit reparameterization
    alike give ∂z/∂θ. Biased only where `family.sample` is (straight-through relaxations).

    Args:
      key: a PRNG key.
      f: z of shape (K, *batch, *event) -> values of shape (K, *out).
      family: a family module (reparam.normal, reparam.gamma, ...).
      params: the family's parameters in PARAMS order.
      num_samples: K ≥ 1.
      **sample_kwargs: passed to `family.sample` (e.g. straight_through=True).

    Returns:
      The surrogate, shape `out`: value mean_k f(z_k), gradient the pathwise estimate.
    """
    where = "reparam.estimators.pathwise"
    key = checks.key(key, where)
    f = _callable(where, "f", f)
    family = _family(where, family, "sample")
    params = _params_tuple(where, params)
    num_samples = _num_samples(where, num_samples)
    z = family.sample(key, *params, sample_shape=(num_samples,), **sample_kwargs)
    return jnp.mean(_evaluate(where, f, z, num_samples), axis=0)


# ---------------------------------------------------------------- score function
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
    f = _callable(where, "f", f)
    family = _family(where, family, "sample", "log_prob")
    params = _params_tuple(where, params)
    leave_one_out = isinstance(baseline, str)
    if leave_one_out:
        _choice(where, "baseline", baseline, ("leave_one_out",))
    num_samples = _num_samples(
        where,
        num_samples,
        2 if leave_one_out else 1,
        " for the leave-one-out baseline (it averages the other K − 1 samples)"
        if leave_one_out
        else "",
    )
    z_path = family.sample(key, *params, sample_shape=(num_samples,))
    z = sg(z_path)
    values = sg(_evaluate(where, f, z, num_samples))
    log_prob = _reduce_to(where, family.log_prob(z, *params), values.shape[1:])
    value = jnp.mean(values, axis=0)
    if baseline is None:
        carrier = _score_term(values, log_prob)
    elif leave_one_out:
        others = (jnp.sum(values, axis=0) - values) / (num_samples - 1)
        carrier = _score_term(values - others, log_prob)
    elif callable(baseline):
        control = _per_sample(where, "baseline", baseline(z), num_samples)
        # (f − c(z̄))·∇log q + ∇θ c(z(θ)); c(z(θ)) − c(z̄) is zero in value and in c's
        # parameters, so only the reparameterized correction reaches θ.
        carrier = _score_term(values - control, log_prob) + (baseline(z_path) - control)
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
        carrier = _score_term(values - sg(constant), log_prob)
    return _dice(value, jnp.mean(carrier, axis=0))


# ---------------------------------------------------------------- measure-valued (normal)
def measure_valued_normal_grad(
    key: Array,
    f: Callable[[Array], Array],
    loc: Any,
    scale: Any,
    num_samples: int,
    *,
    coupled: bool = True,
) -> tuple[Array, Array, Array]:
    """Measure-valued derivative of E_N(loc, scale²)[f(x)] (Mohamed et al. 2020, §6, Table 1).

    ∂/∂loc N(x; μ, σ²) = (σ√(2π))⁻¹ [Weibull⁺ − Weibull⁻], the two parts being μ ± σW with
    W ~ Weibull(√2, 2) (a Rayleigh variable); ∂/∂σ N = σ⁻¹ [M(μ, σ) − N(μ, σ²)], M the
    double-sided Maxwell μ + σD with D = ±χ₃. With `coupled` the positive and negative parts
    share their randomness: the same W for μ ± σW, and D = sign(ε₁)‖ε‖ against the normal ε₁,
    ε ~ N(0, I₃) (both couplings keep the marginals exact). Needs only evaluations of f, never
    its derivative.

    Args:
      key: a PRNG key.
      f: elementwise, x of shape (K, *batch) -> (K, *batch); each element is its own
        univariate problem (MVD perturbs one coordinate at a time).
      loc, scale: shape broadcastable to `batch`; scale > 0.
      num_samples: K ≥ 1 (each costs four evaluations of f).
      coupled: share randomness between positive and negative parts (lower variance).

    Returns:
      (grad_loc, grad_scale, value), each of shape `batch`; value = mean_k f(μ + σ ε₁).
    """
    where = "reparam.estimators.measure_valued_normal_grad"
    key = checks.key(key, where)
    f = _callable(where, "f", f)
    num_samples = _num_samples(where, num_samples)
    (loc, scale), batch = checks.broadcast(where, loc=loc, scale=scale)
    checks.positive(where, "scale", scale)
    shape = (num_samples, *batch)
    keys = jax.random.split(key, 4)
    weibull = jax.random.weibull_min(keys[0], math.sqrt(2.0), 2.0, shape, loc.dtype)
    eps = jax.random.normal(keys[1], (3, *shape), loc.dtype)
    maxwell = jnp.sign(eps[0]) * jnp.sqrt(jnp.sum(eps**2, axis=0))
    if coupled:
        weibull_minus, gaussian = weibull, eps[0]
    else:
        weibull_minus = jax.random.weibull_min(keys[2], math.sqrt(2.0), 2.0, shape, loc.dtype)
        gaussian = jax.random.normal(keys[3], shape, loc.dtype)

    def evaluate(x: Array) -> Array:
        values = _evaluate(where, f, sg(x), num_samples)
        if values.shape != shape:
            raise ValueError(
                f"{where}: `f` must act elementwise, mapping x of shape {shape} to the same "
                f"shape; got {values.shape}"
            )
        return values

    loc, scale = sg(loc), sg(scale)
    plus, minus = evaluate(loc + scale * weibull), evaluate(loc - scale * weibull_minus)
    maxwell_values, normal_values = (
        evaluate(loc + scale * maxwell),
        evaluate(loc + scale * gaussian),
    )
    grad_loc = jnp.mean(plus - minus, axis=0) / (scale * math.sqrt(2 * math.pi))
    grad_scale = jnp.mean(maxwell_values - normal_values, axis=0) / scale
    return grad_loc, grad_scale, jnp.mean(normal_values, axis=0)


def measure_valued(
    key: Array,
    f: Callable[[Array], Array],
    loc: Any,
    scale: Any,
    num_samples: int,
    *,
    coupled: bool = True,
) -> Array:
    """Surrogate of `measure_valued_normal_grad`: value mean f, gradient (ĝ_loc, ĝ_scale).

    Built as sg(value) + Σ sg(ĝ_θ)·(θ − sg(θ)), so `jax.grad` w.r.t. loc and scale returns the
    measure-valued estimate (summed over broadcasting, like any gradient). Shape `batch`.
    """
    grad_loc, grad_scale, value = measure_valued_normal_grad(
        key, f, loc, scale, num_samples, coupled=coupled
    )
    loc, scale = jnp.asarray(loc, value.dtype), jnp.asarray(scale, value.dtype)
    carrier = sg(grad_loc) * (loc - sg(loc)) + sg(grad_scale) * (scale - sg(scale))
    return _dice(value, carrier)


# ---------------------------------------------------------------- discrete latents
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
    _choice(where, "distribution", distribution, DISCRETE)
    if distribution == "categorical":
        from reparam.families import relaxed_categorical as family
    else:
        from reparam.families import relaxed_bernoulli as family
    key = checks.key(key, where)
    f = _callable(where, "f", f)
    num_samples = _num_samples(where, num_samples)
    z = family.sample(
        key, logits, temperature, sample_shape=(num_samples,), straight_through=straight_through
    )
    return jnp.mean(_evaluate(where, f, z, num_samples), axis=0)


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
    _choice(where, "distribution", distribution, DISCRETE)
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
    f = _callable(where, "f", f)
    control_variate = _callable(where, "control_variate", control_variate)
    num_samples = _num_samples(where, num_samples)
    _choice(where, "distribution", distribution, DISCRETE)
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
    values = sg(_evaluate(where, f, b, num_samples))
    log_prob = _reduce_to(where, log_prob, values.shape[1:])

    def control(x: Array) -> Array:
        return _per_sample(where, "control_variate", control_variate(x), num_samples)

    c_tilde = control(sg(z_tilde))
    # c(z(θ)) − c(sg z) is zero in value and in c's parameters; only ∇θ c(z) survives.
    carrier = (
        _score_term(values - c_tilde, log_prob)
        + (control(z) - control(sg(z)))
        - (control(z_tilde) - c_tilde)
    )
    return _dice(jnp.mean(values, axis=0), jnp.mean(carrier, axis=0))


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
    _choice(where, "distribution", distribution, DISCRETE)
    f = _callable(where, "f", f)
    checks.positive(where, "temperature", temperature)

    def relaxed(z: Array) -> Array:
        if distribution == "categorical":
            return jax.nn.softmax(z / temperature, axis=-1)
        return jax.nn.sigmoid(z / temperature)

    return relax(
        key, f, logits, num_samples, lambda z: eta * f(relaxed(z)), distribution=distribution
    )


# ---------------------------------------------------------------- learning control variates
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


# ---------------------------------------------------------------- IWAE: standard, STL, DReG
def _diag_normal_log_prob(z: Array, loc: Array, scale: Array) -> Array:
    return jnp.sum(normal.log_prob(z, loc, scale), axis=-1)


def iwae_surrogate(
    key: Array,
    log_joint: Callable[[Array], Array],
    loc: Any,
    scale: Any,
    num_samples: int,
    *,
    gradient: str = "standard",
) -> tuple[Array, Array]:
    """The IWAE bound of q = N(loc, diag(scale²)) and a surrogate for its gradient.

    With z_k = loc + scale·ε_k (k < K, drawn with `reparam.normal`) and
    log w_k = log_joint(z_k) − log q(z_k), the bound is logsumexp_k(log w_k) − log K
    (Burda et al. 2016); K = 1 is the ELBO with a Monte-Carlo KL. The surrogate's value equals
    the bound and its `jax.grad` (w.r.t. loc, scale, and whatever `log_joint` closes over) is:

      "standard": ∇ bound = Σ_k w̃_k ∇ log w_k, w̃ = softmax_k(log w), the usual IWAE gradient.
      "stl":      sticking the landing (Roeder et al. 2017): log q is evaluated with
                  stop_gradient(loc, scale), dropping the score term Σ w̃_k ∇θ log q(z_k; θ) of
                  zero expectation; only the path through z remains. Zero variance at the exact
                  posterior (log w constant in z).
      "dreg":     doubly reparameterized (Tucker et al. 2018): decoder path Σ_k w̃_k ∇ log_joint
                  at z_k held fixed, encoder path Σ_k w̃_k² (∂ log w_k/∂z_k)(∂z_k/∂θ), with
                  ∂ log w/∂z taken at fixed (loc, scale). Same expectation as "standard", an SNR
                  that does not decay with K. Computed from two plain passes of `log_joint` over
                  the K samples (the weights, without gradient; then the surrogate), so a
                  `log_joint` chunked with `reparam.train.chunked_over_samples` keeps one chunk's
                  activations here too: XLA's temporaries for the IWAE gradient of the
                  784-200-200-50 model, K = 2000, chunk 100, batch 10, float32, are 33.4 MB
                  (standard 33.4 MB, STL 29.4 MB; 267 MB unchunked; `python -m
                  benchmarks.scaling --gradient-temporaries 2000 10 100`), where the earlier
                  VJP form kept all K activations (325 MB chunked). At K = 5000, chunk 500,
                  batch 20 a few more latent-sized (K, B, d) arrays stay: 276 MB against
                  standard's 216 MB. One extra forward pass of `log_joint` is the price.

    Args:
      key: a PRNG key.
      log_joint: z of shape (K, *batch, d) -> log p(x, z) of shape (K, *batch); a closure over
        the decoder parameters and the data. Each z_k of each example must only enter its own
        value (DReG takes ∂ log w/∂z of the sum).
      loc, scale: q's parameters, shape (*batch, d) (broadcastable to each other); scale > 0.
      num_samples: K ≥ 1, a Python int.
      gradient: "standard", "stl" or "dreg".

    Returns:
      (surrogate, bound), both of shape `batch`. Differentiate the sum (or mean) of `surrogate`;
      `bound` is its value under stop_gradient, for logging (its gradient is zero).
    """
    where = "reparam.estimators.iwae_surrogate"
    key = checks.key(key, where)
    log_joint = _callable(where, "log_joint", log_joint)
    num_samples = _num_samples(where, num_samples)
    gradient = _choice(where, "gradient", gradient, IWAE_GRADIENTS)
    (loc, scale), shape = checks.broadcast(where, loc=loc, scale=scale)
    if len(shape) < 1:
        raise ValueError(
            f"{where}: `loc` and `scale` must have a trailing latent axis, shape (..., d); got "
            f"`loc` {loc.shape} and `scale` {scale.shape}"
        )
    checks.positive(where, "scale", scale)
    eps = normal.noise(key, (num_samples, *shape), loc.dtype)
    z = normal.transform(eps, loc, scale)

    def log_weights(z: Array, loc: Array, scale: Array) -> Array:
        log_p = _per_sample(where, "log_joint", log_joint(z), num_samples)
        if log_p.shape != z.shape[:-1]:
            raise ValueError(
                f"{where}: `log_joint` must map z of shape {z.shape} to one log-density per "
                f"sample and example, shape {z.shape[:-1]}; got shape {log_p.shape}"
            )
        return log_p - _diag_normal_log_prob(z, loc, scale)

    if gradient == "dreg":
        # Two passes over the K samples, each a plain map z -> log w (so a `log_joint` chunked
        # by `reparam.train.chunked_over_samples` keeps one chunk's activations in both; a VJP
        # taken inside the forward pass would keep all K). Pass 1, without gradient: the
        # normalized weights w̃. Pass 2 at z' = sg(z) + w̃·(z − sg(z)), equal to z in value but
        # with the path to (loc, scale) scaled by w̃_k: the gradient of Σ_k w̃_k log w_k(z'_k),
        # log q at fixed (loc, scale), is Σ_k w̃_k ∇ log_joint(z_k) for the decoder and
        # Σ_k w̃_k² (∂ log w_k/∂z_k)(∂z_k/∂θ) for the encoder: DReG's two terms.
        weights = jax.nn.softmax(sg(log_weights(sg(z), sg(loc), sg(scale))), axis=0)
        z_scaled = sg(z) + weights[..., None] * (z - sg(z))
        log_w = log_weights(z_scaled, sg(loc), sg(scale))
        gradient_carrier = jnp.sum(weights * log_w, axis=0)
    else:
        q_loc, q_scale = (sg(loc), sg(scale)) if gradient == "stl" else (loc, scale)
        log_w = log_weights(z, q_loc, q_scale)
        weights = jax.nn.softmax(sg(log_w), axis=0)
        gradient_carrier = jnp.sum(weights * log_w, axis=0)
    bound = logsumexp(log_w, axis=0) - math.log(num_samples)
    surrogate = sg(bound) + (gradient_carrier - sg(gradient_carrier))
    return surrogate, sg(bound)
