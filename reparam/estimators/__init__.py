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
                      al. 2017) or DReG (Tucker et al. 2018) encoder gradient; built on
                      `importance_weighted`, the one IWAE surrogate of the library.
  gumbel_softmax      relaxed (Concrete) pathwise gradient, optionally straight-through.
  rebar, relax        unbiased estimators for Bernoulli / categorical latents with relaxed
                      control variates (Tucker et al. 2017; Grathwohl et al. 2018).
  arm, disarm         antithetic unbiased estimators for Bernoulli latents (Yin & Zhou 2019;
                      Dong, Mnih & Tucker 2020).
  vimco               the multi-sample bound with leave-one-out baselines (Mnih & Rezende 2016).
  indecater           Rao-Blackwellized per-latent score function (De Smet et al. 2023).
  straight_through,   biased estimators for discrete latents: straight-through (Bengio et al.
  reinmax, gumbel_rao 2013), ReinMax (Liu et al. 2023), Gumbel-Rao (Paulus et al. 2021).

Modules, one per kind of estimator: `pathwise`, `score_function` (with its baselines and the
variance gradient of learned control variates), `measure_valued`, `importance` (the IWAE bound
and its standard / STL / DReG surrogates), `relaxed` (Gumbel-softmax, straight-through, REBAR,
RELAX), `discrete` (ARM, DisARM, VIMCO, IndeCateR, straight-through, ReinMax, Gumbel-Rao) and
`diagnostics` (gradient mean, variance, SNR). Their public names are re-exported here,
so `reparam.estimators.pathwise` is the function (as it always was); the module of the same name
is `sys.modules["reparam.estimators.pathwise"]` (likewise `score_function`, `measure_valued`),
and `from reparam.estimators.pathwise import ...` works as usual.
"""

from reparam.estimators.discrete import (
    arm,
    disarm,
    gumbel_rao,
    indecater,
    reinmax,
    straight_through,
    vimco,
)
from reparam.estimators.importance import (
    GRADIENTS as IWAE_GRADIENTS,
)
from reparam.estimators.importance import (
    importance_weighted,
    iwae_surrogate,
    log_mean_exp,
)
from reparam.estimators.measure_valued import measure_valued, measure_valued_normal_grad
from reparam.estimators.pathwise import pathwise
from reparam.estimators.relaxed import DISCRETE, gumbel_softmax, rebar, relax, relax_draws
from reparam.estimators.score_function import (
    Baseline,
    ema,
    estimate_and_variance_gradient,
    score_function,
)

__all__ = [
    "DISCRETE",
    "IWAE_GRADIENTS",
    "Baseline",
    "arm",
    "disarm",
    "ema",
    "estimate_and_variance_gradient",
    "gumbel_rao",
    "gumbel_softmax",
    "importance_weighted",
    "indecater",
    "iwae_surrogate",
    "log_mean_exp",
    "measure_valued",
    "measure_valued_normal_grad",
    "pathwise",
    "rebar",
    "reinmax",
    "relax",
    "relax_draws",
    "score_function",
    "straight_through",
    "vimco",
]
