"""Variance of gradient estimators: two published studies, reproduced on CPU.

    python -m experiments.estimator_variance --quick --out runs/estimator_variance_quick
    python -m experiments.estimator_variance --out experiments/results

1. Mohamed, Rosca, Figurnov & Mnih (2020, JMLR), "Monte Carlo Gradient Estimation in Machine
   Learning", the univariate Gaussian study (their Figures 2 and 3): the variance of single-sample
   estimators of ∇μ and ∇σ of E_N(x; μ, σ²)[f(x; k)] for f = (x − k)², exp(−k x²) and cos(k x),
   for the pathwise, score-function (with and without a baseline) and measure-valued (coupled)
   estimators, as a function of k at μ = σ = 1, and across grids of μ (σ = 1) and σ (μ = 0) at
   k = 1. The baseline is b = E[f], the fixed point a moving average of f converges to.
2. Rainforth et al. (2018), "Tighter variational bounds are not necessarily better": the
   signal-to-noise ratio |E ĝ| / std ĝ of the IWAE bound's gradient against K, for the inference
   network (standard estimator: falls like O(1/√K)) and the generative model (rises like
   O(√K)), with DReG (Tucker et al. 2018), whose inference-network SNR rises with K, and STL.
   Their Gaussian model: z ~ N(μ, I), x | z ~ N(z, I) in 20 dimensions, q(z | x) =
   N(a ⊙ x + b, (2/3) I), parameters at the optimum plus N(0, 0.01²) noise (theirs) and plus
   N(0, 0.1²) noise (where the standard estimator's SNR stays above the noise floor longer).

Writes into --out: estimator_variance.json (every number), estimator_variance_tables.md (the
tables, with the command, wall time and machine), estimator_variance_gaussian_k.png,
estimator_variance_gaussian_grid.png and estimator_variance_snr.png. `--quick` (what the tests
run) finishes in seconds with small grids and few repeats.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from reparam import estimators, normal
from reparam.estimators import diagnostics

Array = jax.Array


@dataclass(frozen=True)
class Config:
    """Both studies; the defaults are the full run (a few CPU minutes), `quick()` the test run."""

    # Mohamed et al.: the k sweep at μ = σ = 1 and the μ / σ grids at k = 1.
    ks: tuple[float, ...] = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 7.0, 10.0)
    mus: tuple[float, ...] = (-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0)
    sigmas: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
    gaussian_repeats: int = 200_000
    # Rainforth et al.: SNR against K.
    snr_ks: tuple[int, ...] = (1, 3, 10, 30, 100, 300)
    snr_repeats: int = 4_000
    snr_dim: int = 20
    snr_data: int = 1024
    snr_batch: int = 4  # data points in each gradient estimate
    # Rainforth et al. perturb the optimum by 0.01; there the standard encoder SNR sinks to the
    # noise floor √(2/(πR)) by K ≈ 30, so a second, farther point (0.1) shows the 1/√K decay.
    snr_perturbations: tuple[float, ...] = (0.01, 0.1)
    snr_chunk_elements: int = 4_000_000  # repeats × K × batch × dim vmapped at once (memory)
    seed: int = 0

    @staticmethod
    def quick(**overrides: Any) -> Config:
        base = dict(
            ks=(0.5, 1.0, 3.0),
            mus=(0.0, 1.0),
            sigmas=(0.5, 1.0),
            gaussian_repeats=2_000,
            snr_ks=(1, 10, 100),
            snr_repeats=200,
            snr_perturbations=(0.1,),
            snr_dim=5,
            snr_data=64,
        )
        base.update(overrides)
        return Config(**base)


# ---------------------------------------------------------------- study 1: Mohamed et al. (2020)
# f(x; k) and E_N(μ, σ²)[f] in closed form (checked against quadrature in the tests).
FUNCTIONS: dict[str, tuple[Callable, Callable]] = {
    "(x-k)^2": (
        lambda x, k: (x - k) ** 2,
        lambda mu, sigma, k: (mu - k) ** 2 + sigma**2,
    ),
    "exp(-k x^2)": (
        lambda x, k: jnp.exp(-k * x**2),
        lambda mu, sigma, k: (
            jnp.exp(-k * mu**2 / (1 + 2 * k * sigma**2)) / jnp.sqrt(1 + 2 * k * sigma**2)
        ),
    ),
    "cos(k x)": (
        lambda x, k: jnp.cos(k * x),
        lambda mu, sigma, k: jnp.cos(k * mu) * jnp.exp(-(k**2) * sigma**2 / 2),
    ),
}

ESTIMATORS = ("pathwise", "score_function", "score_function_baseline", "measure_valued")
LABELS = {
    "pathwise": "pathwise",
    "score_function": "score function",
    "score_function_baseline": "score function + baseline",
    "measure_valued": "measure-valued (coupled)",
}


def exact_gradient(name: str, mu: Array, sigma: Array, k: Array) -> tuple[Array, Array]:
    expectation = FUNCTIONS[name][1]
    return jax.grad(lambda m, s: jnp.sum(expectation(m, s, k)), argnums=(0, 1))(mu, sigma)


def make_surrogate(estimator: str, name: str, k: Array, baseline: Array) -> Callable:
    """(key, (loc, scale)) -> surrogate for one estimator, elementwise over the cells."""
    f = lambda x: FUNCTIONS[name][0](x, k)
    if estimator == "pathwise":
        return lambda key, p: estimators.pathwise(key, f, normal, p, 1)
    if estimator == "score_function":
        return lambda key, p: estimators.score_function(key, f, normal, p, 1)
    if estimator == "score_function_baseline":
        return lambda key, p: estimators.score_function(key, f, normal, p, 1, baseline=baseline)
    if estimator == "measure_valued":
        return lambda key, p: estimators.measure_valued(key, f, *p, 1)
    raise ValueError(f"unknown estimator {estimator!r}")


def gaussian_cells(config: Config) -> dict[str, np.ndarray]:
    """Every (μ, σ, k) of the k sweep and the two grids, as flat float64 arrays, with a tag."""
    rows = [("k", 1.0, 1.0, k) for k in config.ks]
    rows += [("mu", mu, 1.0, 1.0) for mu in config.mus]
    rows += [("sigma", 0.0, sigma, 1.0) for sigma in config.sigmas]
    rows += [("key", 0.0, 1.0, 1.0)]  # the cell the summary quotes
    tags, mus, sigmas, ks = zip(*rows, strict=True)
    return {
        "sweep": np.array(tags),
        "mu": np.array(mus, np.float64),
        "sigma": np.array(sigmas, np.float64),
        "k": np.array(ks, np.float64),
    }


def run_gaussian_study(config: Config, progress: bool = True) -> dict[str, Any]:
    """Every (function, estimator) pair in one compiled, vmapped computation (one compilation;
    independent keys per pair), summarized per cell."""
    from tqdm import tqdm

    cells = gaussian_cells(config)
    mu, sigma, k = (jnp.asarray(cells[name]) for name in ("mu", "sigma", "k"))
    results: dict[str, Any] = {name: cells[name].tolist() for name in cells}
    jobs = [(name, estimator) for name in FUNCTIONS for estimator in ESTIMATORS]
    surrogates = {
        job: make_surrogate(job[1], job[0], k, FUNCTIONS[job[0]][1](mu, sigma, k)) for job in jobs
    }

    def estimate(key: Array, params: tuple[Array, Array]) -> dict[str, Any]:
        keys = jax.random.split(key, len(jobs))
        return {
            f"{name}|{estimator}": jax.grad(
                lambda p, s=surrogates[(name, estimator)], key=keys[i]: jnp.sum(s(key, p))
            )(params)
            for i, (name, estimator) in enumerate(jobs)
        }

    # Repeats in chunks of ≈ 2·10⁶ cell-estimates, to bound memory.
    chunk = max(1, min(config.gaussian_repeats, 2_000_000 // (mu.size * len(jobs))))
    with tqdm(total=1, desc="Gaussian study", disable=not progress) as bar:
        stats = diagnostics.statistics(
            jax.random.key(config.seed),
            estimate,
            config.gaussian_repeats,
            (mu, sigma),
            batch_size=chunk,
        )
        bar.update()
    for name, estimator in jobs:
        exact = exact_gradient(name, mu, sigma, k)
        entry = results.setdefault(
            name,
            {
                "exact_mu": np.asarray(exact[0]).tolist(),
                "exact_sigma": np.asarray(exact[1]).tolist(),
            },
        )
        job = f"{name}|{estimator}"
        mean, variance, error = stats.mean[job], stats.variance[job], stats.std_error[job]
        entry[estimator] = {
            "mean_mu": np.asarray(mean[0]).tolist(),
            "mean_sigma": np.asarray(mean[1]).tolist(),
            "variance_mu": np.asarray(variance[0]).tolist(),
            "variance_sigma": np.asarray(variance[1]).tolist(),
            # |mean − exact| in standard errors: a sanity check that every estimator is unbiased
            "z_mu": (
                np.abs(np.asarray(mean[0] - exact[0])) / np.maximum(np.asarray(error[0]), 1e-300)
            ).tolist(),
            "z_sigma": (
                np.abs(np.asarray(mean[1] - exact[1])) / np.maximum(np.asarray(error[1]), 1e-300)
            ).tolist(),
        }
    return results


# ---------------------------------------------------------------- study 2: Rainforth et al. (2018)
GRADIENTS = ("standard", "dreg", "stl")


def snr_problem(config: Config, perturbation: float) -> dict[str, Array]:
    """Data, the optimal parameters and the perturbed point at which the SNR is measured."""
    keys = jax.random.split(jax.random.key(config.seed + 1), 4)
    d = config.snr_dim
    mu_true = jax.random.normal(keys[0], (d,))
    # x = z + noise with z ~ N(μ, I): marginally x ~ N(μ, 2I).
    x = mu_true + math.sqrt(2.0) * jax.random.normal(keys[1], (config.snr_data, d))
    mu_star = jnp.mean(x, axis=0)  # the maximum-likelihood μ
    # p(z | x) = N((μ + x)/2, I/2): the best a ⊙ x + b is a = 1/2, b = μ/2 (q's variance 2/3
    # is fixed and not the posterior's 1/2, so no estimator has zero variance).
    optimum = {"mu": mu_star, "a": jnp.full((d,), 0.5), "b": mu_star / 2}
    noise = jax.random.normal(keys[2], (3, d)) * perturbation
    params = {name: value + noise[i] for i, (name, value) in enumerate(sorted(optimum.items()))}
    return {"x": x[: config.snr_batch], "params": params}


def snr_surrogate(gradient: str, num_samples: int, x: Array) -> Callable:
    scale = math.sqrt(2.0 / 3.0)

    def surrogate(key: Array, params: dict[str, Array]) -> Array:
        def log_joint(z: Array) -> Array:
            return jnp.sum(normal.log_prob(z, params["mu"], 1.0) + normal.log_prob(x, z, 1.0), -1)

        loc = params["a"] * x + params["b"]
        surrogate, _ = estimators.iwae_surrogate(
            key, log_joint, loc, jnp.full_like(loc, scale), num_samples, gradient=gradient
        )
        return surrogate

    return surrogate


def noise_floor(repeats: int) -> float:
    """E|mean| / std of R draws of a zero-mean estimator: the smallest SNR R repeats resolve."""
    return math.sqrt(2 / (math.pi * repeats))


def run_snr_study(config: Config, progress: bool = True) -> dict[str, Any]:
    """The SNR study at every perturbation of the optimum in `config.snr_perturbations`."""
    results: dict[str, Any] = {
        "ks": list(config.snr_ks),
        "repeats": config.snr_repeats,
        "noise_floor": noise_floor(config.snr_repeats),
    }
    for perturbation in config.snr_perturbations:
        results[str(perturbation)] = run_snr_point(config, perturbation, progress)
    return results


def run_snr_point(config: Config, perturbation: float, progress: bool = True) -> dict[str, Any]:
    """Per K, the three estimators in one compiled computation (independent keys)."""
    from tqdm import tqdm

    problem = snr_problem(config, perturbation)
    results: dict[str, Any] = {}
    per_repeat = config.snr_batch * config.snr_dim * len(GRADIENTS)
    floor = noise_floor(config.snr_repeats)
    desc = f"SNR study (K), perturbation {perturbation}"
    for i, k in enumerate(tqdm(config.snr_ks, desc=desc, disable=not progress)):
        surrogates = [snr_surrogate(gradient, k, problem["x"]) for gradient in GRADIENTS]

        def estimate(key: Array, params: dict[str, Array], surrogates=surrogates) -> list[Any]:
            keys = jax.random.split(key, len(surrogates))
            return [
                jax.grad(lambda p, s=s, key=key: jnp.sum(s(key, p)))(params)
                for s, key in zip(surrogates, keys, strict=True)
            ]

        chunk = max(1, min(config.snr_repeats, config.snr_chunk_elements // (k * per_repeat)))
        stats = diagnostics.statistics(
            jax.random.fold_in(jax.random.key(config.seed + 2), i),
            estimate,
            config.snr_repeats,
            problem["params"],
            batch_size=chunk,
        )
        for gradient, snr in zip(GRADIENTS, stats.snr, strict=True):
            snr = {name: np.asarray(value) for name, value in snr.items()}
            encoder = np.concatenate([snr["a"], snr["b"]])
            results.setdefault(gradient, {})[str(k)] = {
                "encoder_mean": float(encoder.mean()),
                "encoder_median": float(np.median(encoder)),
                "decoder_mean": float(snr["mu"].mean()),
                "decoder_median": float(np.median(snr["mu"])),
            }
    for gradient in GRADIENTS:
        for part in ("encoder", "decoder"):
            ks = np.array(config.snr_ks, np.float64)
            values = np.array([results[gradient][str(k)][f"{part}_mean"] for k in config.snr_ks])
            # Fit only where the SNR is resolved (above twice the noise floor).
            resolved = values > 2 * floor
            slope = (
                np.polyfit(np.log(ks[resolved]), np.log(values[resolved]), 1)[0]
                if resolved.sum() > 1
                else float("nan")
            )
            results[gradient][f"{part}_slope"] = float(slope)
            results[gradient][f"{part}_resolved_ks"] = ks[resolved].astype(int).tolist()
    return results


# ---------------------------------------------------------------- reporting
def machine() -> str:
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(
            line.split(":", 1)[1].strip()
            for line in lines.splitlines()
            if line.startswith("Model name")
        )
    except (OSError, subprocess.CalledProcessError, StopIteration):
        model = platform.processor() or platform.machine()
    return f"{model}, {os.cpu_count()} cores, JAX backend {jax.default_backend()}"


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def gaussian_tables(results: dict[str, Any]) -> list[str]:
    sweep = np.array(results["sweep"])
    lines = []
    key = int(np.flatnonzero(sweep == "key")[0])
    lines += [
        "### Variance at μ = 0, σ = 1, k = 1 (single-sample estimators)",
        "",
        "| f | ∂ | pathwise | score function | SF + baseline | measure-valued "
        "| SF / pathwise | MVD / pathwise |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in FUNCTIONS:
        for which in ("mu", "sigma"):
            v = {e: results[name][e][f"variance_{which}"][key] for e in ESTIMATORS}
            lines.append(
                f"| {name} | {'μ' if which == 'mu' else 'σ'} | "
                + " | ".join(_fmt(v[e]) for e in ESTIMATORS)
                + f" | {_fmt(v['score_function'] / v['pathwise'])}"
                f" | {_fmt(v['measure_valued'] / v['pathwise'])} |"
            )
    for tag, column, title in (
        ("k", "k", "against k at μ = σ = 1 (Mohamed et al.'s Figures 2–3 axis)"),
        ("mu", "mu", "against μ at σ = 1, k = 1"),
        ("sigma", "sigma", "against σ at μ = 0, k = 1"),
    ):
        index = np.flatnonzero(sweep == tag)
        values = np.array(results[column])[index]
        lines += ["", f"### Variance {title}", ""]
        lines.append(
            f"| f | ∂ | {column if column != 'mu' else 'μ'} | "
            + " | ".join(LABELS[e] for e in ESTIMATORS)
            + " |"
        )
        lines.append("|---|---|---|" + "---|" * len(ESTIMATORS))
        for name in FUNCTIONS:
            for which in ("mu", "sigma"):
                for j, value in zip(index, values, strict=True):
                    lines.append(
                        f"| {name} | {'μ' if which == 'mu' else 'σ'} | {value:g} | "
                        + " | ".join(
                            _fmt(results[name][e][f"variance_{which}"][j]) for e in ESTIMATORS
                        )
                        + " |"
                    )
    worst = max(
        max(max(results[name][e]["z_mu"]), max(results[name][e]["z_sigma"]))
        for name in FUNCTIONS
        for e in ESTIMATORS
    )
    lines += [
        "",
        f"Largest |mean − exact| over all cells and estimators: {worst:.2f} standard "
        "errors (all estimators unbiased).",
    ]
    return lines


def snr_table(results: dict[str, Any]) -> list[str]:
    lines = []
    for perturbation in (key for key in results if key not in ("ks", "repeats", "noise_floor")):
        point = results[perturbation]
        lines += [
            f"### SNR of the IWAE gradient against K: optimum + N(0, {perturbation}²) "
            "(mean over parameters)",
            "",
            "| K | "
            + " | ".join(f"{g} encoder" for g in GRADIENTS)
            + " | "
            + " | ".join(f"{g} decoder" for g in GRADIENTS)
            + " |",
            "|---|" + "---|" * (2 * len(GRADIENTS)),
        ]
        for k in results["ks"]:
            cells = [_fmt(point[g][str(k)]["encoder_mean"]) for g in GRADIENTS]
            cells += [_fmt(point[g][str(k)]["decoder_mean"]) for g in GRADIENTS]
            lines.append(f"| {k} | " + " | ".join(cells) + " |")
        lines.append(
            "| slope of log SNR vs log K | "
            + " | ".join(f"{point[g]['encoder_slope']:+.2f}" for g in GRADIENTS)
            + " | "
            + " | ".join(f"{point[g]['decoder_slope']:+.2f}" for g in GRADIENTS)
            + " |"
        )
        lines += [
            "",
            f"Noise floor (the SNR of a zero-mean estimator with {results['repeats']} repeats, "
            f"√(2/(πR))): {results['noise_floor']:.3g}. Slopes are fitted over the K whose SNR is "
            "above twice the floor (standard encoder: K in "
            f"{point['standard']['encoder_resolved_ks']}).",
            "",
        ]
    return lines


def _for_log_plot(values: np.ndarray) -> np.ndarray:
    """Exact zeros (the coupled MVD of an f symmetric about μ: f(μ + σW) = f(μ − σW)) and
    round-off around them would sink a log axis: leave those points out."""
    values = np.asarray(values, np.float64)
    return np.where(values > 1e-12 * np.max(values, initial=0.0), values, np.nan)


def plot_gaussian(results: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = np.array(results["sweep"])
    paths = []
    index = np.flatnonzero(sweep == "k")
    fig, axes = plt.subplots(len(FUNCTIONS), 2, figsize=(10, 3.2 * len(FUNCTIONS)), squeeze=False)
    for row, name in enumerate(FUNCTIONS):
        for col, which in enumerate(("mu", "sigma")):
            ax = axes[row, col]
            for e in ESTIMATORS:
                v = np.array(results[name][e][f"variance_{which}"])[index]
                ax.plot(
                    np.array(results["k"])[index],
                    _for_log_plot(v),
                    marker="o",
                    ms=3,
                    label=LABELS[e],
                )
            ax.set(
                xscale="log",
                yscale="log",
                xlabel="k",
                title=f"{name}: Var ∂/∂{'μ' if which == 'mu' else 'σ'} (μ = σ = 1)",
            )
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    paths.append(out / "estimator_variance_gaussian_k.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(len(FUNCTIONS), 4, figsize=(17, 3.2 * len(FUNCTIONS)), squeeze=False)
    for row, name in enumerate(FUNCTIONS):
        for col, (tag, which) in enumerate(
            (("mu", "mu"), ("mu", "sigma"), ("sigma", "mu"), ("sigma", "sigma"))
        ):
            ax = axes[row, col]
            index = np.flatnonzero(sweep == tag)
            x = np.array(results[tag])[index]
            for e in ESTIMATORS:
                v = np.array(results[name][e][f"variance_{which}"])[index]
                ax.plot(x, _for_log_plot(v), marker="o", ms=3, label=LABELS[e])
            ax.set(
                yscale="log",
                xlabel="μ (σ = 1)" if tag == "mu" else "σ (μ = 0)",
                title=f"{name}: Var ∂/∂{'μ' if which == 'mu' else 'σ'}, k = 1",
            )
            if tag == "sigma":
                ax.set_xscale("log")
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    paths.append(out / "estimator_variance_gaussian_grid.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


def plot_snr(results: dict[str, Any], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = np.array(results["ks"], np.float64)
    points = [key for key in results if key not in ("ks", "repeats", "noise_floor")]
    fig, axes = plt.subplots(len(points), 2, figsize=(10, 3.8 * len(points)), squeeze=False)
    for row, perturbation in enumerate(points):
        point = results[perturbation]
        for ax, part in zip(axes[row], ("encoder", "decoder"), strict=True):
            for g in GRADIENTS:
                ax.plot(
                    ks,
                    [point[g][str(int(k))][f"{part}_mean"] for k in ks],
                    marker="o",
                    label=f"{g} (slope {point[g][f'{part}_slope']:+.2f})",
                )
            ax.axhline(results["noise_floor"], color="gray", ls=":", label="noise floor")
            ax.set(
                xscale="log",
                yscale="log",
                xlabel="K",
                ylabel="mean SNR over parameters",
                title=f"{'inference network' if part == 'encoder' else 'generative model'}, "
                f"optimum + N(0, {perturbation}²)",
            )
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "estimator_variance_snr.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------- entry point
def run(config: Config, out: Path, command: str, progress: bool = True) -> dict[str, Any]:
    """Run both studies and write JSON, tables and plots into `out`; returns the JSON record."""
    jax.config.update("jax_enable_x64", True)
    out.mkdir(parents=True, exist_ok=True)
    where = machine()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    start, cpu = time.perf_counter(), time.process_time()
    gaussian = run_gaussian_study(config, progress)
    gaussian_seconds, gaussian_cpu = time.perf_counter() - start, time.process_time() - cpu
    start, cpu = time.perf_counter(), time.process_time()
    snr = run_snr_study(config, progress)
    snr_seconds, snr_cpu = time.perf_counter() - start, time.process_time() - cpu
    record = {
        "config": dataclasses.asdict(config),
        "command": command,
        "machine": where,
        "load_average_at_start": load,
        "wall_seconds": {"gaussian": gaussian_seconds, "snr": snr_seconds},
        # CPU seconds of this process (all its threads): what the run costs on an idle machine.
        "cpu_seconds": {"gaussian": gaussian_cpu, "snr": snr_cpu},
        "gaussian": gaussian,
        "snr": snr,
    }
    (out / "estimator_variance.json").write_text(json.dumps(record, indent=1))
    header = [
        f"Command: `{command}`  ",
        f"Machine: {where}; 1-minute load average at start {load:.1f}  ",
        f"Wall time: Gaussian study {gaussian_seconds:.1f} s, SNR study {snr_seconds:.1f} s; "
        f"CPU time {gaussian_cpu:.1f} s and {snr_cpu:.1f} s "
        f"(float64, {config.gaussian_repeats} repeats per cell; SNR: {config.snr_repeats} "
        f"repeats, d = {config.snr_dim}, {config.snr_batch} data points per estimate, "
        f"perturbations {list(config.snr_perturbations)})",
        "",
    ]
    tables = header + gaussian_tables(gaussian) + [""] + snr_table(snr) + [""]
    (out / "estimator_variance_tables.md").write_text("\n".join(tables))
    plot_gaussian(gaussian, out)
    plot_snr(snr, out)
    return record


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.estimator_variance",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="seconds-long run (the tests')")
    parser.add_argument("--out", default="runs/estimator_variance", help="output folder")
    parser.add_argument("--repeats", type=int, help="repeats per Gaussian cell")
    parser.add_argument("--snr-repeats", type=int, help="repeats per K in the SNR study")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    overrides = {
        name: value
        for name, value in (
            ("gaussian_repeats", args.repeats),
            ("snr_repeats", args.snr_repeats),
            ("seed", args.seed),
        )
        if value is not None
    }
    config = Config.quick(**overrides) if args.quick else Config(**overrides)
    command = "python -m experiments.estimator_variance " + shlex.join(argv)
    record = run(config, Path(args.out), command.strip(), progress=not args.no_progress)
    print(
        f"wrote {args.out}: Gaussian {record['wall_seconds']['gaussian']:.1f} s, "
        f"SNR {record['wall_seconds']['snr']:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
