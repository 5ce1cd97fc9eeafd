"""Training: a pure jitted train step, an epoch as one compiled `lax.scan`, checkpoints, resume.

The pieces, from the inside out (docs/DESIGN.md, "Training"):

* `make_train_step(loss_fn, optimizer)` -> `train_step(state, batch, key) -> (state, metrics)`:
  one optimizer step, pure; the step's key is `fold_in(key, state.step)`, so a run's randomness
  is a function of (key, step) alone and a resumed run draws exactly what the uninterrupted one
  would have.
* `make_train_epoch(loss_fn, optimizer, batch_size)` -> `train_epoch(state, data, key, epoch)`:
  one `jax.jit` (state donated) that shuffles the device-resident data with
  `fold_in(key, epoch)` and scans `train_step` over the batches. The Python loop calls it once
  per epoch, so per-step dispatch costs nothing.
  With a `mesh` (`reparam.distributed.make_mesh`) the batches are sharded over its "data" axis
  and the state is replicated (or sharded with `shard_params=True`): data parallelism by XLA's
  partitioner, one program for one device or many, one process or many.
* `chunked_over_samples(fn, chunk_size)`: a large-K objective's per-sample function evaluated a
  chunk of samples at a time under `jax.checkpoint`, so training with K in the thousands keeps
  one chunk's activations, not K's.
* `Checkpointer`: orbax checkpoints (atomic: written to a temporary directory and renamed; the
  last N kept) with a sha256 of the state in their metadata; restore raises a clear
  `CheckpointError` when a checkpoint is missing, truncated or corrupt, and
  `restore_latest_valid` falls back to the newest one that reads back intact.
* `fit(...)`: the Python loop over epochs: JSONL metrics, a tqdm bar, a checkpoint every N
  epochs, resume (surviving SIGKILL: it continues from the last checkpoint and ends bit for bit
  where an uninterrupted run ends), a time limit, and Ctrl-C (SIGINT) that finishes the running
  epoch, saves and returns with status "interrupted".
* `EarlyStopping`: with `fit(..., early_stopping=...)` the best state by a validation metric is
  kept as its own checkpoint (`workdir/best`, outside the rotation of the regular ones), and the
  run stops with status "early_stopped" after `patience` evaluations without improvement.
* `paper_schedule` / `adam`: the IWAE paper's optimizer (3^i passes at 1e-3·10^(−i/7)).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from reparam.train import distributed
from reparam.train.checkpoint import (
    BEST_DIRECTORY,
    Checkpointer,
    CheckpointError,
)
from reparam.train.state import TrainState

Array = jax.Array
PyTree = Any
Metrics = dict[str, Array]
LossFn = Callable[[PyTree, Array, Array], tuple[Array, Metrics]]

# Distinct fold_in tags, so the per-step keys and the shuffle keys are independent streams.
_STEP_STREAM = 0
_SHUFFLE_STREAM = 1


# ---------------------------------------------------------------- optimizer and schedule
def paper_epochs(stages: int = 8) -> int:
    """Passes in the IWAE paper's schedule: Σ_{i<stages} 3^i (3280 for 8 stages)."""
    return sum(3**i for i in range(stages))


def paper_schedule(steps_per_epoch: int, base_lr: float = 1e-3, stages: int = 8) -> optax.Schedule:
    """Learning rate of Burda et al. (2016): 3^i passes at base_lr·10^(−i/7), i = 0..stages−1.

    After the last stage the rate stays at the last stage's value (a truncated or extended run
    keeps a well-defined rate).
    """
    boundaries, epochs = {}, 0
    for i in range(stages - 1):
        epochs += 3**i
        boundaries[epochs * steps_per_epoch] = 10 ** (-1 / 7)
    return optax.piecewise_constant_schedule(base_lr, boundaries)


def adam(
    learning_rate: float | optax.Schedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-4
) -> optax.GradientTransformation:
    """Adam with the IWAE paper's β2 = 0.999 and ε = 1e-4 as defaults."""
    return optax.adam(learning_rate, b1=b1, b2=b2, eps=eps)


