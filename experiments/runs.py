"""What the binarized-MNIST VAE experiments (vae_mnist, gumbel_vae) share: the config fields of a
training run, the set-up run, the commands' options and the `Experiment` description.

An experiment module describes itself as an `Experiment` (its config, how to set up, evaluate and
draw a run) and calls `experiments.vae_commands.main(EXPERIMENT, argv)` (parsed by `runner`).
Training in a work directory: `reparam.train.workdir`; plots: `vae_plots`; records: `vae_records`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

import jax
from tyro.conf import Positional

from experiments.runner import require
from reparam.train import data as data_lib

# The experiments' key streams by name. Each is fold_in(key(seed), i, ...) with the constants
# these experiments have always used, so that earlier results (experiments/results/) reproduce
# bit for bit; `runner.stream_key` (crc32 of the name) is for streams new code adds.
STREAMS = {
    "init": (0,),
    "init/sample": (1,),  # vae_mnist: the sample the VAE's init draws
    "init/residual": (1,),  # gumbel_vae: RELAX's residual network
    "train": (2,),
    "evaluate/nll": (1000, 0),
    "evaluate/elbo": (1000, 1),
    "evaluate/bound": (1000, 2),  # vae_mnist: the training bound
    "evaluate/relaxed": (1000, 2),  # gumbel_vae: the relaxed objective
    "plot/prior": (2000,),
    "validation": (3000,),
}


def key(seed: int, stream: str) -> jax.Array:
    """The key of the named stream (`STREAMS`) for `seed`."""
    if stream not in STREAMS:
        raise KeyError(f"no key stream {stream!r}; the streams are {sorted(STREAMS)}")
    result = jax.random.key(seed)
    for index in STREAMS[stream]:
        result = jax.random.fold_in(result, index)
    return result


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """The fields every VAE experiment's config has (each experiment sets its own defaults)."""

    dataset: Literal["mnist", "digits"] = "mnist"
    """Static binarized MNIST (files in --data-dir) or the embedded 8x8 digits."""
    data_dir: str | None = None
    """Folder of binarized_mnist_{train,valid,test}.amat[.gz]; default data/binarized_mnist."""
    hidden: tuple[int, ...] = (200, 200)
    """Hidden widths of the encoder (the decoder mirrors them)."""
    activation: str = "tanh"
    """Hidden activation (a jax.nn function name)."""
    batch_size: int = 100
    """Examples per step."""
    epochs: int = 100
    """Passes over the training set."""
    learning_rate: float = 1e-3
    """Adam's (initial) learning rate."""
    seed: int = 0
    """Seed of every key stream (initialization, training, evaluation)."""
    checkpoint_every: int = 10
    """Epochs between checkpoints (one is also written when training stops)."""
    keep_checkpoints: int = 3
    """How many of the newest checkpoints to keep."""
    eval_every: int = 10
    """Epochs between validation bounds in metrics.jsonl."""
    patience: int | None = None
    """Early stopping: stop after this many validation bounds (one every --eval-every passes) in
    a row without a new best; the best state is kept in <workdir>/best, which `evaluate` and the
    final evaluation use. None: train all --epochs (no best checkpoint)."""
    eval_subset: int = 2000
    """Validation examples of the in-training bound."""
    eval_samples: int = 1000
    """K: importance samples of the final NLL."""
    eval_chunk: int = 250
    """Importance samples per chunk of the NLL (memory)."""
    eval_examples: int | None = None
    """Final evaluation on the first N validation examples (default: all)."""
    max_minutes: float | None = None
    """Stop (with a checkpoint) after the first epoch that ends past this wall time."""
    mesh: Literal["none", "data"] = "none"
    """Train on one device, or data-parallel over a device mesh (reparam.train.distributed);
    --devices implies data."""
    devices: int | None = None
    """Devices of the data mesh (default: all, over all processes)."""

    # An experiment's own integer fields that must be >= 1 (or None), besides `check_config`'s.
    positive: ClassVar[tuple[str, ...]] = ()

    @property
    def name(self) -> str:
        raise NotImplementedError

    def validate(self) -> TrainingConfig:
        """Raise UsageError (a ValueError naming the flag) for a value that cannot work."""
        for field, hint in typing.get_type_hints(type(self)).items():  # choices (Literal fields)
            choices, value = typing.get_args(hint), getattr(self, field, None)
            flag = "--" + field.replace("_", "-")
            if typing.get_origin(hint) is Literal:
                require(value in choices, flag, f"one of {', '.join(choices)}", value)
        for field in ("eval_subset", "eval_chunk", "keep_checkpoints", "patience", *self.positive):
            value = getattr(self, field)
            flag = "--" + field.replace("_", "-")
            require(value is None or value >= 1, flag, "a positive integer", value)
        require(min(self.hidden, default=1) >= 1, "--hidden", "positive widths", self.hidden)
        require(self.learning_rate > 0, "--learning-rate", "> 0", self.learning_rate)
        minutes, folder = self.max_minutes, self.data_dir
        require(minutes is None or minutes > 0, "--max-minutes", "> 0", minutes)
        require(folder is None or Path(folder).is_dir(), "--data-dir", "an existing folder", folder)
        return self


