"""Variance of gradient estimators: two published studies, reproduced on CPU.

    python -m experiments.estimator_variance --quick          # seconds (the tests' run)
    python -m experiments.estimator_variance --workdir runs/ev # the full run (CPU minutes)

1. Mohamed, Rosca, Figurnov & Mnih (2020, JMLR), the univariate Gaussian study (their Figures
   2–3): the variance of single-sample pathwise, score-function (with and without the baseline
   b = E[f]) and coupled measure-valued estimators of ∇μ, ∇σ of E_N(x; μ, σ²)[f(x; k)] for
   f = (x − k)², exp(−k x²), cos(k x): against k at μ = σ = 1, and over μ and σ grids at k = 1.
2. Rainforth et al. (2018): the SNR |E ĝ| / std ĝ of the IWAE gradient against K for the
   inference network (standard estimator: falls like 1/√K; DReG, Tucker et al. 2018: rises)
   and the generative model (rises like √K), and STL. Their model: z ~ N(μ, I), x | z ~ N(z, I),
   q(z | x) = N(a ⊙ x + b, (2/3) I), at the optimum plus N(0, 0.01²) noise (theirs) and 0.1².

Writes record.json, estimator_variance_tables.md and three PNGs into the work directory; the
tables and plots come from the record alone (experiments/reports/estimator_variance.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from experiments import runner
from experiments.reports import estimator_variance as report
from reparam import estimators, normal
from reparam.estimators import diagnostics

Array = jax.Array


@dataclass(frozen=True)
class Config:
    """Both studies; the defaults are the full run (a few CPU minutes), `quick()` the test run."""

    ks: tuple[float, ...] = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 7.0, 10.0)
    """Mohamed et al.: the k of the sweep at μ = σ = 1."""
    mus: tuple[float, ...] = (-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0)
    """Mohamed et al.: the μ grid at σ = 1, k = 1."""
    sigmas: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
    """Mohamed et al.: the σ grid at μ = 0, k = 1."""
    gaussian_repeats: int = 200_000
    """Independent single-sample estimates per cell."""
    snr_ks: tuple[int, ...] = (1, 3, 10, 30, 100, 300)
    """Rainforth et al.: the numbers of importance samples K."""
    snr_repeats: int = 4_000
    """Independent gradient estimates per K."""
    snr_dim: int = 20
    """Dimension of z and x."""
    snr_data: int = 1024
    """Data points drawn (the optimum is the maximum-likelihood fit to them)."""
    snr_batch: int = 4
    """Data points in each gradient estimate."""
    snr_perturbations: tuple[float, ...] = (0.01, 0.1)
    """SDs of the noise added to the optimum: at 0.01 (theirs) the standard encoder SNR sinks to
    the noise floor √(2/(πR)) by K ≈ 30; 0.1 shows the 1/√K decay longer."""
    seed: int = 0
    """Seed of every key stream."""

    @staticmethod
    def quick() -> Config:
        """Small grids, few repeats: seconds of running, mostly compiling."""
        return Config(
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


# ---------------------------------------------------------------- study 1: Mohamed et al. (2020)
# f(x; k) and E_N(μ, σ²)[f] in closed form (checked against quadrature in the tests).
FUNCTIONS: dict[str, tuple[Callable, Callable]] = {
    "(x-k)^2": (lambda x, k: (x - k) ** 2, lambda m, s, k: (m - k) ** 2 + s**2),
    "exp(-k x^2)": (
        lambda x, k: jnp.exp(-k * x**2),
        lambda m, s, k: jnp.exp(-k * m**2 / (1 + 2 * k * s**2)) / jnp.sqrt(1 + 2 * k * s**2),
    ),
    "cos(k x)": (
        lambda x, k: jnp.cos(k * x),
        lambda m, s, k: jnp.cos(k * m) * jnp.exp(-((k * s) ** 2) / 2),
    ),
}
ESTIMATORS = ("pathwise", "score_function", "score_function_baseline", "measure_valued")


def make_surrogate(estimator: str, name: str, k: Array, baseline: Array) -> Callable:
    """(key, (loc, scale)) -> surrogate for one estimator, elementwise over the cells."""
    f = lambda x: FUNCTIONS[name][0](x, k)
    return {
        "pathwise": lambda key, p: estimators.pathwise(key, f, normal, p, 1),
        "score_function": lambda key, p: estimators.score_function(key, f, normal, p, 1),
        "score_function_baseline": lambda key, p: estimators.score_function(
            key, f, normal, p, 1, baseline=baseline
        ),
        "measure_valued": lambda key, p: estimators.measure_valued(key, f, *p, 1),
    }[estimator]


def independent_gradients(surrogates: list[Callable]) -> Callable:
    """(key, params) -> [∇params Σ s(keyᵢ, params) for each surrogate s], with independent keys."""

    def estimate(key: Array, params: Any) -> list[Any]:
        keys = jax.random.split(key, len(surrogates))
        totals = [lambda p, i=i: jnp.sum(surrogates[i](keys[i], p)) for i in range(len(keys))]
        return [jax.grad(total)(params) for total in totals]

    return estimate


def gaussian_cells(config: Config) -> dict[str, np.ndarray]:
    """Every (μ, σ, k) of the k sweep and the two grids, as flat float64 arrays, with a tag."""
    rows = [("k", 1.0, 1.0, k) for k in config.ks]
    rows += [("mu", mu, 1.0, 1.0) for mu in config.mus]
    rows += [("sigma", 0.0, sigma, 1.0) for sigma in config.sigmas]
    rows += [("key", 0.0, 1.0, 1.0)]  # the cell the summary quotes
    columns = [np.array(column) for column in zip(*rows, strict=True)]
    return dict(zip(("sweep", "mu", "sigma", "k"), columns, strict=True))


def run_gaussian_study(key: Array, config: Config) -> dict[str, Any]:
    """Every (function, estimator) pair in one compiled, vmapped computation (one compilation;
    independent keys per pair), summarized per cell: mean, variance, and |mean − exact| in
    standard errors (every estimator is unbiased, so these stay small)."""
    cells = gaussian_cells(config)
    mu, sigma, k = (jnp.asarray(cells[name], jnp.float64) for name in ("mu", "sigma", "k"))
    jobs = [(name, estimator) for name in FUNCTIONS for estimator in ESTIMATORS]
    surrogates = [make_surrogate(e, name, k, FUNCTIONS[name][1](mu, sigma, k)) for name, e in jobs]

    estimate = independent_gradients(surrogates)
    # Repeats in chunks of ≈ 2·10⁶ cell-estimates, to bound memory.
    chunk = max(1, min(config.gaussian_repeats, 2_000_000 // (mu.size * len(jobs))))
    stats = diagnostics.statistics(
        key, estimate, config.gaussian_repeats, (mu, sigma), batch_size=chunk
    )
    results: dict[str, Any] = dict(cells)
    for i, (name, estimator) in enumerate(jobs):
        exact = jax.grad(lambda m, s, f=FUNCTIONS[name][1]: jnp.sum(f(m, s, k)), (0, 1))(mu, sigma)
        entry = results.setdefault(name, {"exact_mu": exact[0], "exact_sigma": exact[1]})
        mean, variance, error = stats.mean[i], stats.variance[i], stats.std_error[i]
        entry[estimator] = {
            f"{stat}_{which}": value
            for j, which in enumerate(("mu", "sigma"))
            for stat, value in (
                ("mean", mean[j]),
                ("variance", variance[j]),
                ("z", jnp.abs(mean[j] - exact[j]) / jnp.maximum(error[j], 1e-300)),
            )
        }
    return results


# ---------------------------------------------------------------- study 2: Rainforth et al. (2018)
GRADIENTS = ("standard", "dreg", "stl")
CHUNK_ELEMENTS = 4_000_000  # repeats × K × batch × dim vmapped at once (bounds memory)


def snr_problem(key: Array, config: Config, perturbation: float) -> tuple[Array, dict]:
    """A batch of data, and the optimum plus perturbation × one fixed noise direction."""
    mu_key, data_key, noise_key = jax.random.split(key, 3)
    d = config.snr_dim
    mu_true = jax.random.normal(mu_key, (d,))
    # x = z + noise with z ~ N(μ, I): marginally x ~ N(μ, 2I).
    x = mu_true + math.sqrt(2.0) * jax.random.normal(data_key, (config.snr_data, d))
    mu_star = jnp.mean(x, axis=0)  # the maximum-likelihood μ
    # p(z | x) = N((μ + x)/2, I/2): the best a ⊙ x + b is a = 1/2, b = μ/2 (q's variance 2/3
    # is fixed and not the posterior's 1/2, so no estimator has zero variance).
    optimum = {"a": jnp.full((d,), 0.5), "b": mu_star / 2, "mu": mu_star}
    noise = jax.random.normal(noise_key, (3, d)) * perturbation
    return x[: config.snr_batch], {n: v + noise[i] for i, (n, v) in enumerate(optimum.items())}


def snr_surrogate(gradient: str, num_samples: int, x: Array) -> Callable:
    def surrogate(key: Array, params: dict[str, Array]) -> Array:
        def log_joint(z: Array) -> Array:
            return jnp.sum(normal.log_prob(z, params["mu"], 1.0) + normal.log_prob(x, z, 1.0), -1)

        loc = params["a"] * x + params["b"]
        scale = jnp.full_like(loc, math.sqrt(2.0 / 3.0))
        value, _ = estimators.iwae_surrogate(
            key, log_joint, loc, scale, num_samples, gradient=gradient
        )
        return value

    return surrogate


def run_snr_study(problem_key: Array, estimate_key: Array, config: Config) -> dict[str, Any]:
    """Per perturbation and K, the mean and median SNR over the encoder's (a, b) and the
    decoder's (μ) parameters, for each gradient; the three estimators in one compilation per K
    (independent keys), the same keys at every perturbation (common random numbers)."""
    results: dict[str, Any] = {"ks": config.snr_ks, "repeats": config.snr_repeats}
    results["perturbations"] = {}
    for perturbation in config.snr_perturbations:
        x, params = snr_problem(jax.random.clone(problem_key), config, perturbation)  # same keys
        point = results["perturbations"][str(perturbation)] = {g: {} for g in GRADIENTS}
        for k in config.snr_ks:
            surrogates = [snr_surrogate(g, k, x) for g in GRADIENTS]
            estimate = independent_gradients(surrogates)
            per_repeat = k * config.snr_batch * config.snr_dim * len(GRADIENTS)
            chunk = max(1, min(config.snr_repeats, CHUNK_ELEMENTS // per_repeat))
            key = jax.random.fold_in(jax.random.clone(estimate_key), k)  # this K's stream
            stats = diagnostics.statistics(
                key, estimate, config.snr_repeats, params, batch_size=chunk
            )
            for gradient, snr in zip(GRADIENTS, stats.snr, strict=True):
                parts = {"encoder": np.concatenate([snr["a"], snr["b"]]), "decoder": snr["mu"]}
                point[gradient][str(k)] = {
                    f"{part}_{stat}": float(fn(np.asarray(v)))
                    for part, v in parts.items()
                    for stat, fn in (("mean", np.mean), ("median", np.median))
                }
    return results


def main(argv: list[str] | None = None) -> int:
    config, flags = runner.cli(Config, Config.quick, argv)
    run = runner.start("estimator_variance", config, flags, argv)
    jax.config.update("jax_enable_x64", True)  # the Gaussian study's variances span 12 decades
    seconds: dict[str, dict[str, float]] = {"wall": {}, "cpu": {}}
    results: dict[str, Any] = {"seconds": seconds}
    for study, compute in (
        ("gaussian", lambda: run_gaussian_study(run.key("gaussian"), config)),
        ("snr", lambda: run_snr_study(run.key("snr/problem"), run.key("snr/estimates"), config)),
    ):
        start, cpu = time.perf_counter(), time.process_time()
        results[study] = compute()
        seconds["wall"][study] = time.perf_counter() - start
        seconds["cpu"][study] = time.process_time() - cpu
    record = run.finish(results)
    (run.workdir / "estimator_variance_tables.md").write_text(report.render(record))
    report.plot(record, run.workdir)
    print(f"wrote {run.workdir}/estimator_variance_tables.md ({record['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(runner.main(main))