# ---------------------------------------------------------------- step and epoch
def make_train_step(
    loss_fn: LossFn, optimizer: optax.GradientTransformation, *, with_step: bool = False
) -> Callable[[TrainState, Array, Array], tuple[TrainState, Metrics]]:
    """One optimizer step, pure (wrap it in jax.jit, or scan it with `make_train_epoch`).

    Args:
      loss_fn: (params, batch, key) -> (scalar loss, metrics dict of scalars); with
        `with_step`, (params, batch, key, step) where step is the int32 scalar count of steps
        taken before this one (traced: schedules inside the loss, e.g. a temperature annealed
        with the global step, use jnp on it).
      optimizer: an optax transformation.
      with_step: pass the global step to `loss_fn` as a fourth argument.

    Returns:
      train_step(state, batch, key) -> (new state, metrics with "loss" added); the loss sees
      the key `fold_in(key, state.step)`.
    """

    def train_step(state: TrainState, batch: Array, key: Array) -> tuple[TrainState, Metrics]:
        step_key = jax.random.fold_in(key, state.step)
        extra = (state.step,) if with_step else ()
        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, batch, step_key, *extra
        )
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return TrainState(state.step + 1, params, opt_state), {"loss": loss, **metrics}

    return train_step


def make_train_epoch(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    batch_size: int,
    *,
    mesh: Mesh | None = None,
    shard_params: bool = False,
    with_step: bool = False,
) -> Callable[[TrainState, Array, Array, Any], tuple[TrainState, Metrics]]:
    """One pass over the data as one compiled program.

    Args:
      loss_fn, optimizer, with_step: as for `make_train_step` (with `with_step` the loss also
        receives the global step, so a schedule inside it continues across epochs and resumes).
      batch_size: examples per step (global: over all devices of the mesh).
      mesh: a `reparam.distributed.make_mesh` mesh: each batch is sharded over its "data" axis
        (batch_size must be a multiple of its size) and the state keeps the sharding of
        `distributed.state_shardings` (place the state and data with `place_state` and
        `place_data`, as `fit` does). None: whatever single device the arguments are on.
      shard_params: with a mesh, shard each parameter (and its optimizer moments) over the data
        axis instead of replicating it.

    Returns:
      train_epoch(state, data, key, epoch) -> (state, metrics averaged over the epoch's steps),
      jitted with the state donated. `data` (N, ...) stays on the device; each epoch it is
      permuted with `fold_in(fold_in(key, 1), epoch)` and cut into N // batch_size batches (the
      remainder is dropped, as a different one each epoch). Steps use `fold_in(key, 0)` as the
      train step's key. The same key gives the same batches and noise on any mesh (JAX's
      threefry is partitionable), so runs on 1 and n devices differ only by the order of
      floating-point sums.
    """
    if mesh is not None and batch_size % mesh.shape[distributed.DATA_AXIS] != 0:
        raise ValueError(
            f"reparam.train.make_train_epoch: `batch_size` {batch_size} must be a multiple of the "
            f"{mesh.shape[distributed.DATA_AXIS]} devices of the mesh's data axis"
        )
    train_step = make_train_step(loss_fn, optimizer, with_step=with_step)

    def constrain(tree: Any, shardings: Any) -> Any:
        return tree if mesh is None else jax.lax.with_sharding_constraint(tree, shardings)

    def train_epoch(
        state: TrainState, data: Array, key: Array, epoch: Any
    ) -> tuple[TrainState, Metrics]:
        num_batches = data.shape[0] // batch_size
        if num_batches == 0:
            raise ValueError(
                f"reparam.train: {data.shape[0]} examples are fewer than one batch of {batch_size}"
            )
        shuffle_key = jax.random.fold_in(jax.random.fold_in(key, _SHUFFLE_STREAM), epoch)
        order = jax.random.permutation(shuffle_key, data.shape[0])
        order = order[: num_batches * batch_size].reshape(num_batches, batch_size)
        step_key = jax.random.fold_in(key, _STEP_STREAM)
        if mesh is not None:
            # Each device gets the indices of its slice of every batch and gathers those rows
            # from its own copy of the (replicated) data: no communication for the batches.
            order = constrain(order, distributed.batch_sharding(mesh, 2, axis=1))
            shardings = distributed.state_shardings(state, mesh, shard_params)
            state = constrain(state, shardings)

        def body(state: TrainState, indices: Array) -> tuple[TrainState, Metrics]:
            # Gather the batch inside the step: no shuffled copy of the whole data set.
            batch = jnp.take(data, indices, axis=0)
            if mesh is not None:
                batch = constrain(batch, distributed.batch_sharding(mesh, batch.ndim))
            state, metrics = train_step(state, batch, step_key)
            if mesh is not None:
                state = constrain(state, shardings)  # keep the carry where it started
            return state, metrics

        state, metrics = jax.lax.scan(body, state, order)
        return state, jax.tree.map(jnp.mean, metrics)

    return jax.jit(train_epoch, donate_argnums=0)


def place_state(state: TrainState, mesh: Mesh | None, shard_params: bool = False) -> TrainState:
    """Put a state on the mesh as `make_train_epoch(..., mesh=mesh)` keeps it (no-op without)."""
    if mesh is None:
        return state
    return distributed.put(state, distributed.state_shardings(state, mesh, shard_params))


def place_data(data: Any, mesh: Mesh | None) -> Array:
    """Put the training set on the device(s) once: replicated over the mesh, if there is one."""
    if mesh is None:
        return jax.device_put(data)
    return distributed.put_replicated(data, mesh)


# ---------------------------------------------------------------- large K
def chunked_over_samples(
    fn: Callable[[Array], Array], chunk_size: int, *, remat: bool = True
) -> Callable[[Array], Array]:
    """`fn` applied `chunk_size` samples at a time along axis 0, for objectives with large K.

    `fn` maps z of shape (K, ...) to per-sample values (K, ...) with each sample independent of
    the others (e.g. log p(x|z_k) through a decoder). The returned function gives the same
    values, computed by `lax.map` over ⌈K/chunk_size⌉ chunks; with `remat` each chunk is under
    `jax.checkpoint`, so reverse mode stores only each chunk's input and recomputes its
    activations. The gradient's memory then grows like K·(per-sample inputs and outputs) plus
    chunk_size·(per-sample activations), instead of K·(per-sample activations); for the IWAE
    gradient of an MLP decoder with widths H1, H2, D that is about 4 bytes · B · (6·d·K +
    2·(H1 + H2 + D)·chunk_size) of temporaries in float32 (tests/test_large_k.py checks the
    bound). DReG is chunked the same way: `reparam.estimators.iwae_surrogate` builds it from two
    passes of `fn` over the samples (the weights without gradient, then the surrogate), so it
    keeps one chunk's activations. To measure the temporaries of each gradient for a given K,
    batch and chunk (XLA's memory analysis of the compiled step), run
    `python -m benchmarks.scaling --gradient-temporaries K B CHUNK`.

    Args:
      fn: z (K, ...) -> (K, ...).
      chunk_size: samples per chunk (≥ 1); K ≤ chunk_size calls `fn` once, unchanged.
      remat: recompute each chunk's activations in the backward pass (the memory saving for
        training; evaluation without gradients does not need it).

    Returns:
      z (K, ...) -> (K, ...).
    """
    if chunk_size < 1:
        raise ValueError(
            f"reparam.train.chunked_over_samples: `chunk_size` must be >= 1; got {chunk_size}"
        )
    # prevent_cse=False: inside lax.map (a scan) CSE cannot undo the rematerialization.
    body = jax.checkpoint(fn, prevent_cse=False) if remat else fn

    def chunked(z: Array) -> Array:
        num_samples = z.shape[0]
        if num_samples <= chunk_size:
            return fn(z)
        full = num_samples // chunk_size * chunk_size
        parts = jax.lax.map(body, z[:full].reshape(-1, chunk_size, *z.shape[1:]))
        out = jax.tree.map(lambda a: a.reshape(full, *a.shape[2:]), parts)
        if full < num_samples:
            rest = body(z[full:])
            out = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), out, rest)
        return out

    return chunked