@dataclasses.dataclass
class Setup:
    """A run built from its config, ready for `reparam.train.fit`."""

    config: Any
    dataset: data_lib.Dataset
    model: Any
    state: Any
    train_epoch: Any
    key: jax.Array
    bound: Callable  # jitted (params, key, x (B, D)) -> (B,): the validation bound
    mesh: Any = None
    loss_fn: Any = None  # what train_epoch minimizes
    schedule: Any = None  # the learning-rate schedule, if any
    monitor: Any = None  # (params) -> dict of floats, logged with each validation bound


@dataclasses.dataclass(frozen=True)
class Launch:
    """Options before the command: the platform, and joining a multi-process run (start one
    process per host with the same arguments and its own --process-id; the workdir is shared)."""

    device: Literal["auto", "cpu", "gpu", "tpu"] = "auto"
    """JAX platform to run on."""
    coordinator: str | None = None
    """HOST:PORT of process 0, for a multi-process run (it trains on --mesh data)."""
    num_processes: int | None = None
    """Processes in the multi-process run."""
    process_id: int | None = None
    """This process's index, 0..N-1."""


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    eval: bool = True
    """Final importance-sampled NLL etc. on the validation split (--no-eval skips it)."""


@dataclasses.dataclass(frozen=True)
class Evaluate:
    """Importance-sampled NLL (and more) of a saved run; prints the NLL (nats) as its last line."""

    checkpoint: Path
    """A work directory, its checkpoints/ or best/ folder, or one checkpoints/<epoch> folder."""
    checkpoint_choice: Literal["best", "last"] = "best"
    """For a work directory: its best checkpoint (kept by early stopping, --patience) when it has
    one, else its last; or its last regular checkpoint."""
    split: Literal["valid", "test"] = "valid"
    """Split to evaluate (the test split is not shipped: see reparam.train.data)."""
    data_dir: Path | None = None
    """Folder of binarized_mnist_<split>.amat[.gz] (default: the run's)."""
    k: int | None = None
    """Importance samples (default: the run's --eval-samples)."""
    examples: int | None = None
    """Evaluate the first N examples only (default: all)."""
    json: Path | None = None
    """Also write every measured value (per-example log p(x) too) to this JSON file."""


@dataclasses.dataclass(frozen=True)
class Compare:
    """One figure of several runs' validation curves, against passes and training minutes."""

    workdirs: Positional[tuple[Path, ...]]
    """Work directories of finished or running trainings."""
    out: Path
    """PNG file to write."""
    top: float | None = None
    """Upper limit of the y axis, nats (default: the experiment's)."""


@dataclasses.dataclass(frozen=True)
class Paired:
    """NLL differences to the first run, with paired standard errors (same examples)."""

    records: Positional[tuple[Path, ...]]
    """`evaluate --json` files, or work directories (their results.json)."""


@dataclasses.dataclass(frozen=True)
class Table:
    """Markdown table (and JSON rows) of finished runs, as in experiments/results/*.md."""

    workdirs: Positional[tuple[Path, ...]]
    """Work directories of finished runs."""
    json: Path | None = None
    """Also write the rows as JSON to this file."""
    record: bool = False
    """Gather the runs into experiments/results/records/<experiment>.json (`make results`)."""


@dataclasses.dataclass(frozen=True)
class Experiment:
    """An experiment module for `vae_commands.main`: it defines `Config` (a TrainingConfig with a
    `quick()` preset), `setup(config, require_test=False) -> Setup`, `evaluate_state(setup,
    params, split, num_samples=None) -> results` and `images(setup, params) -> (64 decoded
    samples, 32 validation images, their reconstructions)`, each (N, D) in [0, 1]."""

    module: types.ModuleType
    curves: tuple[str, str, str]  # metrics keys of the train and valid bound, valid label
    image_titles: tuple[str, str]  # of samples.png and reconstructions.png
    evaluate_fields: tuple[str, ...]  # what `evaluate` prints before the NLL
    compare_top: float | None = None
    table_columns: tuple[tuple[str, str], ...] = ()  # (header, results key) after the NLL
    # The defaults that depend on other flags: (config, argv) -> config.
    resolve: Callable[[Any, list[str]], Any] = lambda config, argv: config
    # metrics.jsonl keys whose per-epoch curves `table --record` keeps in the record, and a
    # function (record, results folder) -> {name: file} that draws more figures from it.
    record_curves: tuple[str, ...] = ()
    record_figures: Callable[[dict, Path], dict[str, Any]] | None = None

    @property
    def name(self) -> str:
        # __spec__.name: under `python -m experiments.vae_mnist` the module's __name__ is __main__.
        spec = getattr(self.module, "__spec__", None)
        return (spec.name if spec is not None else self.module.__name__).rpartition(".")[2]

    @property
    def description(self) -> str:
        return self.module.__doc__

    def __getattr__(self, name: str) -> Any:
        """The module's Config, setup, evaluate_state and images (looked up when used, so that
        tests can replace them)."""
        if name not in ("Config", "setup", "evaluate_state", "images"):
            raise AttributeError(name)
        return getattr(self.module, name)


def check_paths(command: Any) -> None:
    """The inputs a command reads must exist (outputs -- `out`, `json`, `workdir` -- need not)."""
    for field in dataclasses.fields(command):
        value = getattr(command, field.name)
        paths = value if isinstance(value, tuple) else (value,)
        if field.name in ("out", "json") or not all(isinstance(p, Path) for p in paths):
            continue
        flag = field.name if field.name == "workdirs" else "--" + field.name.replace("_", "-")
        require(len(paths) > 0, flag, "at least one path", value)
        for path in paths:
            require(path.exists(), flag, "an existing path", str(path))
