"""What the vae_mnist and gumbel_vae renderings share: a record gathered by `table --record`
(experiments/vae_records.py) holds several runs, each a `train` and an `evaluate` process with
its own command, provenance and times."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from experiments import runner

# The datasets' names and pixel counts (facts of the data, as in reparam.train.data).
DATASETS = {"mnist": ("static binarized MNIST", 784), "digits": ("the embedded 8x8 digits", 64)}
# How a training run ended (`reparam.train.fit`'s status), in words.
STOPS = {
    "completed": "completed",
    "early_stopped": "stopped early",
    "time_limit": "stopped at its time limit",
    "interrupted": "interrupted",
}


def evaluated_epoch(run: dict[str, Any]) -> int:
    """The epoch whose state the run's `evaluate` measured (records before early stopping
    name it "epochs")."""
    evaluation = run["evaluation"]
    return evaluation.get("evaluated_epoch", evaluation["epochs"])


def passes(run: dict[str, Any]) -> str:
    """The passes trained, and, where they differ from a plain run's, how training ended and
    which epoch was evaluated: "120 (stopped early; evaluated: epoch 100, the best)"."""
    results = run["train"]["results"]
    notes = []
    if results["status"] != "completed":
        notes.append(STOPS.get(results["status"], results["status"]))
    evaluated = evaluated_epoch(run)
    if evaluated != results["epochs"]:
        best = run["evaluation"].get("checkpoint_kind") == "best"
        notes.append(f"evaluated: epoch {evaluated}{', the best' if best else ''}")
    return f"{results['epochs']}" + (f" ({'; '.join(notes)})" if notes else "")


def early_stopping(run: dict[str, Any]) -> str:
    """A sentence on the run's early stopping ("" for a run without)."""
    results, config = run["train"]["results"], run["train"]["config"]
    rule = results.get("early_stopping")
    if rule is None:
        return ""
    return (
        f" Early stopping on the validation bound ({rule['metric']}, every "
        f"{config['eval_every']} passes, patience {rule['patience']}): best at epoch "
        f"{rule['best_epoch']} ({rule['best_value']:.2f}); {STOPS[results['status']]} after "
        f"{results['epochs']} passes; evaluated: epoch {evaluated_epoch(run)}"
        f"{' (the best checkpoint)' if run['evaluation'].get('checkpoint_kind') == 'best' else ''}."
    )


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
            f"{seconds['first']:.2f} s; median {seconds['median']:.2f} s).{early_stopping(r)}",
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
        passes_, evaluated = r["train"]["results"]["epochs"], evaluated_epoch(r)
        when = f"after {passes_} passes"
        if evaluated != passes_:
            when = f"of epoch {evaluated}'s state (of {passes_} passes)"
        lines += [f"{label(r)}, samples {when}:", ""]
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
