"""Black-box VI (`reparam.vi`) on graphical models, against NUTS and NumPyro SVI, like for like.

Models (experiments/models/): eight schools centered and non-centered, Bayesian logistic
regression on breast cancer, a two-component Gaussian mixture. Per model:

  1. reference: NumPyro NUTS (split R-hat, ESS, divergences);
  2. every reparam.vi variant (family/gradient[/bound-KN][/dirichlet-w]) and every NumPyro
     autoguide runs under ONE rule: the same optax Adam object (cosine-decayed step size),
     starting point, init scale, K = 1 draw per step for the compared pairs (NumPyro:
     Trace_ELBO, 1 particle), and the same convergence test checked at the end of every window
     (window means of the ELBO, |Δ| / max(|mean|, 1) < rtol for `patience` windows in a row,
     `reparam.vi`'s test; for NumPyro a `lax.while_loop` over windows of `svi.update` steps
     that applies it); both return the mean of the (unconstrained) variational parameters over
     the last window. Each fit runs to convergence (timed: median of `timing_repeats` compiled
     calls) and for the whole budget (timed alike); accuracy of both against NUTS.

    python -m experiments.vi_models                      # full run (minutes, mostly compiling)
    python -m experiments.vi_models --quick              # one model, one fit each (the tests)
    python -m experiments.vi_models --models logistic_regression --workdir /tmp/vi
    XLA_FLAGS=--xla_force_host_platform_device_count=4 python -m experiments.vi_models \
        --quick --mesh data --devices 4 --num-samples 4 --workdir /tmp/vi4

Writes record.json, vi_models.md and PNGs into the work directory; the markdown and the plots
come from the record alone (experiments/reports/vi_models.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import jax
import optax

from experiments import runner
from experiments.models import all_models, fitting
from experiments.reports import vi_models as report
from reparam import vi
from reparam.train import distributed

# The reparam.vi variant each NumPyro autoguide is timed and compared against (K = 1, STL).
PEERS = {"AutoNormal": "mean_field/stl", "AutoMultivariateNormal": "full_rank/stl"}
SHOWN_IN_MARGINALS = (
    "mean_field/stl",
    "full_rank/stl",
    "full_rank/stl/dirichlet-w",
    "numpyro/AutoNormal",
    "numpyro/AutoMultivariateNormal",
)


@dataclass(frozen=True)
class Variant:
    """A reparam.vi configuration; its label: family/gradient[/bound-KN][/dirichlet-w]."""

    family: str
    gradient: str
    bound: str = "elbo"
    num_samples: int = 1
    dirichlet_weights: bool = False

    @classmethod
    def parse(cls, label: str, num_samples: int | None = None) -> Variant:
        family, gradient, *rest = label.split("/")
        variant = cls(family, gradient, dirichlet_weights="dirichlet-w" in rest)
        for part in (p for p in rest if p != "dirichlet-w"):
            bound, k = part.split("-K")
            variant = replace(variant, bound=bound, num_samples=int(k))
        return variant if num_samples is None else replace(variant, num_samples=num_samples)

    @property
    def label(self) -> str:
        label = f"{self.family}/{self.gradient}"
        if self.bound != "elbo" or self.num_samples > 1:
            label += f"/{self.bound}-K{self.num_samples}"
        return label + ("/dirichlet-w" if self.dirichlet_weights else "")


@dataclass(frozen=True)
class Config:
    """Black-box VI on graphical models against NUTS and NumPyro SVI, under one rule."""

    models: tuple[str, ...] = (
        "eight_schools_centered",
        "eight_schools_noncentered",
        "logistic_regression",
        "gaussian_mixture",
    )
    """Models to run (experiments/models/)."""
    variants: tuple[str, ...] = (
        "mean_field/standard",
        "mean_field/stl",
        "full_rank/standard",
        "full_rank/stl",
        "low_rank/stl",
        "full_rank/dreg/iwae-K8",
    )
    """reparam.vi variants: family/gradient[/bound-KN][/dirichlet-w]."""
    mixture_extra: tuple[str, ...] = ("mean_field/stl/dirichlet-w", "full_rank/stl/dirichlet-w")
    """Extra variants for the mixture only (weights as a Dirichlet factor)."""
    numpyro_guides: tuple[str, ...] = ("AutoNormal", "AutoMultivariateNormal")
    """NumPyro autoguides (peers: AutoNormal ~ mean_field/stl, AutoMultivariateNormal ~
    full_rank/stl)."""
    num_samples: int | None = None
    """K draws per step for every reparam.vi variant (None: each variant's own)."""
    num_steps: int = 10_000
    """Step budget of every fit (a multiple of --window)."""
    learning_rate: float = 1e-2
    """Adam's initial step size."""
    final_lr_fraction: float = 1e-2
    """Cosine decay of the step size to this fraction over the budget (1.0: constant)."""
    init_scale: float = 0.1
    """Initial standard deviations of q in unconstrained space (both libraries)."""
    window: int = 100
    """Steps per window of the convergence test (and of the iterate average)."""
    rtol: float = 1e-2
    """Convergence: relative change of consecutive window means below this ..."""
    patience: int = 3
    """... for this many windows in a row."""
    nuts_chains: int = 4
    """NUTS chains (vectorized)."""
    nuts_warmup: int = 1000
    """NUTS warm-up steps per chain."""
    nuts_draws: int = 5000
    """NUTS draws per chain."""
    target_accept: float = 0.95
    """NUTS target acceptance probability."""
    posterior_draws: int = 20_000
    """Draws of each fitted q for its means and sds."""
    histogram_bins: int = 50
    """Bins of the marginal histograms stored in the record (the plots)."""
    timing_repeats: int = 5
    """Compiled calls per timing; the median is reported."""
    seed: int = 0
    """Seed of every key stream."""
    plots: bool = True
    """Write the PNGs."""
    mesh: str = "none"
    """'none' or 'data': split each reparam.vi step's K draws over a device mesh."""
    devices: int | None = None
    """Devices of the data mesh (None: all)."""

    @staticmethod
    def quick() -> Config:
        """One model, one fit per library, short chains: seconds of running, mostly compiling."""
        return Config(
            models=("gaussian_mixture",),
            variants=("mean_field/stl",),  # AutoNormal's peer: the summary's like-for-like pair
            mixture_extra=(),
            numpyro_guides=("AutoNormal",),
            num_steps=1000,
            window=50,
            nuts_chains=2,
            nuts_warmup=200,
            nuts_draws=200,
            posterior_draws=2000,
            timing_repeats=1,
        )


def validate(config: Config) -> None:
    known = all_models()
    for name in config.models:
        runner.require(name in known, "--models", f"some of {sorted(known)}", name)
    for label in (*config.variants, *config.mixture_extra):
        try:
            v = Variant.parse(label)
        except ValueError:
            v = None
        ok = v is not None and v.family in vi.FAMILIES and v.gradient in vi.GRADIENTS
        ok = ok and v.bound in vi.BOUNDS
        runner.require(ok, "--variants", "family/gradient[/bound-KN][/dirichlet-w]", label)
    for guide in config.numpyro_guides:
        runner.require(guide in PEERS, "--numpyro-guides", f"some of {sorted(PEERS)}", guide)
    runner.require(
        config.num_steps % config.window == 0,
        "--num-steps",
        f"a multiple of --window {config.window}",
        config.num_steps,
    )


def experiment(config: Config, run: runner.Run) -> dict[str, Any]:
    import numpyro  # optional heavy dependency: only the VI study

    models = all_models()
    schedule = optax.cosine_decay_schedule(
        config.learning_rate, config.num_steps, alpha=config.final_lr_fraction
    )
    optimizer = optax.adam(schedule)  # one object: both libraries, every fit (compile caches)
    mesh = distributed.mesh_from_flags(config.mesh, config.devices, "experiments.vi_models")
    for label in (*config.variants, *config.mixture_extra):  # before NUTS spends minutes
        k = Variant.parse(label, config.num_samples).num_samples
        distributed.check_divisible(
            "experiments.vi_models", f"K of {label} (--num-samples)", k, mesh
        )
    dtype = str(jax.numpy.zeros(()).dtype)
    results = {"numpyro": numpyro.__version__, "dtype": dtype, "peers": PEERS, "models": {}}
    references: dict[str, tuple[dict, dict]] = {}
    for name in config.models:
        model = models[name]
        if model.reference not in references:
            key = run.key(f"nuts/{model.reference}")
            references[model.reference] = fitting.run_nuts(models[model.reference], config, key)
        reference, nuts_quantities = references[model.reference]
        fitters = {}
        extra = config.mixture_extra if name == "gaussian_mixture" else ()
        for label in (*config.variants, *extra):
            variant = Variant.parse(label, config.num_samples)
            fitters[variant.label] = fitting.reparam_fitter(model, variant, config, optimizer, mesh)
        for guide in config.numpyro_guides:
            fitters[f"numpyro/{guide}"] = fitting.numpyro_fitter(model, guide, config, optimizer)
        fits, shown = [], {}
        for label, fit in fitters.items():
            keys = (run.key(f"fit/{name}/{label}"), run.key(f"draws/{name}/{label}"))
            entry, quantities = fitting.measure(
                fit, label, model, config, reference["summary"], keys
            )
            fits.append(entry)
            if label in SHOWN_IN_MARGINALS:
                shown[label] = quantities
            if run.progress:
                print(
                    f"{name}: {label} done ({time.perf_counter() - run.started:.0f} s)", flush=True
                )
        results["models"][name] = {
            "title": model.title,
            "reference_model": model.reference,
            "reference": reference,
            "fits": fits,
            "marginals": fitting.histograms(model, nuts_quantities, shown, config.histogram_bins),
        }
    return results


def main(argv: list[str] | None = None) -> int:
    config, flags = runner.cli(Config, Config.quick, argv, validate=validate)
    run = runner.start("vi_models", config, flags, argv)
    record = run.finish(experiment(config, run))
    (run.workdir / "vi_models.md").write_text(report.render(record))
    if config.plots:
        report.plot(record, run.workdir)
    print(f"wrote {run.workdir}/vi_models.md ({record['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(runner.main(main))
