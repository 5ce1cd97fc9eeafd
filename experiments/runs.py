"""What the binarized-MNIST VAE experiments (vae_mnist, gumbel_vae) share: a run's workdir.

A workdir holds config.json, metrics.jsonl (one record per epoch), checkpoints/ (orbax, through
`reparam.train.fit`), results.json and the plots. The experiment modules keep what is theirs
(config fields, model, loss, what an evaluation measures); this module trains a set-up run in a
workdir, evaluates a saved one, draws the curves and image grids and turns the commands' errors
into one line and exit status 2.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np


class JsonConfig:
    """Mixin for the experiments' frozen config dataclasses: to and from config.json."""

    def to_json(self) -> dict:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_json(cls, record: dict):
        """The config of `record`, ignoring keys the class no longer has (older workdirs)."""
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        hints = typing.get_type_hints(cls)
        record = {k: v for k, v in record.items() if k in fields}
        for name, value in record.items():  # JSON has lists where the config holds tuples
            if isinstance(value, list) and typing.get_origin(hints[name]) is tuple:
                record[name] = tuple(value)
        return cls(**record)


def output_bias(train: np.ndarray) -> list[float]:
    """Logit of the training pixels' mean (clipped): the decoder starts at the pixel marginals."""
    mean = np.clip(train.mean(axis=0), 1e-3, 1 - 1e-3)
    return np.log(mean / (1 - mean)).astype(np.float32).tolist()


def read_metrics(workdir: str | Path) -> list[dict]:
    """The records of workdir/metrics.jsonl, one per epoch."""
    lines = (Path(workdir) / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line]


def read_config(workdir: str | Path, config_type: type[JsonConfig]):
    return config_type.from_json(json.loads((Path(workdir) / "config.json").read_text()))


# ---------------------------------------------------------------- training in a workdir
def train_in_workdir(
    run: Any,
    workdir: str | Path,
    validation: Callable[[Any, int], dict],
    *,
    resume: bool = False,
    progress: bool = True,
    on_epoch_end=None,
    **fit_options: Any,
) -> tuple[Any, dict]:
    """`reparam.train.fit` of a set-up run (`run.config`, `.state`, `.train_epoch`,
    `.dataset`, `.key`, `.mesh`), writing config.json first.

    Returns:
      (fit's result, the results record every experiment reports: status, epochs, steps, wall
      and CPU seconds of this call, summed epoch seconds, devices, a digest of the parameters).
    """
    import jax

    from reparam import train
    from reparam.train import distributed

    config, workdir = run.config, Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if distributed.is_primary():
        (workdir / "config.json").write_text(json.dumps(config.to_json(), indent=2) + "\n")
    tic, cpu_tic = time.perf_counter(), time.process_time()
    result = train.fit(
        key=run.key,
        state=run.state,
        train_epoch=run.train_epoch,
        data=run.dataset.train,
        num_epochs=config.epochs,
        workdir=workdir,
        checkpoint_every=config.checkpoint_every,
        keep_checkpoints=config.keep_checkpoints,
        resume=resume,
        max_minutes=config.max_minutes,
        evaluate=validation,
        eval_every=config.eval_every,
        meta={"config": config.to_json()},
        progress=progress,
        on_epoch_end=on_epoch_end,
        mesh=run.mesh,
        **fit_options,
    )
    results = {
        "name": config.name,
        "status": result.status,
        "epochs": result.epoch,
        "steps": int(result.state.step),
        "train_seconds_this_call": time.perf_counter() - tic,
        "train_cpu_seconds_this_call": time.process_time() - cpu_tic,
        # Epoch times only, over the whole run (resumed pieces included): compilation of a
        # piece's first epoch counts, validations and checkpoints do not.
        "train_epoch_seconds_total": float(sum(r["seconds"] for r in read_metrics(workdir))),
        "devices": [str(d) for d in jax.devices()],
        "mesh_devices": 1 if run.mesh is None else run.mesh.size,
        "process": f"{jax.process_index()} of {jax.process_count()}",
        "params_sha256": distributed.digest(result.state.params),
    }
    return result, results


