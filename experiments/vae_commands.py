"""The VAE experiments' commands: `main` parses (through `runner`), checks every value before
any work starts, starts JAX and runs train, evaluate, compare or paired for an `Experiment`
(experiments.runs)."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from experiments import runner, vae_plots, vae_records
from experiments.runs import (
    Compare,
    Evaluate,
    Experiment,
    Launch,
    Paired,
    Table,
    TrainOptions,
    check_paths,
    key,
)
from reparam.models import evaluate
from reparam.train import (
    BEST_DIRECTORY,
    Checkpointer,
    CheckpointError,
    EarlyStopping,
    distributed,
    open_checkpoint,
)
from reparam.train.nll import paired_nll, paired_table
from reparam.train.workdir import (
    config_from_record,
    read_config,
    read_metrics,
    train_in_workdir,
)

TRAIN_HELP = (
    "Train, then evaluate on the validation split. The defaults are the paper's full schedule "
    "(hours); --quick starts from the seconds-long preset the tests run."
)


def parse(experiment: Experiment, argv: list[str]) -> tuple[Launch, Any]:
    """(launch options, command) from `argv`, every value checked: a type error or an unknown
    choice exits with status 2 (tyro), any other bad value raises UsageError naming its flag."""
    default = experiment.Config.quick() if "--quick" in argv else experiment.Config()
    train = runner.command_type(experiment.Config, default, extra=TrainOptions(), doc=TRAIN_HELP)
    commands = {"train": train, "evaluate": Evaluate, "compare": Compare, "paired": Paired}
    launch, command = runner.subcommands(
        commands | {"table": Table},
        argv,
        top=Launch(),
        prog=f"python -m experiments.{experiment.name}",
        description=experiment.description,
    )
    if isinstance(command, train):
        config = experiment.resolve(command.config, argv)
        multiprocess = launch.coordinator is not None
        shard = getattr(config, "shard_params", False)
        if not runner.given(argv, "--mesh") and (config.devices or shard or multiprocess):
            config = dataclasses.replace(config, mesh="data")
        if multiprocess and config.mesh != "data":
            raise runner.UsageError("a multi-process run (--coordinator) trains on --mesh data")
        command = dataclasses.replace(command, config=config.validate())
    check_paths(command)
    return launch, command


def main(experiment: Experiment, argv: list[str] | None = None) -> int:
    """Parse and check every value (`parse`), start JAX (platform, processes), run the command;
    errors a user can fix are one line and exit status 2 (`runner.main`)."""
    argv = list(sys.argv[1:] if argv is None else argv)

    def run() -> int:
        launch, command = parse(experiment, argv)
        if launch.device != "auto":
            jax.config.update("jax_platforms", launch.device)
        if launch.coordinator is not None:  # before any other JAX call
            distributed.initialize(launch.coordinator, launch.num_processes, launch.process_id)
        if isinstance(command, Evaluate):
            return evaluate_command(experiment, command, argv)
        if isinstance(command, Compare):
            top = experiment.compare_top if command.top is None else command.top
            config_type, workdirs = experiment.Config, command.workdirs
            labels = [f"{read_config(w, config_type).name} ({w.name})" for w in workdirs]
            vae_plots.compare(workdirs, command.out, labels, experiment.curves[1], top)
            print(f"wrote {command.out}")
            return 0
        if isinstance(command, Table):
            return table_command(experiment, command, argv)
        if isinstance(command, Paired):
            print(paired_table(paired_nll(list(command.records))))
            return 0
        return train_command(experiment, command, argv)

    return runner.main(run)


def train_command(experiment: Experiment, command: Any, argv: list[str]) -> int:
    """Train `command.config` in a fresh (or, with --resume, continued) work directory, draw its
    curves and images, evaluate, and write results.json and record.json (process 0 only).

    With --patience, early stopping watches the validation bound (`experiment.curves[1]`,
    higher is better) and keeps the best state in <workdir>/best; the images and the final
    evaluation are then of that best state ("evaluated_epoch" in results.json)."""
    config, flags, primary = command.config, command.run, distributed.is_primary()
    run = runner.start(experiment.name, config, flags, argv, primary=primary)
    print(f"{config.name} on {config.dataset}: writing to {run.workdir.resolve()}", flush=True)
    setup = experiment.setup(config)
    # In a multi-process run the evaluations use each process's own copy of the parameters.
    local = distributed.to_host if jax.process_count() > 1 else lambda tree: tree
    valid_subset = setup.dataset.valid[: config.eval_subset]
    valid_key = key(config.seed, "validation")
    train_key, valid_name, valid_label = experiment.curves

    def validation(state, epoch):
        bound = functools.partial(setup.bound, local(state.params))
        metrics = {valid_name: evaluate.mean_bound(valid_key, valid_subset, bound, jit=False)}
        return metrics | (setup.monitor(local(state.params)) if setup.monitor else {})

    patience = getattr(config, "patience", None)
    early_stopping = None if patience is None else EarlyStopping(valid_name, "max", patience)

    result, results = train_in_workdir(
        key=setup.key,
        state=setup.state,
        train_epoch=setup.train_epoch,
        data=setup.dataset.train,
        config=config,
        workdir=run.workdir,
        evaluate=validation,
        resume=flags.resume,
        progress=flags.progress,
        mesh=setup.mesh,
        learning_rate=setup.schedule,
        shard_params=getattr(config, "shard_params", False),
        early_stopping=early_stopping,
    )
    results = {"name": config.name, **results}
    state, results["evaluated_epoch"] = result.state, result.epoch
    if result.best_epoch is not None:  # the best state, as `evaluate` picks it
        with Checkpointer(run.workdir / BEST_DIRECTORY) as best:
            state, _ = best.restore(result.state, result.best_epoch)
        results["evaluated_epoch"] = result.best_epoch
    last = (read_metrics(run.workdir) or [{}])[-1]
    if "temperature" in last:  # an annealed relaxation's (gumbel_vae)
        results["final_temperature"] = last["temperature"]
    if primary:
        params = local(state.params)
        title = config.name
        vae_plots.curves(
            run.workdir, run.workdir / "curves.png", title, train_key, valid_name, valid_label
        )
        samples, images, reconstructions = experiment.images(setup, params)
        shape, titles = setup.dataset.image_shape, experiment.image_titles
        vae_plots.samples_and_reconstructions(
            run.workdir, shape, samples, images, reconstructions, *titles
        )
        if command.options.eval and result.status != "interrupted":
            cpu_tic = time.process_time()
            results |= experiment.evaluate_state(setup, params, "valid")
            results["eval_cpu_seconds"] = time.process_time() - cpu_tic
        (run.workdir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        run.finish({k: v for k, v in results.items() if k != "log_px"})
    print(json.dumps({k: v for k, v in results.items() if not isinstance(v, list)}, indent=2))
    if result.status == "interrupted":
        print(f"interrupted: checkpoint saved in {run.workdir.resolve() / 'checkpoints'}")
        return 130
    print(f"metrics, checkpoints and plots in {run.workdir.resolve()}")
    return 0


def evaluate_checkpoint(
    experiment: Experiment,
    checkpoint: Path,
    *,
    data_dir: Path | None = None,
    split: str = "valid",
    num_samples: int | None = None,
    examples: int | None = None,
    choice: str = "best",
) -> dict:
    """Evaluate a saved run (see `reparam.train.open_checkpoint`; `choice` "best": a work
    directory's best checkpoint when it has one) on `split`. The results name the checkpoint,
    its epoch ("evaluated_epoch", and "epochs" as before) and whether it was the run's best
    ("checkpoint_kind": "best" or "regular")."""
    checkpointer, epoch, meta = open_checkpoint(checkpoint, choice)
    try:
        config = config_from_record(experiment.Config, meta["config"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(
            f"checkpoint {epoch} in {checkpointer.directory} does not hold a {experiment.name} "
            f"config: {type(error).__name__}: {error}"
        ) from error
    overrides: dict[str, Any] = {"eval_examples": examples}
    if data_dir is not None:
        overrides["data_dir"] = str(data_dir)
    setup = experiment.setup(dataclasses.replace(config, **overrides), require_test=split == "test")
    state, _ = checkpointer.restore(setup.state, epoch)
    checkpointer.close()
    results = experiment.evaluate_state(setup, state.params, split, num_samples)
    kind = "best" if checkpointer.directory.name == BEST_DIRECTORY else "regular"
    return results | {
        "checkpoint": str(checkpointer.directory / str(epoch)),
        "epochs": epoch,
        "evaluated_epoch": epoch,
        "checkpoint_kind": kind,
    }


def evaluate_command(experiment: Experiment, command: Evaluate, argv: list[str] = ()) -> int:
    """Print the experiment's `evaluate_fields`, then the NLL as the last line; with --json, also
    write every value measured there, with the command, provenance and wall and CPU seconds."""
    started, started_cpu, measured = time.perf_counter(), time.process_time(), runner.provenance()
    results = evaluate_checkpoint(
        experiment,
        command.checkpoint,
        data_dir=command.data_dir,
        split=command.split,
        num_samples=command.k,
        examples=command.examples,
        choice=command.checkpoint_choice,
    )
    if command.json is not None:
        results |= {"command": f"python -m experiments.{experiment.name} {shlex.join(argv)}"}
        results |= {"provenance": measured, "wall_seconds": time.perf_counter() - started}
        results |= {"cpu_seconds": time.process_time() - started_cpu}
        results |= {"load_average_end": [round(x, 2) for x in os.getloadavg()]}
        command.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"checkpoint: {results['checkpoint']} ({results['checkpoint_kind']})")
    for name in experiment.evaluate_fields:
        if name != "checkpoint":
            print(f"{name}: {results[name]}")
    print(f"importance-sampled NLL on {results['split']} (K={results['nll_samples']}), nats:")
    print(f"{results['nll']:.4f}")
    return 0


def table_command(experiment: Experiment, command: Table, argv: list[str] = ()) -> int:
    """One markdown row per finished run (and, with --json, the rows with every result): passes,
    how training stopped, the best validation epoch and the evaluated one, training minutes,
    validation −ELBO, NLL, the experiment's `table_columns`; with --record, the runs' one
    committed record (`vae_records.write`)."""
    if command.record:
        print(f"wrote {vae_records.write(experiment, command.workdirs, argv)}")
    valid_key, rows = experiment.curves[1], []
    for workdir in command.workdirs:
        config, evaluation = read_config(workdir, experiment.Config), workdir / "evaluation.json"
        results = json.loads((workdir / "results.json").read_text())
        passes = results["epochs"]  # trained; an evaluation's "epochs" is the one it evaluated
        results |= json.loads(evaluation.read_text()) if evaluation.exists() else {}  # evaluate
        best = max(
            (r for r in read_metrics(workdir) if valid_key in r),
            key=lambda r: r[valid_key],
            default={valid_key: None, "epoch": None},
        )
        skip = ("devices", "name", "log_px", "provenance", "posterior_mean_variance", "kl_per_dim")
        row = {"run": workdir.name, "label": config.name}
        row |= {k: v for k, v in results.items() if k not in skip}
        row |= {f"best_{valid_key}": best[valid_key], "best_epoch": best["epoch"]}
        row |= {"epochs": passes, "evaluated_epoch": results.get("evaluated_epoch", passes)}
        rows.append(row | {"config": dataclasses.asdict(config)})
    if command.json is not None:
        command.json.write_text(json.dumps(rows, indent=2) + "\n")
    header = ["run", "model", "passes", "stop", "best epoch", "evaluated epoch"]
    header += ["train min (epochs only)", "valid −ELBO"]
    header += ["valid NLL (IS, K)", *(name for name, _ in experiment.table_columns)]
    print("| " + " | ".join(header) + " |\n" + "|---" * len(header) + "|")
    for r in rows:
        cells = [r["run"], r["label"], str(r["epochs"]), r["status"], str(r["best_epoch"])]
        cells += [str(r["evaluated_epoch"])]
        cells += [f"{r['train_epoch_seconds_total'] / 60:.1f}", f"{-r.get('elbo', np.nan):.2f}"]
        nll, stderr = r.get("nll", np.nan), r.get("nll_stderr", np.nan)  # NaN: run with --no-eval
        cells += [f"{nll:.2f} ± {stderr:.2f} (K={r.get('nll_samples')})"]
        cells += [f"{r.get(key, np.nan):.2f}" for _, key in experiment.table_columns]
        print("| " + " | ".join(cells) + " |")
    return 0
