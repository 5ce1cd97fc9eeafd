"""The estimator-variance tables and plots, from the run's record alone
(experiments/estimator_variance.py)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from experiments import runner

LABELS = {
    "pathwise": "pathwise",
    "score_function": "score function",
    "score_function_baseline": "score function + baseline",
    "measure_valued": "measure-valued (coupled)",
}
ESTIMATORS = tuple(LABELS)
PARTIAL = {"mu": "μ", "sigma": "σ"}
SWEEPS = (
    ("k", "against k at μ = σ = 1 (Mohamed et al.'s Figures 2–3 axis)"),
    ("mu", "against μ at σ = 1, k = 1"),
    ("sigma", "against σ at μ = 0, k = 1"),
)


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def functions(gaussian: dict[str, Any]) -> list[str]:
    """The test functions f of a record's Gaussian study, in run order."""
    return [name for name, value in gaussian.items() if isinstance(value, dict)]


def noise_floor(repeats: int) -> float:
    """E|mean| / std of R draws of a zero-mean estimator: the smallest SNR R repeats resolve."""
    return math.sqrt(2 / (math.pi * repeats))


def slopes(snr: dict[str, Any], perturbation: str) -> dict[str, dict[str, Any]]:
    """Per gradient and part (encoder, decoder): the slope of log mean SNR against log K, fitted
    where the SNR is resolved (above twice the noise floor), and those K."""
    ks = np.array(snr["ks"], np.float64)
    floor = noise_floor(snr["repeats"])
    out: dict[str, dict[str, Any]] = {}
    for gradient, per_k in snr["perturbations"][perturbation].items():
        for part in ("encoder", "decoder"):
            values = np.array([per_k[str(k)][f"{part}_mean"] for k in snr["ks"]])
            resolved = values > 2 * floor
            slope = (
                np.polyfit(np.log(ks[resolved]), np.log(values[resolved]), 1)[0]
                if resolved.sum() > 1
                else float("nan")
            )
            out.setdefault(gradient, {})[part] = float(slope)
            out[gradient][f"{part}_resolved_ks"] = ks[resolved].astype(int).tolist()
    return out


