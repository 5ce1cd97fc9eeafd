"""The VI comparison's markdown and plots, from its record alone (experiments/vi_models.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from experiments import runner


def _fit(entry: dict, label: str) -> dict | None:
    return next((f for f in entry["fits"] if f["label"] == label), None)


def _steps(fit: dict) -> str:
    return f"{fit['steps']}" + ("" if fit["status"] == "converged" else f" ({fit['status']})")


def _t_conv(fit: dict) -> str:
    """t_conv, with the part spent in NumPyro's svi.init (per-call setup) in parentheses."""
    setup = fit.get("converge_setup_s")
    return f"{fit['converge_s']:.3f}" + ("" if setup is None else f" (init {setup:.3f})")


def _accuracy(a: dict) -> str:
    return (
        f"{a['max_mean_error_sd']:.3f} ({a['worst_quantity']}) "
        f"| {a['sd_ratio_min']:.2f}–{a['sd_ratio_max']:.2f}"
    )


def rule(config: dict) -> str:
    """The rule every fit of both libraries ran under, in words."""
    lr, final = config["learning_rate"], config["learning_rate"] * config["final_lr_fraction"]
    return (
        f"Every fit, reparam.vi and NumPyro SVI alike: the same optax Adam object (step size {lr} "
        f"cosine-decayed to {final:g} over the budget; NumPyro through `optax_to_numpyro`), the "
        f"same starting point (`init_to_value`) and init scale {config['init_scale']}, one ELBO "
        f"draw per step unless the label says K (NumPyro: Trace_ELBO with "
        f"{config.get('num_samples') or 1} particle(s), as its peer), a budget of "
        f"{config['num_steps']} steps. Convergence, checked after every window of "
        f"{config['window']} steps in both: the window mean of the ELBO changed by "
        f"|Δ| / max(|mean|, 1) < {config['rtol']} for {config['patience']} windows in a row "
        "(`reparam.vi.fit`'s test; NumPyro's `svi.update` steps run in the same window loop, "
        "experiments/models/fitting.py). Both return the mean of the unconstrained variational "
        "parameters over the last window. Each fit runs twice: stopped at convergence (`@conv`) "
        "and for the whole budget (`budget`); both from the same key."
    )


def columns(config: dict) -> str:
    return (
        "Columns: `max|Δμ|/σ` = max over reported quantities of |VI mean − NUTS mean| / NUTS sd "
        f"(from {config['posterior_draws']} draws of q), with the worst quantity; `σ/σ_NUTS` = "
        "range of sd ratios; `steps` = steps run to convergence; `t_conv`, `t_budget` = median "
        f"wall seconds over {config['timing_repeats']} compiled call(s) (reparam.vi: the `vi.fit` "
        "call, checks and setup included; NumPyro: `svi.init` plus the compiled window loop, the "
        "median `svi.init` time in parentheses where recorded); "
        "`t_first` = the first call, compilation included."
    )