def finish_run(
    workdir: str | Path,
    results: dict,
    params: Any,
    *,
    plot: Callable[[Any], None],
    evaluate: Callable[[Any], dict] | None,
) -> dict:
    """Plots, the final validation evaluation (skipped if `evaluate` is None) and results.json;
    process 0's job in a multi-process run."""
    plot(params)
    if evaluate is not None:
        cpu_tic = time.process_time()
        results.update(evaluate(params))
        results["eval_cpu_seconds"] = time.process_time() - cpu_tic
    (Path(workdir) / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


def evaluate_checkpoint(
    checkpoint: str | Path,
    config_type: type[JsonConfig],
    setup: Callable[..., Any],
    evaluate_state: Callable[..., dict],
    *,
    data_dir: str | None = None,
    split: str = "valid",
    num_samples: int | None = None,
    examples: int | None = None,
) -> dict:
    """Evaluate a saved run (a workdir or checkpoint folder, see
    `reparam.train.open_checkpoint`) on `split` with the experiment's `setup` and
    `evaluate_state(run, params, split, num_samples)`."""
    from reparam.train import CheckpointError, open_checkpoint
    from reparam.train.checkpoint import _first_line

    checkpointer, epoch, meta = open_checkpoint(checkpoint)
    try:
        config = config_type.from_json(meta["config"])
    except Exception as error:
        raise CheckpointError(
            f"checkpoint {epoch} in {checkpointer.directory} does not hold this experiment's "
            f"config: {_first_line(error)}"
        ) from error
    overrides: dict[str, Any] = {"eval_examples": examples}
    if data_dir is not None:
        overrides["data_dir"] = str(data_dir)
    run = setup(dataclasses.replace(config, **overrides), require_test=split == "test")
    state, _ = checkpointer.restore(run.state, epoch)
    checkpointer.close()
    results = evaluate_state(run, state.params, split, num_samples)
    results.update({"checkpoint": str(checkpointer.directory / str(epoch)), "epochs": epoch})
    return results


# ---------------------------------------------------------------- plots
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(
    workdir: str | Path, out: Path, title: str, train_key: str, valid_key: str, valid_label: str
) -> None:
    """The negated training objective (each epoch's mean) and validation bound against passes."""
    plt = _pyplot()
    records = read_metrics(workdir)
    epochs = [r["epoch"] for r in records]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [-r[train_key] for r in records], label="train (epoch mean)")
    evals = [r for r in records if valid_key in r]
    if evals:
        ax.plot(
            [r["epoch"] for r in evals], [-r[valid_key] for r in evals], "o-", label=valid_label
        )
    ax.set_xlabel("epoch (passes)")
    ax.set_ylabel("nats")
    ax.set_xscale("log" if max(epochs) > 50 else "linear")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def plot_comparison(
    workdirs: Sequence[str | Path],
    out: Path,
    labels: Sequence[str],
    valid_key: str,
    ylabel: str,
    top: float | None = None,
) -> None:
    """Each run's validation curve against passes and against training minutes (summed epoch
    seconds), one line per run."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for workdir, label in zip(workdirs, labels, strict=True):
        records = read_metrics(workdir)
        minutes = np.cumsum([r["seconds"] for r in records]) / 60
        evals = [(r, m) for r, m in zip(records, minutes, strict=True) if valid_key in r]
        values = [-r[valid_key] for r, _ in evals]
        axes[0].plot([r["epoch"] for r, _ in evals], values, label=label)
        axes[1].plot([m for _, m in evals], values, label=label)
    for ax, xlabel in zip(axes, ("passes over the training set", "training minutes"), strict=True):
        ax.set_xlabel(xlabel)
        ax.set_xscale("log")
        ax.set_ylabel(ylabel)
        if top is not None:
            ax.set_ylim(top=top)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def image_grid(images: np.ndarray, rows: int, cols: int, shape: tuple[int, int]) -> np.ndarray:
    """(rows·cols, h·w) images in [0, 1] -> one (rows·(h+1)−1, cols·(w+1)−1) canvas."""
    h, w = shape
    canvas = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), 0.25)  # grey gutters
    for i, image in enumerate(images[: rows * cols]):
        r, c = divmod(i, cols)
        canvas[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = image.reshape(h, w)
    return canvas


def save_samples_and_reconstructions(
    workdir: Path,
    shape: tuple[int, int],
    samples: np.ndarray,
    images: np.ndarray,
    reconstructions: np.ndarray,
    sample_title: str,
    reconstruction_title: str,
) -> None:
    """samples.png (64 decoder means, 8×8) and reconstructions.png (32 validation images, rows 1
    and 3, over their reconstructions, rows 2 and 4)."""
    plt = _pyplot()
    interleaved = np.concatenate(
        [images[:16], reconstructions[:16], images[16:32], reconstructions[16:32]]
    )
    for name, grid, rows, cols, title in (
        ("samples.png", samples, 8, 8, sample_title),
        ("reconstructions.png", interleaved, 4, 16, reconstruction_title),
    ):
        fig, ax = plt.subplots(figsize=(cols * 0.6 + 0.4, rows * 0.6 + 0.6))
        ax.imshow(image_grid(grid, rows, cols, shape), cmap="gray_r", vmin=0, vmax=1)
        ax.set_axis_off()
        ax.set_title(title, fontsize=8)
        fig.tight_layout()
        fig.savefig(workdir / name, dpi=100)
        plt.close(fig)


# ---------------------------------------------------------------- command line
def train_command(args: Any, config: JsonConfig, train_and_evaluate: Callable[..., dict]) -> int:
    """The `train` subcommand: `train_and_evaluate(config, args.workdir, ...)` with the flags
    --resume, --no-progress and --no-eval, then print its results.

    Returns:
      the exit status: 0, or 130 if interrupted (the checkpoint is saved).
    """
    workdir = Path(args.workdir)
    print(f"{config.name} on {config.dataset}: writing to {workdir.resolve()}", flush=True)
    results = train_and_evaluate(
        config,
        workdir,
        resume=args.resume,
        progress=not args.no_progress,
        final_eval=not args.no_eval,
    )
    print(json.dumps({k: v for k, v in results.items() if not isinstance(v, list)}, indent=2))
    if results["status"] == "interrupted":
        print(f"interrupted: checkpoint saved in {workdir.resolve() / 'checkpoints'}")
        return 130
    print(f"metrics, checkpoints and plots in {workdir.resolve()}")
    return 0


def report_evaluation(results: dict, fields: Sequence[str], json_path: str | None = None) -> int:
    """Print an `evaluate` command's `fields`, then the NLL as the last line; with `json_path`,
    also write every value measured (per-dimension KL, posterior variances, ...) there."""
    if json_path is not None:
        Path(json_path).write_text(json.dumps(results, indent=2) + "\n")
    for name in fields:
        print(f"{name}: {results[name]}")
    print(f"importance-sampled NLL on {results['split']} (K={results['nll_samples']}), nats:")
    print(f"{results['nll']:.4f}")
    return 0


def run_command(command: Callable[[], int]) -> int:
    """`command()`, with the errors a user can fix (missing data, a bad checkpoint, a bad flag
    value) printed as one line and exit status 2 instead of a traceback."""
    from reparam.train import CheckpointError
    from reparam.train.data import DataError

    try:
        return command()
    except (FileNotFoundError, DataError, CheckpointError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