def gaussian_tables(gaussian: dict[str, Any]) -> list[str]:
    sweep = np.array(gaussian["sweep"])
    key = int(np.flatnonzero(sweep == "key")[0])
    lines = [
        "### Variance at μ = 0, σ = 1, k = 1 (single-sample estimators)",
        "",
        "| f | ∂ | pathwise | score function | SF + baseline | measure-valued "
        "| SF / pathwise | MVD / pathwise |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in functions(gaussian):
        for which, symbol in PARTIAL.items():
            v = {e: gaussian[name][e][f"variance_{which}"][key] for e in ESTIMATORS}
            lines.append(
                f"| {name} | {symbol} | {' | '.join(_fmt(v[e]) for e in ESTIMATORS)} "
                f"| {_fmt(v['score_function'] / v['pathwise'])} "
                f"| {_fmt(v['measure_valued'] / v['pathwise'])} |"
            )
    for tag, title in SWEEPS:
        index = np.flatnonzero(sweep == tag)
        lines += ["", f"### Variance {title}", ""]
        lines.append(f"| f | ∂ | {PARTIAL.get(tag, tag)} | {' | '.join(LABELS.values())} |")
        lines.append("|---|---|---|" + "---|" * len(ESTIMATORS))
        for name in functions(gaussian):
            for which, symbol in PARTIAL.items():
                for j in index:
                    cells = [_fmt(gaussian[name][e][f"variance_{which}"][j]) for e in ESTIMATORS]
                    lines.append(
                        f"| {name} | {symbol} | {gaussian[tag][j]:g} | {' | '.join(cells)} |"
                    )
    worst = max(
        max(gaussian[name][e][f"z_{which}"])
        for name in functions(gaussian)
        for e in ESTIMATORS
        for which in PARTIAL
    )
    return [
        *lines,
        "",
        f"Largest |mean − exact| over all cells and estimators: {worst:.2f} standard errors "
        "(all estimators unbiased).",
    ]


def snr_tables(snr: dict[str, Any]) -> list[str]:
    lines = []
    for perturbation, point in snr["perturbations"].items():
        gradients, fitted = list(point), slopes(snr, perturbation)
        lines += [
            f"### SNR of the IWAE gradient against K: optimum + N(0, {perturbation}²) "
            "(mean over parameters)",
            "",
            f"| K | {' | '.join(f'{g} encoder' for g in gradients)} "
            f"| {' | '.join(f'{g} decoder' for g in gradients)} |",
            "|---|" + "---|" * (2 * len(gradients)),
        ]
        for k in snr["ks"]:
            cells = [
                _fmt(point[g][str(k)][f"{part}_mean"])
                for part in ("encoder", "decoder")
                for g in gradients
            ]
            lines.append(f"| {k} | {' | '.join(cells)} |")
        cells = [f"{fitted[g][part]:+.2f}" for part in ("encoder", "decoder") for g in gradients]
        lines += [
            f"| slope of log SNR vs log K | {' | '.join(cells)} |",
            "",
            f"Noise floor (the SNR of a zero-mean estimator with {snr['repeats']} repeats, "
            f"√(2/(πR))): {noise_floor(snr['repeats']):.3g}. Slopes are fitted over the K whose "
            "SNR is above twice the floor (standard encoder: K in "
            f"{fitted['standard']['encoder_resolved_ks']}).",
            "",
        ]
    return lines


def render(record: dict[str, Any]) -> str:
    """The tables of one run, from its record."""
    config, results, p = record["config"], record["results"], record["provenance"]
    wall, cpu = results["seconds"]["wall"], results["seconds"]["cpu"]
    dirty = " (with uncommitted changes)" if p.get("dirty") else ""
    header = [
        f"Command: `{record['command']}`  ",
        f"Run: {p['date']}, commit {p['commit']}{dirty}; {runner.describe_machine(record)}  ",
        f"Wall time: Gaussian study {wall['gaussian']:.1f} s, SNR study {wall['snr']:.1f} s; "
        f"CPU time {cpu['gaussian']:.1f} s and {cpu['snr']:.1f} s (float64, "
        f"{config['gaussian_repeats']} repeats per cell; SNR: {config['snr_repeats']} repeats, "
        f"d = {config['snr_dim']}, {config['snr_batch']} data points per estimate, "
        f"perturbations {list(config['snr_perturbations'])})",
        "",
    ]
    tables = [*gaussian_tables(results["gaussian"]), "", *snr_tables(results["snr"])]
    return "\n".join([*header, *tables, ""])


def _for_log_plot(values: Any) -> np.ndarray:
    """Exact zeros (the coupled MVD of an f symmetric about μ: f(μ + σW) = f(μ − σW)) and
    round-off around them would sink a log axis: leave those points out."""
    values = np.asarray(values, np.float64)
    return np.where(values > 1e-12 * np.max(values, initial=0.0), values, np.nan)


def plot(record: dict[str, Any], out: Path) -> list[Path]:
    """estimator_variance_gaussian_k.png, _gaussian_grid.png and _snr.png into `out`."""
    plt = runner.pyplot()
    gaussian, snr = record["results"]["gaussian"], record["results"]["snr"]
    sweep, names = np.array(gaussian["sweep"]), functions(gaussian)
    panels = {
        "gaussian_k": [("k", "mu"), ("k", "sigma")],
        "gaussian_grid": [("mu", "mu"), ("mu", "sigma"), ("sigma", "mu"), ("sigma", "sigma")],
    }
    paths = []
    for stem, columns in panels.items():
        fig, axes = plt.subplots(
            len(names), len(columns), figsize=(4.3 * len(columns), 3.2 * len(names)), squeeze=False
        )
        for row, name in enumerate(names):
            for ax, (tag, which) in zip(axes[row], columns, strict=True):
                index = np.flatnonzero(sweep == tag)
                x = np.array(gaussian[tag])[index]
                for e in ESTIMATORS:
                    v = np.array(gaussian[name][e][f"variance_{which}"])[index]
                    ax.plot(x, _for_log_plot(v), marker="o", ms=3, label=LABELS[e])
                at = {"k": "μ = σ = 1", "mu": "σ = 1, k = 1", "sigma": "μ = 0, k = 1"}[tag]
                ax.set(
                    yscale="log",
                    xlabel=PARTIAL.get(tag, tag),
                    title=f"{name}: Var ∂/∂{PARTIAL[which]} ({at})",
                )
                ax.set_xscale("log" if tag != "mu" else "linear")
                ax.grid(alpha=0.3)
        axes[0, 0].legend(fontsize=8)
        fig.tight_layout()
        paths.append(Path(out) / f"estimator_variance_{stem}.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)

    points = snr["perturbations"]
    fig, axes = plt.subplots(len(points), 2, figsize=(10, 3.8 * len(points)), squeeze=False)
    for row, (perturbation, point) in enumerate(points.items()):
        fitted = slopes(snr, perturbation)
        for ax, part in zip(axes[row], ("encoder", "decoder"), strict=True):
            for g, per_k in point.items():
                values = [per_k[str(k)][f"{part}_mean"] for k in snr["ks"]]
                ax.plot(snr["ks"], values, marker="o", label=f"{g} (slope {fitted[g][part]:+.2f})")
            ax.axhline(noise_floor(snr["repeats"]), color="gray", ls=":", label="noise floor")
            network = "inference network" if part == "encoder" else "generative model"
            ax.set(xscale="log", yscale="log", xlabel="K", ylabel="mean SNR over parameters",
                   title=f"{network}, optimum + N(0, {perturbation}²)")  # fmt: skip
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(Path(out) / "estimator_variance_snr.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths
