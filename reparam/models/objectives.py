"""Variational objectives: the ELBO (analytic or Monte-Carlo KL, β-weighted) and the IWAE bound.

Each objective is a pure, key-first function of the data and two callables, so it serves any
model (Flax modules pass bound methods):

  encode(x) -> (loc, scale)          q(z|x) = N(loc, diag(scale²)), each (B, d)
  log_likelihood(z) -> (K, B)        log p(x|z) for z of shape (K, B, d)

The prior is N(0, I). Each returns `(surrogate, bound)`, both (B,): `bound` is the objective's
Monte-Carlo value (under stop_gradient, for logging), and `jax.grad` of `surrogate.sum()` is the
chosen gradient estimator of the bound. Train by minimising `-surrogate.mean()`.

Gradients:
  "standard"  the reparameterization gradient of the bound itself.
  "stl"       sticking the landing (Roeder et al. 2017): log q evaluated at stop-gradient
              parameters, dropping the zero-mean score term.
  "dreg"      doubly reparameterized (Tucker et al. 2018) for the IWAE bound; for K = 1 it
              equals "stl".
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from reparam import checks
from reparam.estimators import importance
from reparam.families import kl as kl_divergence  # `kl` is also the objectives' keyword argument
from reparam.families import normal

Array = jax.Array
Encoder = Callable[[Array], tuple[Array, Array]]
LogLikelihood = Callable[[Array], Array]

GRADIENTS = importance.GRADIENTS
KLS = ("analytic", "mc")


def bernoulli_log_likelihood(logits: Array, x: Array) -> Array:
    """Σ_D log Bernoulli(x; sigmoid(logits)), shapes (..., D) -> (...).

    x·l − softplus(l) is log σ(l) for x = 1 and log(1 − σ(l)) for x = 0, stable for any l.
    """
    return jnp.sum(x * logits - jax.nn.softplus(logits), axis=-1)


def standard_normal_log_prob(z: Array) -> Array:
    """log N(z; 0, I) summed over the last (latent) axis: (..., d) -> (...)."""
    # Typed zeros/ones so the prior never promotes float32 latents (python floats are float64
    # when x64 is on).
    zero, one = np.zeros((), z.dtype), np.ones((), z.dtype)
    return jnp.sum(normal.log_prob(z, zero, one), axis=-1)


def elbo(
    key: Array,
    x: Array,
    encode: Encoder,
    log_likelihood: LogLikelihood,
    *,
    kl: str = "analytic",
    beta: float = 1.0,
    gradient: str = "standard",
) -> tuple[Array, Array]:
    """The (β-)ELBO E_q[log p(x|z)] − β·KL(q(z|x) ‖ N(0, I)) with one sample of z per example.

    Args:
      key: a PRNG key.
      x: data, (B, D).
      encode: x -> (loc, scale), each (B, d).
      log_likelihood: z (1, B, d) -> log p(x|z), (1, B).
      kl: "analytic" (closed form, `reparam.kl.normal_normal`) or "mc" (log q − log p at the
        sample, whose gradient has zero variance at the exact posterior with "stl").
      beta: weight of the KL term.
      gradient: "standard", "stl" or "dreg" (the last two need kl="mc"; for one sample DReG is
        STL).

    Returns:
      (surrogate, elbo), each (B,).
    """
    where = "reparam.objectives.elbo"
    checks.choice(where, "kl", kl, KLS)
    checks.choice(where, "gradient", gradient, GRADIENTS)
    if kl == "analytic" and gradient != "standard":
        raise ValueError(
            f"{where}: `gradient`={gradient!r} drops the score term of a Monte-Carlo KL; it "
            f"needs kl='mc', got kl='analytic'"
        )
    if kl == "mc" and beta == 1.0:
        # The K = 1 IWAE bound is exactly the ELBO with a Monte-Carlo KL; the estimator owns the
        # standard / STL / DReG surrogates.
        return iwae(key, x, encode, log_likelihood, 1, gradient=gradient)
    loc, scale = encode(x)
    eps = normal.noise(key, (1, *loc.shape), loc.dtype)
    z = normal.transform(eps, loc, scale)
    reconstruction = log_likelihood(z)[0]
    if kl == "analytic":
        zero, one = np.zeros((), loc.dtype), np.ones((), loc.dtype)
        divergence = jnp.sum(kl_divergence.normal_normal(loc, scale, zero, one), axis=-1)
    else:
        q_loc, q_scale = loc, scale
        if gradient != "standard":
            q_loc, q_scale = jax.lax.stop_gradient(loc), jax.lax.stop_gradient(scale)
        log_q = jnp.sum(normal.log_prob(z, q_loc, q_scale), axis=-1)[0]
        divergence = log_q - standard_normal_log_prob(z)[0]
    value = reconstruction - beta * divergence
    return value, jax.lax.stop_gradient(value)


def iwae(
    key: Array,
    x: Array,
    encode: Encoder,
    log_likelihood: LogLikelihood,
    num_samples: int,
    *,
    gradient: str = "standard",
) -> tuple[Array, Array]:
    """The IWAE bound log (1/K) Σ_k p(x, z_k)/q(z_k|x), z_k ~ q(z|x), per example.

    Args:
      key: a PRNG key.
      x: data, (B, D).
      encode: x -> (loc, scale), each (B, d).
      log_likelihood: z (K, B, d) -> log p(x|z), (K, B).
      num_samples: K ≥ 1 (K = 1 is the ELBO with a Monte-Carlo KL).
      gradient: "standard", "stl" or "dreg" (see `reparam.estimators.iwae_surrogate`).

    Returns:
      (surrogate, bound), each (B,).
    """
    checks.choice("reparam.objectives.iwae", "gradient", gradient, GRADIENTS)
    loc, scale = encode(x)
    return importance.iwae_surrogate(
        key,
        lambda z: log_likelihood(z) + standard_normal_log_prob(z),
        loc,
        scale,
        num_samples,
        gradient=gradient,
    )


__all__ = [
    "GRADIENTS",
    "KLS",
    "bernoulli_log_likelihood",
    "elbo",
    "iwae",
    "standard_normal_log_prob",
]