# ---------------------------------------------------------------- early stopping


@dataclass(frozen=True)
class EarlyStopping:
    """Keep the best state by a validation metric; stop when it has stopped improving.

    Given to `fit(..., early_stopping=...)`, which checks the metric at each evaluation (every
    `eval_every` epochs): a value better than the best so far (by more than `min_delta`) is
    saved as the best checkpoint, `workdir/best/<epoch>` (orbax, atomic, only the newest best
    kept; its metadata holds the epoch, the metric and its value, and the run's `meta`); the
    regular checkpoints' rotation never touches it. After `patience` evaluations in a row
    without improvement `fit` saves and returns with status "early_stopped".

    Attributes:
      metric: the key of `evaluate`'s result to watch, e.g. "valid_elbo".
      mode: "max" (a bound, an accuracy) or "min" (a loss).
      patience: evaluations without improvement before stopping (≥ 1); None keeps the best
        checkpoint and never stops.
      min_delta: how much (≥ 0) a value must beat the best by to count as an improvement.
    """

    metric: str
    mode: str = "max"
    patience: int | None = None
    min_delta: float = 0.0

    def __post_init__(self) -> None:
        where = "reparam.train.EarlyStopping"
        if not isinstance(self.metric, str) or not self.metric:
            raise ValueError(f"{where}: `metric` must be a metric's name; got {self.metric!r}")
        if self.mode not in ("max", "min"):
            raise ValueError(f"{where}: `mode` must be 'max' or 'min'; got {self.mode!r}")
        patience = self.patience
        if patience is not None and (
            isinstance(patience, bool) or not isinstance(patience, int) or patience < 1
        ):
            raise ValueError(
                f"{where}: `patience` must be an integer >= 1 or None; got {patience!r}"
            )
        if not self.min_delta >= 0:
            raise ValueError(f"{where}: `min_delta` must be >= 0; got {self.min_delta!r}")

    def improves(self, value: float, best: float | None) -> bool:
        """Whether `value` beats `best` (None: nothing yet); a NaN never does."""
        if math.isnan(value):
            return False
        if best is None:
            return True
        if self.mode == "max":
            return value > best + self.min_delta
        return value < best - self.min_delta


@dataclass
class _Tracker:
    """Early stopping's state: the best value and its epoch, evaluations since it. Saved in the
    metadata of every checkpoint (key "early_stopping"), so a resumed run continues it."""

    rule: EarlyStopping
    best: float | None = None
    best_epoch: int | None = None
    since_best: int = 0

    def update(self, epoch: int, value: float) -> bool:
        if self.rule.improves(value, self.best):
            self.best, self.best_epoch, self.since_best = value, epoch, 0
            return True
        self.since_best += 1
        return False

    @property
    def exhausted(self) -> bool:
        return self.rule.patience is not None and self.since_best >= self.rule.patience

    def as_meta(self) -> dict[str, Any]:
        return {
            "metric": self.rule.metric,
            "mode": self.rule.mode,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "since_best": self.since_best,
        }


def _warn(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=3)
    if distributed.is_primary():
        print(f"warning: {message}", file=sys.stderr, flush=True)


