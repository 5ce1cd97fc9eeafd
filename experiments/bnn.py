"""Bayesian neural networks with `reparam.nn.BayesianDense`: three studies on CPU.

    python -m experiments.bnn --quick
    python -m experiments.bnn --workdir runs/bnn --record

1. Regression curve (Blundell et al. 2015, Fig. 5): a Bayes-by-Backprop MLP (scale-mixture prior)
   and a deterministic MLP fit full-batch to `bnn.blundell_curve`; the band away from the data.
2. scikit-learn's 8x8 digits (fixed 1347 / 450 split): test accuracy, NLL and ECE of the BNN's
   predictive average against a deterministic MLP.
3. Per-minibatch gradient variance of bbb, local and flipout (Kingma et al. 2015, Table 1).

Loops: `reparam.train.in_memory`, `reparam.models.bnn`; report and plots: experiments/reports/
bnn.py (from the record). `--quick` exits 1 if `reports.bnn.checks_failed` finds anything.
`--mesh data [--devices N]` splits the regression's points and the digits minibatches over a
device mesh (same results up to float32 sums: tests/test_sharding.py).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from experiments import runner
from experiments.reports import bnn as report
from reparam import train
from reparam.models import bnn
from reparam.nn.bayesian import ESTIMATORS, MLP, BayesianMLP
from reparam.train import distributed, in_memory


@dataclass(frozen=True)
class Config:
    """Bayesian neural networks: regression band, digits calibration, gradient variance."""

    reg_points: int = 1024
    """Regression: training points x ~ U[0, 0.5]."""
    reg_hidden: tuple[int, ...] = (100, 100)
    """Regression: hidden widths of both MLPs."""
    reg_steps: int = 15_000
    """Regression: full-batch Adam steps."""
    reg_lr: float = 3e-3
    """Regression: Adam learning rate."""
    reg_estimator: str = "bbb"
    """Regression: the BNN's gradient estimator (bbb, local, flipout)."""
    reg_prior: str = "mixture"
    """Regression: the weights' prior (gaussian or mixture)."""
    reg_mixture_scales: tuple[float, float] = (1.0, math.exp(-7.0))
    """Regression: the scale mixture's s₁, s₂ (Blundell et al.'s grid: −log s₂ ∈ {6, 7, 8})."""
    reg_mixture_weight: float = 0.25
    """Regression: the scale mixture's π (Blundell et al.'s grid: 1/4, 1/2, 3/4)."""
    reg_samples: int = 500
    """Regression: posterior samples of the predictive band."""
    digits_hidden: tuple[int, ...] = (100, 100)
    """Digits: hidden widths of both MLPs."""
    digits_epochs: int = 300
    """Digits: passes over the training set."""
    digits_batch: int = 128
    """Digits: minibatch (a multiple of --devices with --mesh data)."""
    digits_lr: float = 1e-3
    """Digits: Adam learning rate."""
    digits_estimator: str = "local"
    """Digits: the BNN's gradient estimator."""
    digits_prior_scale: float = 1.0
    """Digits: the Gaussian prior's scale."""
    digits_samples: int = 200
    """Digits: posterior samples of the predictive average."""
    ece_bins: int = 15
    """Digits: bins of the expected calibration error."""
    var_repeats: int = 2_000
    """Variance: gradient draws per estimate."""
    var_batch: int = 128
    """Variance: minibatch of each gradient."""
    var_early_epoch: int = 10
    """Variance: the 'early' parameters are the digits BNN's after this epoch."""
    seed: int = 0
    """Seed of every key stream (and of the digits split)."""
    mesh: str = "none"
    """'none' (one device) or 'data' (data-parallel over --devices)."""
    devices: int | None = None
    """Devices of the data mesh (None: all)."""

    def __post_init__(self) -> None:
        distributed.check_mesh_choice("experiments.bnn.Config", self.mesh)

    @staticmethod
    def quick() -> Config:
        return Config(reg_points=64, reg_hidden=(32, 32), reg_steps=1_500, reg_lr=1e-2,
                      reg_samples=50, digits_hidden=(32,), digits_epochs=40, digits_samples=10,
                      var_repeats=30, var_early_epoch=2)  # fmt: skip


