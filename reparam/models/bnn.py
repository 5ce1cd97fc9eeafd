"""Helpers for Bayesian neural networks built from `reparam.nn.bayesian`: ELBO losses, Monte-Carlo
predictive distributions and calibration metrics.

A Bayesian model here is any Flax module whose `apply(params, key, x)` returns
`(outputs, kl)`, like `reparam.nn.BayesianMLP`. With N training examples, the negative ELBO per
example of a minibatch of size B is

    −(1/B) Σ_b log p(y_b | x_b, W) + KL(q ‖ p) / N,    W ~ q  (one draw per forward pass),

so a full pass over the data in minibatches is an unbiased estimate of −ELBO / N (Blundell et al.
2015, with the KL spread uniformly over the minibatches).

The studies of `experiments/bnn.py` are built from these and from `blundell_curve` (the
regression data of Blundell et al.'s Figure 5), `band_widening` (how the predictive band grows
away from the data) and `make_gradient_variance` (Kingma et al. 2015's per-minibatch gradient
variance of several estimators at the same parameters).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

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


def regression_loss(model: nn.Module, num_data: int, *, bayesian: bool = True) -> Callable:
    """`loss_fn(params, data, key) -> (loss, metrics)` of y ~ N(f(x), σ²) with a learned noise
    scale, e.g. for `reparam.train.in_memory.fit_full_batch`: params {"model", "log_noise"}, data
    (x (B, D), y (B, 1)). Bayesian: the negative ELBO per example (`gaussian_elbo_loss`;
    `model.apply(params, key, x) -> (f(x), kl)`). Otherwise the Gaussian NLL per example of a
    deterministic `model.apply(params, x) -> f(x)` (the key unused)."""

    def loss(params: PyTree, data: tuple[Array, Array], key: Array):
        (x, y), noise_scale = data, jnp.exp(params["log_noise"])
        if bayesian:
            return gaussian_elbo_loss(model, params["model"], key, x, y, num_data, noise_scale)
        mean = model.apply(params["model"], x)
        nll = jnp.mean(0.5 * ((y - mean) / noise_scale) ** 2) + params["log_noise"]
        return nll + 0.5 * math.log(2 * math.pi), {"nll": nll}

    return loss


def predictive_band(samples: Array, noise_scale: float) -> dict[str, np.ndarray]:
    """From posterior-predictive means `samples` (S, G): the predictive mean (G,), the weights'
    standard deviation (epistemic) and the total with the noise, sqrt(epistemic² + σ²)."""
    samples = np.asarray(samples)
    epistemic = samples.std(axis=0)
    total = np.sqrt(epistemic**2 + noise_scale**2)
    return {"mean": samples.mean(axis=0), "epistemic_std": epistemic, "total_std": total}


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


# ---------------------------------------------------------------- the studies' data and statistics
def blundell_curve(key: Array, num_points: int) -> tuple[Array, Array]:
    """Blundell et al. (2015)'s regression curve: x (N, 1) ~ U[0, 0.5] and
    y = x + 0.3 sin(2π(x + ε)) + 0.3 sin(4π(x + ε)) + ε, ε ~ N(0, 0.02²), (N, 1)."""
    x_key, noise_key = jax.random.split(key)
    x = jax.random.uniform(x_key, (num_points, 1), minval=0.0, maxval=0.5)
    eps = 0.02 * jax.random.normal(noise_key, (num_points, 1))
    y = x + 0.3 * jnp.sin(2 * jnp.pi * (x + eps)) + 0.3 * jnp.sin(4 * jnp.pi * (x + eps)) + eps
    return x, y


def band_widening(
    grid: np.ndarray, std: np.ndarray, inside: tuple[float, float] = (0.0, 0.5)
) -> dict[str, float]:
    """Mean predictive std over the data range `inside` and away from it: left (below
    inside[0] − 0.05), right (above inside[1] + 0.15) and far right (x ≥ 1), and their ratios to
    the inside; grid and std (G,)."""
    grid, std = np.asarray(grid), np.asarray(std)
    regions = {
        "inside": (grid >= inside[0]) & (grid <= inside[1]),
        "left": grid < inside[0] - 0.05,
        "right": grid > inside[1] + 0.15,
        "far_right": grid >= 1.0,
    }
    stats = {f"std_{name}": float(std[mask].mean()) for name, mask in regions.items()}
    for name in ("left", "right", "far_right"):
        stats[f"ratio_{name}"] = stats[f"std_{name}"] / stats["std_inside"]
    return stats


def make_gradient_variance(
    models: Mapping[str, nn.Module],
    x: Array,
    labels: Array,
    *,
    batch_size: int,
    repeats: int,
) -> Callable[[Array, PyTree], dict[str, dict[str, float]]]:
    """`variance(key, params)`: the variance, over `repeats` draws, of the minibatch gradient of
    the expected log-likelihood (the KL term is closed form and has no variance) of each model
    at the same `params`, averaged over the kernel entries of the bottom and top layers.

    `models` maps a name to a Bayesian classifier sharing one parameter structure (e.g. one
    `BayesianMLP` per estimator); x (N, D), labels (N,). Result: {name: {f"{mode}_{layer}_{p}":
    variance}} with mode "fixed" (one minibatch: the weight noise alone) or "random" (a fresh
    minibatch each repeat, what SGD sees), layer "bottom" or "top", p "loc" or "rho". The draws
    are one jitted `lax.map` (compiled once, reused for every `params`).
    """
    n = x.shape[0]

    def data_loss(model, params, key, index):
        logits, _ = model.apply(params, key, x[index])
        log_p = jnp.take_along_axis(jax.nn.log_softmax(logits), labels[index][:, None], -1)
        return -jnp.mean(log_p)

    def one_repeat(key, params, fixed):
        batch_key, noise_key = jax.random.split(key)
        random = jax.random.choice(batch_key, n, (batch_size,), replace=False)
        return {
            (name, mode): jax.grad(data_loss, argnums=1)(model, params, noise_key, index)
            for name, model in models.items()
            for mode, index in (("fixed", fixed), ("random", random))
        }

    @jax.jit
    def variances(key, params):
        fixed = jax.random.choice(jax.random.fold_in(key, 1), n, (batch_size,), replace=False)
        keys = jax.random.split(jax.random.fold_in(key, 2), repeats)
        grads = jax.lax.map(
            lambda k: one_repeat(k, params, fixed), keys, batch_size=min(repeats, 100)
        )
        return jax.tree.map(lambda g: jnp.var(g, axis=0, ddof=1), grads)

    def variance(key: Array, params: PyTree) -> dict[str, dict[str, float]]:
        layers = sorted(params["params"])
        out: dict[str, dict[str, float]] = {name: {} for name in models}
        for (name, mode), grads_var in variances(key, params).items():
            for layer, tag in ((layers[0], "bottom"), (layers[-1], "top")):
                for p in ("loc", "rho"):
                    value = jnp.mean(grads_var["params"][layer][f"kernel_{p}"])
                    out[name][f"{mode}_{tag}_{p}"] = float(value)
        return out

    return variance
