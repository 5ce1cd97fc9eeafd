"""One committed record of several VAE runs (`table --record`).

A vae_mnist or gumbel_vae run is a `train` process and an `evaluate --json W/evaluation.json`
process, one work directory each. `write` gathers the finished directories' record.json and
evaluation.json (each with its own command, provenance, wall and CPU seconds) into
experiments/results/records/<experiment>.json, which experiments/reports/<experiment>.py renders
(`make results`), and writes the figures that rendering shows into experiments/results/.
"""

from __future__ import annotations

import json
import shlex
import shutil
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from experiments import runner, vae_plots
from experiments.runs import Experiment
from reparam.train.nll import paired_nll
from reparam.train.workdir import read_metrics

RESULTS = runner.RECORDS.parent
# Per-example and per-dimension lists: the record keeps their summaries, not the lists.
BULKY = ("log_px", "posterior_mean_variance", "kl_per_dim")
PROCESS = ("command", "provenance", "wall_seconds", "cpu_seconds", "load_average_end")


def run_entry(workdir: Path, valid_key: str, curves: Sequence[str] = ()) -> dict[str, Any]:
    """One work directory's training (record.json), evaluation (evaluation.json) and validation
    curve (metrics.jsonl), without the bulky per-example lists; with `curves`, also those
    metrics' [epoch, step, value] per epoch that logged them."""
    evaluation_path = workdir / "evaluation.json"
    if not evaluation_path.exists():
        raise runner.UsageError(
            f"table --record: {workdir} has no evaluation.json; make it with `evaluate "
            f"--checkpoint {workdir} --json {evaluation_path}`"
        )
    record = json.loads((workdir / "record.json").read_text())
    evaluation = json.loads(evaluation_path.read_text())
    missing = [f for f in PROCESS if f not in evaluation]
    if missing:
        raise runner.UsageError(
            f"table --record: {evaluation_path} lacks {missing}: evaluate again "
            "(`evaluate --json` now records its command, machine and times)"
        )
    metrics = read_metrics(workdir)
    seconds = [r["seconds"] for r in metrics]
    train = {k: record[k] for k in ("config", "quick", *PROCESS)}
    train["results"] = {k: v for k, v in record["results"].items() if k not in BULKY}
    entry = {
        "run": workdir.name,
        "label": record["results"].get("name", workdir.name),
        "train": train,
        "evaluation": {k: v for k, v in evaluation.items() if k not in BULKY},
        "epoch_seconds": {
            "first": seconds[0],
            "median": statistics.median(seconds),
            "total": sum(seconds),
        },
        "valid_curve": [[r["epoch"], r[valid_key]] for r in metrics if valid_key in r],
        "last_train_bound": metrics[-1].get("bound", metrics[-1].get("objective")),
        "last_learning_rate": metrics[-1].get("lr"),
    }
    if curves:
        entry["curves"] = {
            k: [[r["epoch"], r["step"], r[k]] for r in metrics if k in r] for k in curves
        }
    return entry


def gather(experiment: Experiment, workdirs: Sequence[Path], argv: Sequence[str]) -> dict:
    """The record of `workdirs`' runs: each run's own entry (`run_entry`), the gathering's
    command and provenance, and the runs' summed wall and CPU seconds (train + evaluate)."""
    runs = [run_entry(Path(w), experiment.curves[1], experiment.record_curves) for w in workdirs]
    try:  # evaluated on the same examples: differences to the first run, paired by example
        paired = paired_nll([Path(w) / "evaluation.json" for w in workdirs])
    except ValueError:
        paired = [None] * len(runs)
    for run, row in zip(runs, paired, strict=True):
        keep = ("difference", "difference_stderr")
        run["paired_to_first"] = None if row is None else {k: row[k] for k in keep}
    processes = [r["train"] for r in runs] + [r["evaluation"] for r in runs]
    return {
        "experiment": experiment.name,
        "command": f"python -m experiments.{experiment.name} {shlex.join(argv)}",
        "config": {"workdirs": [str(w) for w in workdirs], "valid_key": experiment.curves[1]},
        "quick": any(r["train"]["quick"] for r in runs),
        "provenance": runner.provenance(),
        "wall_seconds": sum(p["wall_seconds"] for p in processes),
        "cpu_seconds": sum(p["cpu_seconds"] for p in processes),
        "results": {"runs": runs, "plots": plot_names(experiment.name, runs)},
    }


def plot_names(name: str, runs: Sequence[dict]) -> dict[str, Any]:
    """The figures in experiments/results/ that the rendering shows."""
    samples = {r["run"]: f"{name}_samples_{r['run']}.png" for r in runs}
    return {"curves": f"{name}_curves.png", "samples": samples}


def write(
    experiment: Experiment,
    workdirs: Sequence[Path],
    argv: Sequence[str],
    records: Path | None = None,
    results: Path | None = None,
) -> Path:
    """Gather `workdirs` into records/<experiment>.json; draw the runs' validation curves in one
    figure and copy each run's samples.png beside the results markdown. Returns the record."""
    records, results = records or runner.RECORDS, results or RESULTS
    record = gather(experiment, workdirs, argv)
    plots = record["results"]["plots"]
    labels = [r["label"] for r in record["results"]["runs"]]
    results.mkdir(parents=True, exist_ok=True)
    top = experiment.compare_top
    vae_plots.compare(workdirs, results / plots["curves"], labels, experiment.curves[1], top)
    for workdir in map(Path, workdirs):
        shutil.copyfile(workdir / "samples.png", results / plots["samples"][workdir.name])
    if experiment.record_figures is not None:
        plots |= experiment.record_figures(record, results)
    records.mkdir(parents=True, exist_ok=True)
    path = records / f"{experiment.name}.json"
    path.write_text(json.dumps(record, indent=1, allow_nan=True) + "\n")
    return path