def validate(config: Config) -> None:
    runner.require_mesh_for_devices(config)
    early, epochs = config.var_early_epoch, config.digits_epochs
    runner.require(early <= epochs, "--var-early-epoch", f"at most --digits-epochs {epochs}", early)


def run_regression(key, config: Config, mesh: Mesh | None = None) -> dict[str, Any]:
    """Study 1; with a `mesh`, the full batch of points is split over its data axis."""
    data_key, init_key, train_key, pred_key, det_key = jax.random.split(key, 5)
    distributed.check_divisible("experiments.bnn", "reg_points", config.reg_points, mesh)
    data = bnn.blundell_curve(data_key, config.reg_points)
    layers = dict(estimator=config.reg_estimator, prior=config.reg_prior,
                  mixture_scales=config.reg_mixture_scales,
                  mixture_weight=config.reg_mixture_weight)  # fmt: skip
    model = BayesianMLP(config.reg_hidden, 1, layer_kwargs=tuple(layers.items()))
    deterministic = MLP(config.reg_hidden, 1)
    optimizer = optax.adam(config.reg_lr)
    xy, fit_key = train.place_data((data, train_key), mesh)

    def fit(net, model_params, bayesian=True):  # full batch; the noise scale starts at 0.1
        params = {"model": model_params, "log_noise": jnp.log(jnp.float32(0.1))}
        state = train.place_state(train.create_state(params, optimizer), mesh)
        loss = bnn.regression_loss(net, config.reg_points, bayesian=bayesian)
        state, metrics = in_memory.fit_full_batch(
            fit_key, state, loss, optimizer, xy, num_steps=config.reg_steps, mesh=mesh
        )
        losses, tail = np.asarray(metrics["loss"]), max(1, config.reg_steps // 20)
        return state.params, {"noise_scale": float(jnp.exp(state.params["log_noise"])),
                              "loss_first": float(losses[:tail].mean()),
                              "loss_last": float(losses[-tail:].mean())}  # fmt: skip

    params, fitted = fit(model, jax.jit(model.init)(*jax.random.split(init_key), data[0]))
    grid = np.linspace(-0.2, 1.2, 281, dtype=np.float32)
    samples = bnn.predictive_samples(model, params["model"], pred_key, grid[:, None],
                                     config.reg_samples)[..., 0]  # fmt: skip
    band = bnn.predictive_band(samples, fitted["noise_scale"])
    det_params, det_fitted = fit(
        deterministic, jax.jit(deterministic.init)(det_key, data[0]), False
    )
    det_mean = jax.jit(deterministic.apply)(det_params["model"], grid[:, None])[:, 0]
    return {
        "grid": grid, "x": data[0][:, 0], "y": data[1][:, 0],
        "bayes": {**band, **fitted, "band": bnn.band_widening(grid, band["total_std"]),
                  "band_epistemic": bnn.band_widening(grid, band["epistemic_std"])},
        "deterministic": {"mean": det_mean, **det_fitted},
    }  # fmt: skip


def digits_data(seed: int = 0) -> dict[str, np.ndarray]:
    """scikit-learn's digits, features / 16 in [0, 1], a fixed 1347 / 450 split."""
    from sklearn.datasets import load_digits  # local import: sklearn is slow to import

    digits = load_digits()
    x, y = (digits.data / 16.0).astype(np.float32), digits.target.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(x))
    return {"train": (x[order[:1347]], y[order[:1347]]), "test": (x[order[1347:]], y[order[1347:]])}


def digits_model(config: Config, estimator: str | None = None) -> BayesianMLP:
    layers = dict(estimator=estimator or config.digits_estimator, prior="gaussian",
                  prior_scale=config.digits_prior_scale)  # fmt: skip
    return BayesianMLP(config.digits_hidden, 10, layer_kwargs=tuple(layers.items()))