def summary(record: dict) -> list[str]:
    lines = [
        "## Summary: reparam.vi against NumPyro SVI under the same rule",
        "",
        "| model | reparam.vi vs NumPyro | steps | t_conv (s) | t_conv ratio "
        "| @conv max\\|Δμ\\|/σ | budget max\\|Δμ\\|/σ | t_budget ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    faster = total = 0
    for entry in record["results"]["models"].values():
        for guide, label in record["results"]["peers"].items():
            ours, theirs = _fit(entry, label), _fit(entry, f"numpyro/{guide}")
            if ours is None or theirs is None:
                continue
            ratio = ours["converge_s"] / theirs["converge_s"]
            faster, total = faster + (ratio <= 1), total + 1
            err = lambda f, when: f"{f[when]['max_mean_error_sd']:.3f}"
            lines.append(
                f"| {entry['title']} | {label} vs {guide} | {_steps(ours)} vs {_steps(theirs)} "
                f"| {_t_conv(ours)} vs {_t_conv(theirs)} | {ratio:.2f} "
                f"| {err(ours, 'at_convergence')} vs {err(theirs, 'at_convergence')} "
                f"| {err(ours, 'budget')} vs {err(theirs, 'budget')} "
                f"| {ours['budget_s'] / theirs['budget_s']:.2f} |"
            )
    lines += [
        "",
        f"Ratios are reparam.vi / NumPyro (< 1: reparam.vi faster). reparam.vi reached a "
        f"converged fit no later than NumPyro SVI in {faster} of {total} comparisons.",
        "",
    ]
    return lines


def render(record: dict[str, Any]) -> str:
    """The results markdown of one run, from its record."""
    config, results, p = record["config"], record["results"], record["provenance"]
    dirty = " (with uncommitted changes)" if p.get("dirty") else ""
    lines = [
        "# Black-box VI on graphical models, against NUTS and NumPyro SVI",
        "",
        f"Command: `{record['command']}`  ",
        f"Run: {p['date']}, commit {p['commit']}{dirty}; {runner.describe_machine(record)}; "
        f"jax {p['jax']}, numpyro {results['numpyro']}, {results['dtype']}. Wall time "
        f"{record['wall_seconds']:.0f} s, CPU time {record['cpu_seconds']:.0f} s.",
        "",
        rule(config),
        "",
        columns(config),
        "",
        *summary(record),
    ]
    for name, entry in results["models"].items():
        ref = entry["reference"]
        lines += [
            f"## {entry['title']}",
            "",
            f"NUTS reference ({entry['reference_model']}): {ref['chains']} chains × "
            f"{ref['draws']} draws after {ref['warmup']} warm-up; max split R-hat "
            f"{ref['max_r_hat']:.4f}, min ESS {ref['min_ess']:.0f}, {ref['divergences']} "
            f"divergences, {ref['wall_s']:.1f} s.",
            "",
            "| method | steps | t_conv (s) | t_budget (s) | t_first (s) "
            "| @conv max\\|Δμ\\|/σ | @conv σ/σ_NUTS | budget max\\|Δμ\\|/σ | budget σ/σ_NUTS "
            "| final ELBO |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for fit in entry["fits"]:
            lines.append(
                f"| {fit['label']} | {_steps(fit)} | {_t_conv(fit)} "
                f"| {fit['budget_s']:.3f} | {fit['first_call_s']:.2f} "
                f"| {_accuracy(fit['at_convergence'])} | {_accuracy(fit['budget'])} "
                f"| {fit['final_elbo']:.2f} |"
            )
        if config["plots"]:
            lines += ["", *(f"![{f}]({f})" for f in plot_names(name))]
        lines.append("")
    return "\n".join(lines)


def plot_names(model: str) -> tuple[str, str]:
    return f"vi_{model}_marginals.png", f"vi_{model}_elbo.png"


def plot(record: dict[str, Any], out: Path) -> list[Path]:
    """Per model: the marginals (histogram densities in the record) against NUTS, and the
    smoothed ELBO traces of the budget fits."""
    plt = runner.pyplot()
    window = record["config"]["window"]
    paths = []
    for name, entry in record["results"]["models"].items():
        marginals_png, elbo_png = (Path(out) / f for f in plot_names(name))
        marginals = entry["marginals"]
        fig, axes = plt.subplots(1, len(marginals), figsize=(3.2 * len(marginals), 3.4))
        for ax, (quantity, h) in zip(np.atleast_1d(axes), marginals.items(), strict=True):
            edges = np.asarray(h["edges"])
            ax.stairs(h["NUTS"], edges, fill=True, color="0.8", label="NUTS")
            for label, density in h.items():
                if label not in ("edges", "NUTS"):
                    ax.stairs(density, edges, lw=1.4, label=label)
            ax.set_title(quantity)
            ax.set_yticks([])
        handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
        fig.suptitle(f"{entry['title']}: marginals vs NUTS (budget fits)")
        fig.tight_layout(rect=(0, 0.08, 1, 1))
        fig.savefig(marginals_png, dpi=110)
        plt.close(fig)

        fig, ax = plt.subplots(figsize=(7, 4))
        for fit in entry["fits"]:
            smoothed = np.asarray(fit["smoothed"], np.float64)
            ax.plot((np.arange(len(smoothed)) + 1) * window, smoothed, lw=1.2, label=fit["label"])
        finals = [f["final_elbo"] for f in entry["fits"] if np.isfinite(f["final_elbo"])]
        if finals:
            top = max(finals)
            ax.set_ylim(top - max(20.0, 0.2 * abs(top)), top + 0.05 * max(abs(top), 10.0))
        ax.set(xlabel="step", ylabel=f"ELBO (mean over {window} steps)")
        ax.set_title(f"{entry['title']}: ELBO traces (budget fits)")
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        fig.savefig(elbo_png, dpi=110)
        plt.close(fig)
        paths += [marginals_png, elbo_png]
    return paths