def _resume_tracker(
    rule: EarlyStopping,
    saved_meta: Mapping[str, Any],
    best: Checkpointer,
    start: int,
    eval_every: int,
) -> _Tracker:
    """Early stopping's state at the resumed epoch `start`.

    The best value and epoch are read back from the best checkpoint's metadata; the evaluations
    since it from the resumed checkpoint's metadata, which holds the whole state as of `start`
    (when that checkpoint was written without early stopping, they are counted from
    `eval_every`). A best checkpoint after `start` (saved after the last regular checkpoint,
    before the process died) is removed: the resumed run redoes those epochs bit for bit and
    saves it again.
    """
    saved = dict(saved_meta.get("early_stopping") or {})
    if saved.get("metric") != rule.metric or saved.get("mode") != rule.mode:
        saved = {}
    ahead = [e for e in best.all_epochs() if e > start]
    if ahead:
        distributed.barrier("reparam-best-ahead-before")
        if distributed.is_primary():
            for epoch in ahead:
                shutil.rmtree(best.directory / str(epoch), ignore_errors=True)
        distributed.barrier("reparam-best-ahead-after")
        best.reload()
    tracker = _Tracker(rule)
    epoch = best.latest()
    if epoch is not None:
        try:
            meta = best.restore_meta(epoch)["early_stopping"]
            if meta["metric"] == rule.metric and meta["mode"] == rule.mode:
                tracker.best, tracker.best_epoch = float(meta["best"]), int(epoch)
        except (CheckpointError, KeyError, TypeError) as error:
            _warn(f"cannot read the best checkpoint {best.directory / str(epoch)}: {error}")
    if saved.get("best_epoch") is not None and saved["best_epoch"] != tracker.best_epoch:
        # Its state is gone (replaced by a best after `start`, now removed, or deleted by hand):
        # keep its value, so that no worse state is ever saved as the best.
        _warn(
            f"the best checkpoint of epoch {saved['best_epoch']} is missing from "
            f"{best.directory}; early stopping keeps its value ({saved['best']}), and the "
            "best checkpoint is written again at the next improvement"
        )
        tracker.best, tracker.best_epoch = float(saved["best"]), int(saved["best_epoch"])
    if tracker.best_epoch is None:
        return tracker
    if saved.get("best_epoch") == tracker.best_epoch:
        tracker.since_best = int(saved.get("since_best", 0))
    else:  # the resumed checkpoint predates early stopping: count the evaluations since
        tracker.since_best = start // eval_every - tracker.best_epoch // eval_every
    return tracker


# ---------------------------------------------------------------- the loop
@dataclass
class FitResult:
    """What `fit` ends with.

    Attributes:
      state: the final training state (the last epoch's, not the best's).
      epoch: epochs completed.
      status: "completed", "interrupted" (SIGINT), "time_limit" or "early_stopped".
      history: the metrics records written this call (one dict per epoch).
      best_epoch, best_value: with early stopping, the epoch of the best checkpoint
        (`workdir/best/<epoch>`) and its metric's value (None without, or before any
        evaluation).
    """

    state: TrainState
    epoch: int
    status: str
    history: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    best_value: float | None = None


class _Interrupt:
    """Turns the first SIGINT into a flag (the loop saves and stops after the running epoch);
    a second SIGINT raises KeyboardInterrupt as usual."""

    def __init__(self) -> None:
        self.requested = False

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    @contextlib.contextmanager
    def installed(self) -> Iterator[_Interrupt]:
        # signal handlers can only be set from the main thread; elsewhere SIGINT keeps Python's
        # default (KeyboardInterrupt).
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.signal(signal.SIGINT, self._handle)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


