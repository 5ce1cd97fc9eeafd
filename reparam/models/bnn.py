"""Helpers for Bayesian neural networks built from `reparam.nn.bayesian`: ELBO losses, Monte-Carlo
predictive distributions and calibration metrics.

A Bayesian model here is any Flax module whose `apply(params, key, x)` returns
`(outputs, kl)`, like `reparam.nn.BayesianMLP`. With N training examples, the negative ELBO per
example of a minibatch of size B is

    −(1/B) Σ_b log p(y_b | x_b, W) + KL(q ‖ p) / N,    W ~ q  (one draw per forward pass),

so a full pass over the data in minibatches is an unbiased estimate of −ELBO / N (Blundell et al.
2015, with the KL spread uniformly over the minibatches).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array
PyTree = Any


def classification_elbo_loss(
    model: nn.Module, params: PyTree, key: Array, x: Array, labels: Array, num_data: int
) -> tuple[Array, dict[str, Array]]:
    """Negative ELBO per example for a categorical likelihood; x (B, D), labels (B,) ints."""
    logits, kl = model.apply(params, key, x)
    nll = -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=-1))
    return nll + kl / num_data, {"nll": nll, "kl": kl}


def gaussian_elbo_loss(
    model: nn.Module,
    params: PyTree,
    key: Array,
    x: Array,
    y: Array,
    num_data: int,
    noise_scale: Array,
) -> tuple[Array, dict[str, Array]]:
    """Negative ELBO per example for y ~ N(f(x; W), noise_scale²); x (B, D), y (B, 1)."""
    mean, kl = model.apply(params, key, x)
    log_lik = -0.5 * ((y - mean) / noise_scale) ** 2 - jnp.log(noise_scale)
    nll = -jnp.mean(log_lik) + 0.5 * math.log(2 * math.pi)
    return nll + kl / num_data, {"nll": nll, "kl": kl}


@functools.partial(jax.jit, static_argnames=("model", "num_samples"))
def predictive_samples(
    model: nn.Module, params: PyTree, key: Array, x: Array, num_samples: int
) -> Array:
    """Model outputs under `num_samples` independent posterior draws: (S, *outputs shape).

    Jitted (model and num_samples static): one compiled program instead of eager vmapped ops.
    """
    keys = jax.random.split(key, num_samples)
    return jax.vmap(lambda k: model.apply(params, k, x)[0])(keys)


def predictive_probs(logits_samples: Array) -> Array:
    """Bayesian model average p(y|x) = mean_s softmax(logits_s): (S, B, C) -> (B, C)."""
    return jnp.mean(jax.nn.softmax(logits_samples, axis=-1), axis=0)


def expected_calibration_error(probs: Array, labels: Array, num_bins: int = 15) -> Array:
    """ECE (Naeini et al. 2015; Guo et al. 2017): Σ_bins (n_bin / n) |accuracy − confidence|.

    probs (B, C) predictive probabilities, labels (B,); confidence = max_c probs, equal-width
    bins on (0, 1].
    """
    confidence = jnp.max(probs, axis=-1)
    correct = (jnp.argmax(probs, axis=-1) == labels).astype(probs.dtype)
    # bin i holds confidences in (i/M, (i+1)/M]
    bins = jnp.clip(jnp.ceil(confidence * num_bins).astype(jnp.int32) - 1, 0, num_bins - 1)
    conf_sum = jnp.zeros(num_bins, probs.dtype).at[bins].add(confidence)
    correct_sum = jnp.zeros(num_bins, probs.dtype).at[bins].add(correct)
    return jnp.sum(jnp.abs(correct_sum - conf_sum)) / probs.shape[0]


@functools.partial(jax.jit, static_argnames="num_bins")
def _metrics(probs: Array, labels: Array, num_bins: int) -> dict[str, Array]:
    label_probs = jnp.take_along_axis(probs, labels[:, None], axis=-1)[:, 0]
    tiny = jnp.finfo(probs.dtype).tiny
    return {
        "accuracy": jnp.mean(jnp.argmax(probs, axis=-1) == labels),
        "nll": -jnp.mean(jnp.log(jnp.maximum(label_probs, tiny))),
        "ece": expected_calibration_error(probs, labels, num_bins),
    }


def classification_metrics(probs: Array, labels: Array, num_bins: int = 15) -> dict[str, float]:
    """Accuracy, NLL (mean −log p(label)) and ECE of predictive probabilities (B, C)."""
    return {name: float(value) for name, value in _metrics(probs, labels, num_bins).items()}
