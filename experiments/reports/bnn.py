"""The BNN report, built from a run's record alone (`render(record)`), so it can be regenerated
from a committed record: the markdown, the two plots, the one-line headline and the checks a
run must pass."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from experiments import runner

ESTIMATORS = ("bbb", "local", "flipout")
INSIDE = (0.0, 0.5)  # the regression's data range


def checks_failed(record: Mapping[str, Any]) -> list[str]:
    """What every run must show: the regression ELBO went down and its band widens away from
    the data; the digits losses went down, the metrics are finite, and the BNN classifies far
    above chance (10 classes)."""
    results, failed = record["results"], []
    bayes, digits = results["regression"]["bayes"], results["digits"]
    if not bayes["loss_last"] < bayes["loss_first"]:
        failed.append(
            f"regression loss did not decrease: {bayes['loss_first']} -> {bayes['loss_last']}"
        )
    band = bayes["band"]
    if not (band["ratio_left"] > 1.0 and band["ratio_far_right"] > 1.5):
        failed.append(f"band does not widen away from the data: {band}")
    for curve in ("bayes_loss", "det_loss"):
        values = digits["curves"][curve]
        if not values[-1] < values[0]:
            failed.append(f"digits {curve} did not decrease: {values[0]} -> {values[-1]}")
    for name in ("bayes", "bayes_mean_weights", "deterministic"):
        if not all(math.isfinite(v) for v in digits[name].values()):
            failed.append(f"non-finite digits metrics for {name}: {digits[name]}")
    if not digits["bayes"]["accuracy"] > 0.8:
        failed.append(f"the BNN's test accuracy {digits['bayes']['accuracy']} is not above 0.8")
    return failed


def headline(record: Mapping[str, Any]) -> str:
    digits, band = record["results"]["digits"], record["results"]["regression"]["bayes"]["band"]
    bayes, det = digits["bayes"], digits["deterministic"]
    return (
        f"digits acc/ECE BNN {bayes['accuracy']:.4f}/{bayes['ece']:.4f}, deterministic "
        f"{det['accuracy']:.4f}/{det['ece']:.4f}; band ×{band['ratio_left']:.1f} left, "
        f"×{band['ratio_far_right']:.1f} at x ≥ 1"
    )


def plot_regression(record: Mapping[str, Any], path: Path) -> None:
    """Predictive mean ± 2σ of the BNN (weights + noise) and of the deterministic net (noise)."""
    plt = runner.pyplot()
    results = record["results"]["regression"]
    grid, bayes, det = np.asarray(results["grid"]), results["bayes"], results["deterministic"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    bands = (
        (axes[0], bayes["mean"], bayes["total_std"], "C0", "± 2σ (weights + noise)",
         "predictive mean", "Bayes by Backprop (scale-mixture prior)"),
        (axes[1], det["mean"], det["noise_scale"], "C1", "± 2σ (noise only)", "prediction",
         "deterministic net (same shape)"),
    )  # fmt: skip
    for ax, mean, std, color, band_label, mean_label, title in bands:
        mean, std = np.asarray(mean), np.asarray(std)
        ax.fill_between(grid, mean - 2 * std, mean + 2 * std, color=color, alpha=0.3,
                        label=band_label)  # fmt: skip
        ax.plot(grid, mean, color=color, label=mean_label)
        ax.set_title(title)
        ax.scatter(results["x"], results["y"], s=6, color="k", label="training data", zorder=3)
        ax.axvspan(*INSIDE, color="gray", alpha=0.08)
        ax.set_xlim(grid[0], grid[-1])
        ax.set_ylim(-1.0, 1.6)
        ax.set_xlabel("x")
        ax.legend(loc="upper left", fontsize=8)
    axes[0].set_ylabel("y")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_variance(record: Mapping[str, Any], path: Path) -> None:
    """Bars of the per-minibatch gradient variance of each estimator, per cell."""
    plt = runner.pyplot()
    results = record["results"]["variance"]
    columns = [(p, m, layer) for p in ("early", "final") for m in ("fixed", "random")
               for layer in ("bottom", "top")]  # fmt: skip
    fig, ax = plt.subplots(figsize=(10, 4))
    width, positions = 0.27, np.arange(len(columns))
    for i, estimator in enumerate(ESTIMATORS):
        values = [results[p][estimator][f"{m}_{layer}_loc"] for p, m, layer in columns]
        ax.bar(positions + (i - 1) * width, values, width, label=estimator)
    ax.set_xticks(positions)
    ax.set_xticklabels([f"{p}\n{m} batch\n{layer}" for p, m, layer in columns], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("mean variance of ∂/∂μ (per kernel entry)")
    ax.set_title("Per-minibatch gradient variance (digits BNN, Kingma et al. 2015 Table 1)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write(record: Mapping[str, Any], folder: Path) -> None:
    """bnn.md, bnn_regression.png and bnn_gradient_variance.png of `record` into `folder`."""
    plot_regression(record, folder / "bnn_regression.png")
    plot_variance(record, folder / "bnn_gradient_variance.png")
    (folder / "bnn.md").write_text(render(record))


def render(record: Mapping[str, Any]) -> str:
    """The markdown report of a `python -m experiments.bnn` record."""
    config, results = record["config"], record["results"]
    reg, digits, var = results["regression"], results["digits"], results["variance"]
    band, band_ep = reg["bayes"]["band"], reg["bayes"]["band_epistemic"]
    scales = config["reg_mixture_scales"]
    lines = [
        "# Bayesian neural networks (reparam.nn.BayesianDense)",
        "",
        f"Command: `{record['command']}`  ",
        f"Commit {record['provenance']['commit']}, {record['provenance']['date']}. "
        f"Machine: {runner.describe_machine(record)}  ",
        f"Wall time: regression {reg['wall_seconds']:.0f} s, digits training "
        f"{digits['wall_seconds']:.0f} s, gradient variance {var['wall_seconds']:.0f} s; total "
        f"{record['wall_seconds']:.0f} s wall, {record['cpu_seconds']:.0f} s CPU (all threads)",
        "",
        "## 1. Regression curve (Blundell et al. 2015, Figure 5)",
        "",
        f"{config['reg_points']} points x ~ U[0, 0.5]; MLP {tuple(config['reg_hidden'])} ReLU; "
        f"estimator `{config['reg_estimator']}`, prior `{config['reg_prior']}` (s₁, s₂ = "
        f"{scales[0]:.3g}, {scales[1]:.3g}, π = {config['reg_mixture_weight']}); "
        f"{config['reg_steps']} full-batch Adam steps; {config['reg_samples']} posterior "
        f"samples. Learned noise σ: BNN {reg['bayes']['noise_scale']:.3f}, deterministic "
        f"{reg['deterministic']['noise_scale']:.3f}.",
        "",
        "| predictive std | inside [0, 0.5] | left (x < −0.05) | right (x > 0.65) | x ≥ 1 |",
        "|---|---|---|---|---|",
        *(
            f"| {label} | {b['std_inside']:.3f} | {b['std_left']:.3f} | {b['std_right']:.3f} | "
            f"{b['std_far_right']:.3f} |"
            for label, b in (("total (weights + noise)", band), ("weights only", band_ep))
        ),
        "",
        f"Band widening (total std outside / inside): left ×{band['ratio_left']:.1f}, right "
        f"×{band['ratio_right']:.1f}, x ≥ 1 ×{band['ratio_far_right']:.1f}. The deterministic "
        "net's band is its constant noise σ.",
        "",
        "![regression](bnn_regression.png)",
        "",
        "## 2. Digits classification (scikit-learn 8x8 digits)",
        "",
        f"Train {digits['train_size']}, test {digits['test_size']}; MLP "
        f"{tuple(config['digits_hidden'])} ReLU, {config['digits_epochs']} epochs, batch "
        f"{config['digits_batch']}, Adam {config['digits_lr']:g}; BNN: estimator "
        f"`{config['digits_estimator']}`, prior N(0, {config['digits_prior_scale']:g}²), "
        f"predictive average of {config['digits_samples']} samples; ECE with "
        f"{config['ece_bins']} bins.",
        "",
        "| model | test accuracy | test NLL | ECE |",
        "|---|---|---|---|",
        *(
            f"| {name} | {digits[key]['accuracy']:.4f} | {digits[key]['nll']:.4f} | "
            f"{digits[key]['ece']:.4f} |"
            for name, key in (
                ("BNN (MC predictive)", "bayes"),
                ("BNN (posterior mean weights)", "bayes_mean_weights"),
                ("deterministic MLP", "deterministic"),
            )
        ),
        "",
        "## 3. Per-minibatch gradient variance (Kingma et al. 2015, Table 1)",
        "",
        f"Variance of the minibatch (B = {config['var_batch']}) gradient of the expected "
        "log-likelihood w.r.t. the kernel posterior means, averaged over the entries of the "
        f"bottom and top layers; {config['var_repeats']} repeats per cell, same parameters for "
        "the three estimators (the digits BNN). *fixed*: one minibatch, weight noise only; "
        "*random*: fresh minibatch each repeat (what SGD sees). Ratios are to `bbb`.",
        "",
        "| parameters | minibatch | layer | bbb | local | flipout | local / bbb | flipout / bbb |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for point in ("early", "final"):
        entry = var[point]
        for mode in ("fixed", "random"):
            for layer in ("bottom", "top"):
                k = f"{mode}_{layer}_loc"
                b, loc, flip = entry["bbb"][k], entry["local"][k], entry["flipout"][k]
                lines.append(
                    f"| {entry['label']} | {mode} | {layer} | {b:.3g} | {loc:.3g} | {flip:.3g} | "
                    f"{loc / b:.3f} | {flip / b:.3f} |"
                )
    lines += ["", "![gradient variance](bnn_gradient_variance.png)", ""]
    return "\n".join(lines)
