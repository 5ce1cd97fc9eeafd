"""A training run's work directory: `fit` with its config written first and a results record.

A work directory holds config.json, metrics.jsonl (one record per epoch, written by `fit`),
checkpoints/ (orbax, atomic, the last few), best/ (with early stopping: the best state) and
whatever the experiment adds (results, plots).
`train_in_workdir` is the part of an experiment's `train` command that is the same for every
model: it writes config.json, runs `fit` with the config's schedule, and returns the record every
experiment reports (status, epochs, steps, times, devices, a digest of the parameters).
"""

from __future__ import annotations

import dataclasses
import json
import time
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import jax
import numpy as np

from reparam.train import distributed
from reparam.train.loop import FitResult, fit


class Schedule(Protocol):
    """The config fields `train_in_workdir` reads (a frozen dataclass with at least these)."""

    epochs: int
    checkpoint_every: int
    keep_checkpoints: int
    eval_every: int
    max_minutes: float | None


def read_metrics(workdir: str | Path) -> list[dict]:
    """The records of workdir/metrics.jsonl, one per epoch."""
    lines = (Path(workdir) / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line]


def config_from_record(config_type: type, record: Mapping[str, Any]) -> Any:
    """The frozen dataclass `config_type` from a config.json record (`train_in_workdir` writes
    them): keys the class no longer has are ignored (older work directories), lists become the
    tuples the class holds."""
    hints = typing.get_type_hints(config_type)
    names = {f.name for f in dataclasses.fields(config_type)}
    values = {k: v for k, v in record.items() if k in names}
    for name, value in values.items():
        if isinstance(value, list) and typing.get_origin(hints[name]) is tuple:
            values[name] = tuple(value)
    return config_type(**values)


def read_config(workdir: str | Path, config_type: type) -> Any:
    """The config of the run in `workdir` (its config.json) as `config_type`."""
    record = json.loads((Path(workdir) / "config.json").read_text())
    return config_from_record(config_type, record)


def output_bias(train: np.ndarray) -> list[float]:
    """Logit of the training pixels' mean (clipped), (D,): a decoder started at these biases
    starts at the pixel marginals."""
    mean = np.clip(train.mean(axis=0), 1e-3, 1 - 1e-3)
    return np.log(mean / (1 - mean)).astype(np.float32).tolist()


def train_in_workdir(
    *,
    key: jax.Array,
    state: Any,
    train_epoch: Callable,
    data: Any,
    config: Schedule,
    workdir: str | Path,
    evaluate: Callable[[Any, int], Mapping[str, Any]] | None = None,
    resume: bool = False,
    progress: bool = True,
    mesh: Any = None,
    **fit_options: Any,
) -> tuple[FitResult, dict[str, Any]]:
    """`reparam.train.fit` for `config`'s schedule in `workdir`, writing config.json first (process
    0) and storing the config with every checkpoint (`open_checkpoint` rebuilds the run from it).

    Args:
      key, state, train_epoch, data: as for `fit`.
      config: a frozen dataclass with the `Schedule` fields.
      workdir: the run's folder.
      evaluate: (state, epoch) -> dict of floats, every `config.eval_every` epochs.
      resume, progress, mesh, **fit_options: passed to `fit` (e.g. `learning_rate`,
        `shard_params`, `on_epoch_end`).

    Returns:
      (fit's result, a record: status, epochs, steps, wall and CPU seconds of this call, the summed
      epoch seconds of the whole run, devices, mesh size, process, sha256 of the parameters and,
      with `early_stopping` in `fit_options`, "early_stopping": its metric, mode, patience, best
      epoch and best value).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    config_record = dataclasses.asdict(config)  # type: ignore[call-overload]
    if distributed.is_primary():
        (workdir / "config.json").write_text(json.dumps(config_record, indent=2) + "\n")
    tic, cpu_tic = time.perf_counter(), time.process_time()
    result = fit(
        key=key,
        state=state,
        train_epoch=train_epoch,
        data=data,
        num_epochs=config.epochs,
        workdir=workdir,
        checkpoint_every=config.checkpoint_every,
        keep_checkpoints=config.keep_checkpoints,
        resume=resume,
        max_minutes=config.max_minutes,
        evaluate=evaluate,
        eval_every=config.eval_every,
        meta={"config": config_record},
        progress=progress,
        mesh=mesh,
        **fit_options,
    )
    record = {
        "status": result.status,
        "epochs": result.epoch,
        "steps": int(result.state.step),
        "train_seconds_this_call": time.perf_counter() - tic,
        "train_cpu_seconds_this_call": time.process_time() - cpu_tic,
        # Epoch times only, over the whole run (resumed pieces included): compilation of a
        # piece's first epoch counts, validations and checkpoints do not.
        "train_epoch_seconds_total": float(sum(r["seconds"] for r in read_metrics(workdir))),
        "devices": [str(d) for d in jax.devices()],
        "mesh_devices": 1 if mesh is None else mesh.size,
        "process": f"{jax.process_index()} of {jax.process_count()}",
        "params_sha256": distributed.digest(result.state.params),
    }
    early_stopping = fit_options.get("early_stopping")
    if early_stopping is not None:
        record["early_stopping"] = {
            "metric": early_stopping.metric,
            "mode": early_stopping.mode,
            "patience": early_stopping.patience,
            "best_epoch": result.best_epoch,
            "best_value": result.best_value,
        }
    return result, record
