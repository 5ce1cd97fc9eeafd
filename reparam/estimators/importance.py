"""The importance-weighted bound (IWAE, Burda et al. 2016) and its three gradient surrogates.

The one implementation of the standard, sticking-the-landing (STL, Roeder et al. 2017) and doubly
reparameterized (DReG, Tucker et al. 2018) IWAE gradients in reparam. `importance_weighted`
takes any reparameterized draws and a log-weight function, so the Gaussian VAE objectives
(`reparam.models.objectives`), VI over arbitrary posteriors (`reparam.vi`) and the diagonal-normal
`iwae_surrogate` below all go through it; `log_mean_exp` is the bound itself, also what the
importance-sampled log-likelihood evaluations (`reparam.models.evaluate`) combine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from reparam import checks
from reparam.families import normal

Array = jax.Array
PyTree = Any
sg = jax.lax.stop_gradient

GRADIENTS = ("standard", "stl", "dreg")


def log_mean_exp(log_w: Array, axis: int = 0) -> Array:
    """The importance-weighted bound log (1/K) Σ_k exp(log w_k) over `axis` (K = its size)."""
    return logsumexp(log_w, axis=axis) - math.log(log_w.shape[axis])


def _along(weights: Array, leaf: Array) -> Array:
    """Weights (K, *batch) broadcast against a draw (K, *batch, *event)."""
    return weights.reshape(weights.shape + (1,) * (leaf.ndim - weights.ndim))


def importance_weighted(
    log_weights: Callable[[PyTree, PyTree], Array],
    z: PyTree,
    q_params: PyTree,
    *,
    gradient: str = "standard",
) -> tuple[Array, Array]:
    """The IWAE bound of K reparameterized draws and a surrogate for its gradient.

    Args:
      log_weights: (z, q_params) -> log w = log p(x, z) − log q(z; q_params), shape (K, *batch);
        each draw z_k must only enter its own log w_k. It may close over a model's parameters
        (they get the decoder gradient below).
      z: the draws, a pytree whose leaves have shape (K, *batch, *event), differentiable in
        `q_params` (z = g(ε, q_params)).
      q_params: the variational parameters, a pytree.
      gradient: "standard" (Σ_k w̃_k ∇ log w_k, w̃ = softmax_k log w), "stl" (log q at
        stop_gradient(q_params): the zero-mean score term is dropped) or "dreg" (decoder path
        Σ_k w̃_k ∇ log p(x, z_k), encoder path Σ_k w̃_k² (∂ log w_k/∂z_k)(∂z_k/∂θ)).

    Returns:
      (surrogate, bound), shape `batch`: the value of `surrogate` is the bound, its gradient the
      chosen estimate; `bound` is under stop_gradient, for logging.
    """
    gradient = checks.choice(
        "reparam.estimators.importance_weighted", "gradient", gradient, GRADIENTS
    )
    if gradient == "dreg":
        # Two passes over the K draws, each a plain map z -> log w (so a `log_joint` chunked by
        # `reparam.train.chunked_over_samples` keeps one chunk's activations in both; a VJP
        # taken inside the forward pass would keep all K). Pass 1, without gradient: the
        # normalized weights w̃. Pass 2 at z' = sg(z) + w̃·(z − sg(z)), equal to z in value but
        # with the path to q_params scaled by w̃_k: the gradient of Σ_k w̃_k log w_k(z'_k), log q
        # at fixed q_params, is Σ_k w̃_k ∇ log p for the decoder and Σ_k w̃_k² (∂ log w_k/∂z_k)
        # (∂z_k/∂θ) for the encoder: DReG's two terms.
        weights = jax.nn.softmax(sg(log_weights(sg(z), sg(q_params))), axis=0)
        z_scaled = jax.tree.map(
            lambda leaf: sg(leaf) + _along(weights, leaf) * (leaf - sg(leaf)), z
        )
        log_w = log_weights(z_scaled, sg(q_params))
    else:
        log_w = log_weights(z, sg(q_params) if gradient == "stl" else q_params)
        weights = jax.nn.softmax(sg(log_w), axis=0)
    carrier = jnp.sum(weights * log_w, axis=0)
    bound = sg(log_mean_exp(log_w))
    return bound + (carrier - sg(carrier)), bound


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
                  activations here too, where a VJP taken inside the forward pass would keep all
                  K. One extra forward pass of `log_joint` is the price. To measure the
                  temporaries of each gradient for a model: `python -m benchmarks.scaling
                  --gradient-temporaries K B CHUNK` (XLA's memory analysis of the compiled step).

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
    log_joint = checks.function(where, "log_joint", log_joint)
    num_samples = checks.count(where, "num_samples", num_samples)
    gradient = checks.choice(where, "gradient", gradient, GRADIENTS)
    (loc, scale), shape = checks.broadcast(where, loc=loc, scale=scale)
    if len(shape) < 1:
        raise ValueError(
            f"{where}: `loc` and `scale` must have a trailing latent axis, shape (..., d); got "
            f"`loc` {loc.shape} and `scale` {scale.shape}"
        )
    checks.positive(where, "scale", scale)
    z = normal.transform(normal.noise(key, (num_samples, *shape), loc.dtype), loc, scale)

    def log_weights(z: Array, q_params: tuple[Array, Array]) -> Array:
        log_p = checks.per_sample(where, "log_joint", log_joint(z), num_samples)
        if log_p.shape != z.shape[:-1]:
            raise ValueError(
                f"{where}: `log_joint` must map z of shape {z.shape} to one log-density per "
                f"sample and example, shape {z.shape[:-1]}; got shape {log_p.shape}"
            )
        return log_p - jnp.sum(normal.log_prob(z, *q_params), axis=-1)

    return importance_weighted(log_weights, z, (loc, scale), gradient=gradient)


__all__ = ["GRADIENTS", "importance_weighted", "iwae_surrogate", "log_mean_exp"]