def _rewrite_metrics(path: Path, last_epoch: int) -> None:
    """Keep only the records of epochs ≤ last_epoch (a resumed run re-logs what it redoes)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a kill
        if record.get("epoch", 0) <= last_epoch:
            kept.append(json.dumps(record))
    path.write_text("".join(k + "\n" for k in kept))


class _NullLog:
    """Where the metrics of processes other than 0 go."""

    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass


def _to_python(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {name: float(np.asarray(value)) for name, value in metrics.items()}


def fit(
    key: Array,
    state: TrainState,
    train_epoch: Callable[[TrainState, Array, Array, Any], tuple[TrainState, Metrics]],
    data: Array,
    *,
    num_epochs: int,
    workdir: str | os.PathLike,
    checkpoint_every: int = 10,
    keep_checkpoints: int = 3,
    resume: bool = False,
    max_minutes: float | None = None,
    evaluate: Callable[[TrainState, int], Mapping[str, Any]] | None = None,
    eval_every: int = 10,
    learning_rate: optax.Schedule | None = None,
    meta: Mapping[str, Any] | None = None,
    progress: bool = True,
    on_epoch_end: Callable[[int, dict], None] | None = None,
    mesh: Mesh | None = None,
    shard_params: bool = False,
    early_stopping: EarlyStopping | None = None,
) -> FitResult:
    """Train for epochs `start+1 .. num_epochs`, where `start` is 0 or the resumed checkpoint.

    Writes `workdir/metrics.jsonl` (one JSON record per epoch: epoch, step, train metrics,
    lr, seconds, and `evaluate`'s metrics every `eval_every` epochs and at the end) and orbax
    checkpoints in `workdir/checkpoints` every `checkpoint_every` epochs and when it stops;
    with `early_stopping`, also the best state in `workdir/best` (see `EarlyStopping`).

    Args:
      key: the run's key (the same on resume: randomness is a function of key, step, epoch).
      state: the initial state (also the structure a resumed checkpoint is read into).
      train_epoch: from `make_train_epoch`.
      data: the training set, put on the device once here.
      num_epochs: the epoch to stop after.
      workdir: where metrics and checkpoints go.
      checkpoint_every: epochs between checkpoints.
      keep_checkpoints: how many checkpoints to keep.
      resume: continue from the latest readable checkpoint in workdir if there is one (a
        truncated or corrupt newest checkpoint is moved aside with a warning and the previous
        one is used: `Checkpointer.restore_latest_valid`), with early stopping's best value
        and epoch read back from the best checkpoint's metadata; a run that had stopped early
        returns at once (unless a larger `patience` lets it go on). If False, old checkpoints
        (best included) and metrics in workdir are removed first.
      max_minutes: stop (and checkpoint) after the first epoch that ends past this wall time.
      evaluate: (state, epoch) -> dict of floats, e.g. a validation bound.
      eval_every: epochs between evaluations.
      learning_rate: the schedule, to log the rate.
      meta: JSON-able metadata stored with each checkpoint (e.g. the config).
      progress: draw a tqdm bar over epochs.
      on_epoch_end: called with (epoch, record) after each epoch is logged (tests use it).
      mesh, shard_params: data parallelism, as given to `make_train_epoch` (the state and data
        are placed on the mesh here). In a multi-process run (`reparam.distributed.initialize`)
        every process calls `fit` alike; process 0 alone writes metrics.jsonl and draws the bar.
      early_stopping: keep the best state by `evaluate`'s metric `early_stopping.metric` and
        stop after `early_stopping.patience` evaluations without improvement (`EarlyStopping`);
        needs `evaluate`.

    Returns:
      FitResult with status "completed", "interrupted" (first Ctrl-C: the running epoch ends,
      a checkpoint is saved, and fit returns), "time_limit" or "early_stopped" (the last
      state is checkpointed as usual; the best is `workdir/best/<result.best_epoch>`).
    """
    from tqdm.auto import tqdm

    if early_stopping is not None and evaluate is None:
        raise ValueError("reparam.train.fit: `early_stopping` needs an `evaluate` function")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    metrics_path = workdir / "metrics.jsonl"
    checkpoint_dir, best_dir = workdir / "checkpoints", workdir / BEST_DIRECTORY
    primary = distributed.is_primary()
    if primary and not resume:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
        shutil.rmtree(best_dir, ignore_errors=True)
        metrics_path.unlink(missing_ok=True)
    distributed.barrier("reparam-fit-start")  # nobody opens checkpoints before they are cleared
    checkpointer = Checkpointer(checkpoint_dir, max_to_keep=keep_checkpoints)
    best = None if early_stopping is None else Checkpointer(best_dir, max_to_keep=1)
    distributed.check_same_everywhere((state, data), "initial state or training data")
    # Placed before a restore, so that orbax reads the checkpoint straight into the mesh.
    state = place_state(state, mesh, shard_params)
    start = 0
    restored = checkpointer.restore_latest_valid(state) if resume else None
    saved_meta: Mapping[str, Any] = {}
    if restored is not None:
        state, saved_meta = restored
        state = place_state(state, mesh, shard_params)
        start = int(saved_meta["epoch"])
        if primary:
            _rewrite_metrics(metrics_path, start)
    tracker = None
    if early_stopping is not None:
        tracker = _Tracker(early_stopping)
        if best is not None and resume:
            tracker = _resume_tracker(early_stopping, saved_meta, best, start, eval_every)
    data = place_data(data, mesh)
    meta = dict(meta or {})
    history: list[dict] = []
    status = "completed"
    epoch = start
    began = time.monotonic()
    last_saved = start if resume else None

    def with_tracker() -> dict[str, Any]:
        return meta if tracker is None else {**meta, "early_stopping": tracker.as_meta()}

    def save(epoch: int) -> None:
        nonlocal last_saved
        if last_saved != epoch:
            checkpointer.save(epoch, state, with_tracker())
            last_saved = epoch

    # A resumed run that had stopped early (and whose patience is still spent) trains no more.
    last_epoch = num_epochs
    if tracker is not None and tracker.exhausted and start < num_epochs:
        status, last_epoch = "early_stopped", start

    bar = tqdm(
        total=num_epochs,
        initial=start,
        unit="epoch",
        disable=not (progress and primary),
        dynamic_ncols=True,
    )
    log_file = metrics_path.open("a") if primary else contextlib.nullcontext(_NullLog())
    try:
        with _Interrupt().installed() as interrupt, log_file as log:
            for epoch in range(start + 1, last_epoch + 1):
                tic = time.perf_counter()
                state, metrics = train_epoch(state, data, key, epoch)
                record = {"epoch": epoch, "step": int(state.step), **_to_python(metrics)}
                record["seconds"] = time.perf_counter() - tic
                if learning_rate is not None:
                    record["lr"] = float(learning_rate(int(state.step) - 1))
                evaluated = evaluate is not None and (
                    epoch % eval_every == 0 or epoch == num_epochs
                )
                evaluation = _to_python(evaluate(state, epoch)) if evaluated else {}
                record.update(evaluation)
                if tracker is not None and evaluated:
                    if tracker.rule.metric not in evaluation:
                        raise ValueError(
                            f"reparam.train.fit: early stopping watches {tracker.rule.metric!r}, "
                            f"which `evaluate` does not return (it returns {sorted(evaluation)})"
                        )
                    # Every process saves the best together, on process 0's word.
                    (improved,) = distributed.agree(
                        tracker.update(epoch, evaluation[tracker.rule.metric])
                    )
                    if improved:
                        best.save(epoch, state, with_tracker())
                log.write(json.dumps(record) + "\n")
                log.flush()
                history.append(record)
                bar.update(1)
                bar.set_postfix(loss=f"{record['loss']:.3f}")
                if on_epoch_end is not None:
                    on_epoch_end(epoch, record)
                if epoch % checkpoint_every == 0:
                    save(epoch)
                out_of_time = max_minutes is not None and (
                    time.monotonic() - began > 60 * max_minutes
                )
                # Processes stop together, on process 0's word (their clocks and signals differ).
                exhausted = tracker is not None and tracker.exhausted
                interrupted, out_of_time, exhausted = distributed.agree(
                    interrupt.requested, out_of_time, exhausted
                )
                if interrupted:
                    status = "interrupted"
                    break
                if exhausted and epoch < num_epochs:
                    status = "early_stopped"
                    break
                if out_of_time:
                    status = "time_limit" if epoch < num_epochs else "completed"
                    break
            save(epoch)
    finally:
        bar.close()
        checkpointer.close()
        if best is not None:
            best.close()
    if tracker is None:
        return FitResult(state, epoch, status, history)
    return FitResult(state, epoch, status, history, tracker.best_epoch, tracker.best)


__all__ = [
    "EarlyStopping",
    "FitResult",
    "adam",
    "chunked_over_samples",
    "fit",
    "make_train_epoch",
    "make_train_step",
    "paper_epochs",
    "paper_schedule",
    "place_data",
    "place_state",
]