def run_digits(key, config: Config, mesh=None, progress=False, predict=True) -> dict[str, Any]:
    """Study 2; with a `mesh`, each minibatch is split over its data axis. `predict=False`
    stops after training and returns the training curves alone (under "curves")."""
    init_key, train_key, pred_key, det_key, mean_key = jax.random.split(key, 5)
    data = digits_data(config.seed)
    (x_test, y_test), n = data["test"], len(data["train"][0])
    model, deterministic = digits_model(config), MLP(config.digits_hidden, 10)

    def bayes_loss(params, batch, key):
        return bnn.classification_elbo_loss(model, params, key, *batch, n)

    def det_loss(params, batch, key):
        logits = deterministic.apply(params, batch[0])
        nll = optax.softmax_cross_entropy_with_integer_labels(logits, batch[1]).mean()
        return nll, {"nll": nll}

    optimizer, x_init = optax.adam(config.digits_lr), data["train"][0][:1]
    train_data, train_key = train.place_data((data["train"], train_key), mesh)
    states, curves, kept = {}, {}, {}
    start = time.perf_counter()
    for name, loss, params in (
        ("bayes", bayes_loss, jax.jit(model.init)(*jax.random.split(init_key), x_init)),
        ("det", det_loss, jax.jit(deterministic.init)(det_key, x_init)),
    ):
        epoch = in_memory.make_minibatch_epoch(loss, optimizer, config.digits_batch, mesh=mesh)
        state = train.place_state(train.create_state(params, optimizer), mesh)
        states[name], metrics, kept[name] = in_memory.run_epochs(
            train_key, state, epoch, train_data, num_epochs=config.digits_epochs, desc=name,
            keep=(config.var_early_epoch,), progress=progress)  # fmt: skip
        curves |= {f"{name}_{k}": v.tolist() for k, v in metrics.items() if k != "nll"}
    wall = time.perf_counter() - start
    if not predict:
        return {"curves": curves}
    final = states["bayes"].params
    logits = bnn.predictive_samples(model, final, pred_key, x_test, config.digits_samples)
    mean_apply = jax.jit(lambda p, k, x: model.apply(p, k, x, mean_weights=True)[0])
    probs = {
        "bayes": bnn.predictive_probs(logits),
        "bayes_mean_weights": jax.nn.softmax(mean_apply(final, mean_key, x_test)),
        "deterministic": jax.nn.softmax(jax.jit(deterministic.apply)(states["det"].params, x_test)),
    }
    metrics = {k: bnn.classification_metrics(p, y_test, config.ece_bins) for k, p in probs.items()}
    return {**metrics, "curves": curves, "train_size": n, "test_size": len(x_test),
            "wall_seconds": wall,
            "params": {"early": kept["bayes"][config.var_early_epoch], "final": final}}  # fmt: skip


def run_variance(key, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    """Study 3, at the digits BNN's early and final parameters."""
    x, y = map(jnp.asarray, digits_data(config.seed)["train"])
    models = {estimator: digits_model(config, estimator) for estimator in ESTIMATORS}
    variance = bnn.make_gradient_variance(models, x, y, batch_size=config.var_batch,
                                          repeats=config.var_repeats)  # fmt: skip
    epochs = {"early": config.var_early_epoch, "final": config.digits_epochs}
    start = time.perf_counter()
    results = {
        k: {"label": f"after epoch {e}", **variance(key, params[k])} for k, e in epochs.items()
    }
    return {**results, "wall_seconds": time.perf_counter() - start}


def train_and_evaluate(config: Config, run: runner.Run) -> dict[str, Any]:
    """The three studies, the record, the report and the plots."""
    mesh = distributed.mesh_from_flags(config.mesh, config.devices, "experiments.bnn")
    start = time.perf_counter()
    regression = run_regression(run.key("regression"), config, mesh)
    regression["wall_seconds"] = time.perf_counter() - start
    digits = run_digits(run.key("digits"), config, mesh, run.progress)
    variance = run_variance(run.key("variance"), config, digits.pop("params"))
    record = run.finish({"regression": regression, "digits": digits, "variance": variance})
    report.write(record, run.workdir)
    return record


def main(argv: list[str] | None = None) -> int:
    config, flags = runner.cli(Config, Config.quick, argv, validate=validate)
    run = runner.start("bnn", config, flags, argv)
    record = train_and_evaluate(config, run)
    print(f"wrote {run.workdir}: {report.headline(record)}")
    for message in (failed := report.checks_failed(record)):
        print("check failed:", message, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(runner.main(main))
