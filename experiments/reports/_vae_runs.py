"""What the vae_mnist and gumbel_vae renderings share: a record gathered by `table --record`
(experiments/vae_records.py) holds several runs, each a `train` and an `evaluate` process with
its own command, provenance and times."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from experiments import runner

# The datasets' names and pixel counts (facts of the data, as in reparam.train.data).
DATASETS = {"mnist": ("static binarized MNIST", 784), "digits": ("the embedded 8x8 digits", 64)}


def process(part: dict[str, Any]) -> str:
    """When, at which commit, on what machine and how long one process (train or evaluate) ran,
    from its measurements."""
    p = part["provenance"]
    dirty = " (with uncommitted changes)" if p.get("dirty") else ""
    return (
        f"{p['date']}, commit {p['commit']}{dirty}; {runner.describe_machine(part)}; jax "
        f"{p['jax']}; wall {part['wall_seconds']:.0f} s, CPU {part['cpu_seconds']:.0f} s"
    )


def header(record: dict[str, Any], title: str) -> list[str]:
    p, runs = record["provenance"], record["results"]["runs"]
    parts = [part for r in runs for part in (r["train"], r["evaluation"])]
    dates = sorted(part["provenance"]["date"] for part in parts)
    return [
        f"# {title}",
        "",
        f"Every number below is rendered by `make results` from the record "
        f"`records/{record['experiment']}.json`, gathered by `{record['command']}` "
        f"({p['date']}, commit {p['commit']}). It holds {len(runs)} runs, each one `train` and "
        f"one `evaluate` process, made from {dates[0]} to {dates[-1]}; together they took "
        f"{record['wall_seconds'] / 60:.1f} minutes of wall time and "
        f"{record['cpu_seconds'] / 60:.1f} of CPU time. The machine of each process is below "
        '("Runs").',
        "",
    ]


def nll(evaluation: dict[str, Any]) -> str:
    return f"{evaluation['nll']:.2f} ± {evaluation['nll_stderr']:.2f}"


def evaluated_on(runs: Sequence[dict]) -> str:
    """'K = 1000, 10000 valid images' if every run was evaluated alike (else per run)."""
    kinds = {(r["evaluation"]["nll_samples"], r["evaluation"]["examples"]) for r in runs}
    split = runs[0]["evaluation"]["split"]
    return "; ".join(f"K = {k}, {n} {split} images" for k, n in sorted(kinds))


def runs_section(runs: Sequence[dict], label: Callable[[dict], str]) -> list[str]:
    """Each run's two commands and where, when and how long each ran."""
    lines = ["## Runs", "", "Each run is two processes, run one at a time:", ""]
    for r in runs:
        train, evaluation, seconds = r["train"], r["evaluation"], r["epoch_seconds"]
        lines += [
            f"* **{label(r)}** (`{r['run']}`): {train['results']['epochs']} passes, "
            f"{train['results']['steps']} steps, status {train['results']['status']}; the "
            f"passes took {seconds['total']:.0f} s (first, with compilation, "
            f"{seconds['first']:.2f} s; median {seconds['median']:.2f} s).",
            f"  * `{train['command']}`  ",
            f"    {process(train)}.",
            f"  * `{evaluation['command']}`  ",
            f"    {process(evaluation)}; the NLL itself {evaluation['nll_seconds']:.0f} s.",
        ]
    return [*lines, ""]


def figures(record: dict[str, Any], curves: str, label: Callable[[dict], str]) -> list[str]:
    plots, runs = record["results"]["plots"], record["results"]["runs"]
    lines = ["## Figures", "", f"{curves} (`{plots['curves']}`):", ""]
    lines += [f"![validation curves]({plots['curves']})", ""]
    for r in runs:
        name = plots["samples"][r["run"]]
        lines += [f"{label(r)}, samples after {r['train']['results']['epochs']} passes:", ""]
        lines += [f"![{label(r)} samples]({name})", ""]
    return lines


def equal_passes(runs: Sequence[dict], label: Callable[[dict], str]) -> list[str]:
    """For each number of passes that several runs share: the runs ordered by NLL."""
    by_passes: dict[int, list[dict]] = {}
    for r in runs:
        by_passes.setdefault(r["train"]["results"]["epochs"], []).append(r)
    lines = []
    for passes, group in sorted(by_passes.items()):
        if len(group) > 1:
            group = sorted(group, key=lambda r: r["evaluation"]["nll"])
            order = " < ".join(f"{label(r)} {r['evaluation']['nll']:.2f}" for r in group)
            lines.append(f"At {passes} passes, by NLL: {order}.")
    return lines
