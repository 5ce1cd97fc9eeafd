"""Bayesian dense layers: mean-field Gaussian weights trained by variational inference.

`BayesianDense` holds a factorized posterior q(W) = Π N(w; μ, σ²) over its kernel and bias with
σ = softplus(ρ), and a prior p(W) that is either Gaussian N(0, s²) or Blundell et al.'s (2015)
scale mixture π N(0, s₁²) + (1 − π) N(0, s₂²). Its forward pass `layer(key, x)` returns the
output *and* the layer's KL(q ‖ p) term, so a model is a pure function of (params, key, x) and
the ELBO is `log-likelihood − Σ KL` with nothing hidden in Flax collections.

Three Monte-Carlo estimators of the expected log-likelihood's gradient, selected by `estimator`
(all unbiased for the same expectation; they differ in variance and cost):

* "bbb" — Bayes by Backprop (Blundell et al. 2015): one weight sample W = μ + σ ⊙ ε per call,
  shared by every example of the minibatch. Cheap, but the examples' gradients are correlated
  through the shared ε, so the minibatch average does not shrink the weight-noise variance.
* "local" — local reparameterization (Kingma, Salimans & Welling 2015): for a Gaussian
  posterior the pre-activation b = x W is Gaussian with mean x μ and variance x² σ², so b is
  sampled directly, independently per example (and per output unit). Same cost as a
  deterministic layer (two matmuls), and the per-example noise is independent.
* "flipout" (Wen et al. 2018): one shared perturbation ΔW = σ ⊙ ε, decorrelated across examples
  by random signs, y = x μ + ((x ⊙ s_in) ΔW) ⊙ s_out. Each example's weights μ + ΔW ⊙ s_out s_inᵀ
  are marginally distributed as q (q is symmetric about μ), and two examples' perturbations are
  uncorrelated. Works for any symmetric posterior, unlike "local".

KL term ("kl_estimator"): "closed" (Gaussian prior only) sums `reparam.kl.normal_normal` over
the weights; "mc" is the single-sample estimate log q(W) − log p(W) at a posterior draw — the
draw of the forward pass for "bbb" and "flipout" (Blundell et al.'s estimator), an extra draw
for "local" (which samples no weights). "auto" picks "closed" where it exists.

Shapes: x (..., in_features) -> y (..., features); every leading axis of x is an example axis
for the per-example noise of "local" and "flipout". The KL is a scalar.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from reparam import checks
from reparam.families import kl as kl_lib
from reparam.families import normal
from reparam.nn.activations import activation

Array = jax.Array

ESTIMATORS = ("bbb", "local", "flipout")
PRIORS = ("gaussian", "mixture")
KL_ESTIMATORS = ("auto", "closed", "mc")


def softplus_inverse(x: float) -> float:
    """ρ with softplus(ρ) = x (x > 0): the raw parameter that starts σ at x."""
    if not x > 0:
        raise ValueError(f"reparam.nn.softplus_inverse: `x` must be > 0; got {x!r}")
    return x + math.log(-math.expm1(-x))


def mixture_log_prob(w: Array, scales: Sequence[float], weight: float) -> Array:
    """log[π N(w; 0, s₁²) + (1 − π) N(w; 0, s₂²)] elementwise, by logsumexp (no underflow)."""
    w = jnp.asarray(w)
    # Parameters in w's dtype: Python floats alone would make normal.log_prob's dtype float64.
    zero = jnp.zeros((), w.dtype)
    s1, s2 = (jnp.asarray(s, w.dtype) for s in scales)
    return jnp.logaddexp(
        math.log(weight) + normal.log_prob(w, zero, s1),
        math.log1p(-weight) + normal.log_prob(w, zero, s2),
    )


class BayesianDense(nn.Module):
    """Dense layer with a mean-field Gaussian posterior over kernel and bias.

    Attributes:
      features: output width.
      estimator: "bbb", "local" or "flipout" (see the module docstring).
      prior: "gaussian" (N(0, prior_scale²)) or "mixture" (scale mixture, Blundell et al.).
      prior_scale: s of the Gaussian prior.
      mixture_scales: (s₁, s₂) of the scale mixture; Blundell et al. search −log s₁ ∈ {0, 1, 2}
        and −log s₂ ∈ {6, 7, 8}.
      mixture_weight: π, the weight of the wide component s₁.
      init_scale: σ of the posterior at initialization (ρ = softplus⁻¹(init_scale)); small, so
        training starts near a deterministic net.
      kl_estimator: "auto", "closed" (Gaussian prior only) or "mc".
      use_bias: whether the layer has a (Bayesian) bias.
      kernel_init: initializer of the kernel's posterior mean μ.

    Parameters (in the "params" collection): kernel_loc, kernel_rho (in, features) and, with
    `use_bias`, bias_loc, bias_rho (features,); σ = softplus(ρ).
    """

    features: int
    estimator: str = "local"
    prior: str = "gaussian"
    prior_scale: float = 1.0
    mixture_scales: tuple[float, float] = (1.0, math.exp(-6.0))
    mixture_weight: float = 0.5
    init_scale: float = 1e-3
    kl_estimator: str = "auto"
    use_bias: bool = True
    kernel_init: Callable = nn.initializers.lecun_normal()

    def _validate(self) -> str:
        checks.choice("reparam.nn.BayesianDense", "estimator", self.estimator, ESTIMATORS)
        checks.choice("reparam.nn.BayesianDense", "prior", self.prior, PRIORS)
        kl_estimator = checks.choice(
            "reparam.nn.BayesianDense", "kl_estimator", self.kl_estimator, KL_ESTIMATORS
        )
        if kl_estimator == "auto":
            kl_estimator = "closed" if self.prior == "gaussian" else "mc"
        if kl_estimator == "closed" and self.prior != "gaussian":
            raise ValueError(
                "reparam.nn.BayesianDense: `kl_estimator` 'closed' needs prior 'gaussian' "
                f"(the scale mixture's KL has no closed form); got prior {self.prior!r}"
            )
        if not 0.0 < self.mixture_weight < 1.0:
            raise ValueError(
                "reparam.nn.BayesianDense: `mixture_weight` must be in (0, 1); "
                f"got {self.mixture_weight!r}"
            )
        return kl_estimator

    def _log_prior(self, w: Array) -> Array:
        if self.prior == "gaussian":
            return normal.log_prob(
                w, jnp.zeros((), w.dtype), jnp.asarray(self.prior_scale, w.dtype)
            )
        return mixture_log_prob(w, self.mixture_scales, self.mixture_weight)

    def _kl(self, key: Array, pairs, draws) -> Array:
        """KL(q ‖ p) summed over the layer: closed form, or log q − log p at posterior draws.

        `pairs` are the (loc, scale) of kernel and bias; `draws` their posterior samples (or
        None, in which case the MC estimate draws its own with `key`).
        """
        if self._validate() == "closed":
            return sum(
                jnp.sum(kl_lib.normal_normal(loc, scale, 0.0, self.prior_scale))
                for loc, scale in pairs
            )
        total = 0.0
        for i, (loc, scale) in enumerate(pairs):
            if draws is None:
                w, log_q = normal.sample_and_log_prob(jax.random.fold_in(key, i), loc, scale)
            else:
                w = draws[i]
                log_q = normal.log_prob(w, loc, scale)
            total = total + jnp.sum(log_q - self._log_prior(w))
        return total

    @nn.compact
    def __call__(self, key: Array, x: Array, *, mean_weights: bool = False) -> tuple[Array, Array]:
        """Forward pass y (..., features) and this layer's KL term (a scalar).

        Args:
          key: PRNG key for the weight / activation noise (and the MC KL).
          x: inputs (..., in_features).
          mean_weights: use the posterior means (a deterministic forward pass; the KL is still
            returned, estimated with `key` for the mixture prior).
        """
        self._validate()  # bad attributes fail at init, not at the first KL
        in_features = x.shape[-1]
        rho0 = softplus_inverse(self.init_scale)
        kernel_loc = self.param("kernel_loc", self.kernel_init, (in_features, self.features))
        kernel_rho = self.param(
            "kernel_rho", nn.initializers.constant(rho0), (in_features, self.features)
        )
        dtype = jnp.result_type(x, kernel_loc)
        x = x.astype(dtype)
        kernel_scale = jax.nn.softplus(kernel_rho)
        pairs = [(kernel_loc, kernel_scale)]
        if self.use_bias:
            bias_loc = self.param("bias_loc", nn.initializers.zeros_init(), (self.features,))
            bias_rho = self.param("bias_rho", nn.initializers.constant(rho0), (self.features,))
            pairs.append((bias_loc, jax.nn.softplus(bias_rho)))
        else:
            bias_loc = jnp.zeros((self.features,), dtype)
        noise_key, kl_key = jax.random.split(key)
        draws = None

        if mean_weights:
            y = x @ kernel_loc + bias_loc
        elif self.estimator == "bbb":
            # One draw of every weight, shared by the whole minibatch.
            keys = jax.random.split(noise_key, len(pairs))
            draws = [
                normal.sample(k, loc, scale) for k, (loc, scale) in zip(keys, pairs, strict=True)
            ]
            y = x @ draws[0] + (draws[1] if self.use_bias else 0.0)
        elif self.estimator == "local":
            # b = xW is Gaussian: mean xμ, variance x²σ² (+ the bias's σ²); sample b per example.
            mean = x @ kernel_loc + bias_loc
            variance = (x * x) @ (kernel_scale * kernel_scale)
            if self.use_bias:
                variance = variance + pairs[1][1] ** 2
            y = normal.sample(noise_key, mean, jnp.sqrt(variance))
        else:  # flipout
            k_eps, k_in, k_out = jax.random.split(noise_key, 3)
            eps = [
                normal.noise(jax.random.fold_in(k_eps, i), loc.shape, dtype)
                for i, (loc, _) in enumerate(pairs)
            ]
            # The shared draw W̄ = μ + ΔW is also the MC-KL's posterior sample.
            draws = [
                normal.transform(e, loc, scale) for e, (loc, scale) in zip(eps, pairs, strict=True)
            ]
            sign_in = jax.random.rademacher(k_in, x.shape, dtype)
            sign_out = jax.random.rademacher(k_out, (*x.shape[:-1], self.features), dtype)
            perturbation = ((x * sign_in) @ (kernel_scale * eps[0])) * sign_out
            if self.use_bias:
                # The bias is a weight on a constant input; s_out alone decorrelates it.
                perturbation = perturbation + pairs[1][1] * eps[1] * sign_out
            y = x @ kernel_loc + bias_loc + perturbation

        return y, self._kl(kl_key, pairs, draws)


class BayesianMLP(nn.Module):
    """MLP of `BayesianDense` layers: x (..., in) -> (outputs (..., out_features), total KL).

    Attributes:
      hidden: widths of the hidden layers.
      out_features: width of the last (linear) layer.
      activation: a name in `reparam.nn.activations.ACTIVATIONS`.
      layer_kwargs: BayesianDense attributes shared by every layer (estimator, prior, ...),
        as a tuple of (name, value) pairs (hashable, as Flax attributes must be).
    """

    hidden: Sequence[int]
    out_features: int
    activation: str = "relu"
    layer_kwargs: tuple[tuple[str, object], ...] = ()

    @nn.compact
    def __call__(self, key: Array, x: Array, *, mean_weights: bool = False) -> tuple[Array, Array]:
        act = activation(self.activation, "reparam.nn.BayesianMLP")
        kwargs = dict(self.layer_kwargs)
        widths = (*self.hidden, self.out_features)
        total_kl = 0.0
        h = x
        for i, width in enumerate(widths):
            # fold_in by layer: independent noise per layer from one key.
            h, layer_kl = BayesianDense(width, **kwargs)(
                jax.random.fold_in(key, i), h, mean_weights=mean_weights
            )
            total_kl = total_kl + layer_kl
            if i < len(widths) - 1:
                h = act(h)
        return h, total_kl


class MLP(nn.Module):
    """Deterministic MLP of the same shape as `BayesianMLP` (the baseline of the experiments)."""

    hidden: Sequence[int]
    out_features: int
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: Array) -> Array:
        act = activation(self.activation, "reparam.nn.MLP")
        for width in self.hidden:
            x = act(nn.Dense(width)(x))
        return nn.Dense(self.out_features)(x)


__all__ = [
    "ESTIMATORS",
    "KL_ESTIMATORS",
    "MLP",
    "PRIORS",
    "BayesianDense",
    "BayesianMLP",
    "mixture_log_prob",
    "softplus_inverse",
]
