"""Training: a pure jitted train step, an epoch as one compiled `lax.scan`, checkpoints, resume.

The pieces, from the inside out (DESIGN.md, "Training conventions"):

* `make_train_step(loss_fn, optimizer)` -> `train_step(state, batch, key) -> (state, metrics)`:
  one optimizer step, pure; the step's key is `fold_in(key, state.step)`, so a run's randomness
  is a function of (key, step) alone and a resumed run draws exactly what the uninterrupted one
  would have.
* `make_train_epoch(loss_fn, optimizer, batch_size)` -> `train_epoch(state, data, key, epoch)`:
  one `jax.jit` (state donated) that shuffles the device-resident data with
  `fold_in(key, epoch)` and scans `train_step` over the batches. The Python loop calls it once
  per epoch, so per-step dispatch costs nothing.
* `Checkpointer`: orbax checkpoints (atomic: written to a temporary directory and renamed; the
  last N kept), restore with a clear `CheckpointError` when a checkpoint is missing or corrupt.
* `fit(...)`: the Python loop over epochs: JSONL metrics, a tqdm bar, a checkpoint every N
  epochs, resume, a time limit, and Ctrl-C (SIGINT) that finishes the running epoch, saves and
  returns with status "interrupted".
* `paper_schedule` / `adam`: the IWAE paper's optimizer (3^i passes at 1e-3·10^(−i/7)).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

Array = jax.Array
PyTree = Any
Metrics = dict[str, Array]
LossFn = Callable[[PyTree, Array, Array], tuple[Array, Metrics]]

# Distinct fold_in tags, so the per-step keys and the shuffle keys are independent streams.
_STEP_STREAM = 0
_SHUFFLE_STREAM = 1


class TrainState(NamedTuple):
    """Everything that changes during training (a pytree; checkpointed whole).

    Attributes:
      step: int32 scalar, optimizer steps taken so far.
      params: the model parameters.
      opt_state: the optax state (holds the schedule's step count too).
    """

    step: Array
    params: PyTree
    opt_state: PyTree


def create_state(params: PyTree, optimizer: optax.GradientTransformation) -> TrainState:
    return TrainState(jnp.zeros((), jnp.int32), params, optimizer.init(params))


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
    loss_fn: LossFn, optimizer: optax.GradientTransformation
) -> Callable[[TrainState, Array, Array], tuple[TrainState, Metrics]]:
    """One optimizer step, pure (wrap it in jax.jit, or scan it with `make_train_epoch`).

    Args:
      loss_fn: (params, batch, key) -> (scalar loss, metrics dict of scalars).
      optimizer: an optax transformation.

    Returns:
      train_step(state, batch, key) -> (new state, metrics with "loss" added); the loss sees
      the key `fold_in(key, state.step)`.
    """

    def train_step(state: TrainState, batch: Array, key: Array) -> tuple[TrainState, Metrics]:
        step_key = jax.random.fold_in(key, state.step)
        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, batch, step_key
        )
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return TrainState(state.step + 1, params, opt_state), {"loss": loss, **metrics}

    return train_step


def make_train_epoch(
    loss_fn: LossFn, optimizer: optax.GradientTransformation, batch_size: int
) -> Callable[[TrainState, Array, Array, Any], tuple[TrainState, Metrics]]:
    """One pass over the data as one compiled program.

    Returns:
      train_epoch(state, data, key, epoch) -> (state, metrics averaged over the epoch's steps),
      jitted with the state donated. `data` (N, ...) stays on the device; each epoch it is
      permuted with `fold_in(fold_in(key, 1), epoch)` and cut into N // batch_size batches (the
      remainder is dropped, as a different one each epoch). Steps use `fold_in(key, 0)` as the
      train step's key.
    """
    train_step = make_train_step(loss_fn, optimizer)

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

        def body(state: TrainState, indices: Array) -> tuple[TrainState, Metrics]:
            # Gather the batch inside the step: no shuffled copy of the whole data set.
            return train_step(state, jnp.take(data, indices, axis=0), step_key)

        state, metrics = jax.lax.scan(body, state, order)
        return state, jax.tree.map(jnp.mean, metrics)

    return jax.jit(train_epoch, donate_argnums=0)


# ---------------------------------------------------------------- checkpoints
class CheckpointError(RuntimeError):
    """A checkpoint directory is missing, empty, truncated or corrupt (the message names it)."""


class Checkpointer:
    """Orbax checkpoints of a `TrainState` plus JSON metadata, one per epoch number.

    Writes are synchronous and atomic (orbax writes a temporary directory and renames it when
    complete), and only the last `max_to_keep` are kept. Synchronous, because the training state
    is donated to the next epoch right after a save.
    """

    def __init__(self, directory: str | os.PathLike, max_to_keep: int = 3, create: bool = True):
        import orbax.checkpoint as ocp  # local: orbax is slow to import and only needed here

        self._ocp = ocp
        self.directory = Path(directory).absolute()
        if not create and not self.directory.is_dir():
            raise CheckpointError(f"checkpoint directory {self.directory} does not exist")
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep,
            create=create,
            enable_async_checkpointing=False,
        )
        self._manager = ocp.CheckpointManager(
            self.directory, options=options, item_names=("state", "meta")
        )

    def latest(self) -> int | None:
        """The newest saved epoch, or None."""
        return self._manager.latest_step()

    def all_epochs(self) -> list[int]:
        return list(self._manager.all_steps())

    def save(self, epoch: int, state: TrainState, meta: Mapping[str, Any] | None = None) -> None:
        """Save `state` (and JSON-able `meta`) as checkpoint `epoch`; replaces none."""
        ocp = self._ocp
        meta = {"epoch": int(epoch), **(meta or {})}
        self._manager.save(
            int(epoch),
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
            ),
            force=True,
        )
        self._manager.wait_until_finished()

    def restore(self, template: TrainState, epoch: int | None = None) -> tuple[TrainState, dict]:
        """Restore checkpoint `epoch` (default: the latest) into the structure of `template`.

        Raises:
          CheckpointError: no checkpoint, or one that cannot be read (names the directory).
        """
        ocp = self._ocp
        epoch = self.latest() if epoch is None else epoch
        if epoch is None:
            raise CheckpointError(f"no checkpoint found in {self.directory}")
        where = self.directory / str(epoch)
        to_struct = getattr(getattr(ocp, "utils", None), "to_shape_dtype_struct", None)
        abstract = template if to_struct is None else jax.tree.map(to_struct, template)
        try:
            restored = self._manager.restore(
                epoch,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
                ),
            )
            state, meta = restored["state"], restored["meta"]
            if meta is None:
                raise ValueError("its metadata (meta) is missing")
        except Exception as error:  # orbax/tensorstore raise many types for a damaged file
            raise CheckpointError(
                f"cannot restore checkpoint {epoch} from {where}: it is truncated, corrupt or "
                f"from another model ({_first_line(error)}). Delete it to fall back to an "
                f"earlier one, or start a fresh run."
            ) from error
        # NamedTuples come back as their own type; make sure of it for TrainState.
        return TrainState(*state), dict(meta)

    def close(self) -> None:
        self._manager.close()

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _first_line(error: BaseException, limit: int = 200) -> str:
    text = f"{type(error).__name__}: {error}".strip().splitlines()[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------- the loop
@dataclass
class FitResult:
    """What `fit` ends with.

    Attributes:
      state: the final training state.
      epoch: epochs completed.
      status: "completed", "interrupted" (SIGINT) or "time_limit".
      history: the metrics records written this call (one dict per epoch).
    """

    state: TrainState
    epoch: int
    status: str
    history: list[dict] = field(default_factory=list)


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


def _to_python(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {name: float(np.asarray(value)) for name, value in metrics.items()}


def fit(
    state: TrainState,
    train_epoch: Callable[[TrainState, Array, Array, Any], tuple[TrainState, Metrics]],
    data: Array,
    key: Array,
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
) -> FitResult:
    """Train for epochs `start+1 .. num_epochs`, where `start` is 0 or the resumed checkpoint.

    Writes `workdir/metrics.jsonl` (one JSON record per epoch: epoch, step, train metrics,
    lr, seconds, and `evaluate`'s metrics every `eval_every` epochs and at the end) and orbax
    checkpoints in `workdir/checkpoints` every `checkpoint_every` epochs and when it stops.

    Args:
      state: the initial state (also the structure a resumed checkpoint is read into).
      train_epoch: from `make_train_epoch`.
      data: the training set, put on the device once here.
      key: the run's key (the same on resume: randomness is a function of key, step, epoch).
      num_epochs: the epoch to stop after.
      workdir: where metrics and checkpoints go.
      checkpoint_every: epochs between checkpoints.
      keep_checkpoints: how many checkpoints to keep.
      resume: continue from the latest checkpoint in workdir if there is one; if False, old
        checkpoints and metrics in workdir are removed first.
      max_minutes: stop (and checkpoint) after the first epoch that ends past this wall time.
      evaluate: (state, epoch) -> dict of floats, e.g. a validation bound.
      eval_every: epochs between evaluations.
      learning_rate: the schedule, to log the rate.
      meta: JSON-able metadata stored with each checkpoint (e.g. the config).
      progress: draw a tqdm bar over epochs.
      on_epoch_end: called with (epoch, record) after each epoch is logged (tests use it).

    Returns:
      FitResult with status "completed", "interrupted" (first Ctrl-C: the running epoch ends,
      a checkpoint is saved, and fit returns) or "time_limit".
    """
    from tqdm.auto import tqdm

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    metrics_path = workdir / "metrics.jsonl"
    checkpoint_dir = workdir / "checkpoints"
    if not resume and checkpoint_dir.exists():
        import shutil

        shutil.rmtree(checkpoint_dir)
    if not resume and metrics_path.exists():
        metrics_path.unlink()
    checkpointer = Checkpointer(checkpoint_dir, max_to_keep=keep_checkpoints)
    start = 0
    if resume and checkpointer.latest() is not None:
        state, saved_meta = checkpointer.restore(state)
        start = int(saved_meta["epoch"])
        _rewrite_metrics(metrics_path, start)
    data = jax.device_put(data)
    meta = dict(meta or {})
    history: list[dict] = []
    status = "completed"
    epoch = start
    began = time.monotonic()
    last_saved = start if resume else None

    def save(epoch: int) -> None:
        nonlocal last_saved
        if last_saved != epoch:
            checkpointer.save(epoch, state, meta)
            last_saved = epoch

    bar = tqdm(
        total=num_epochs, initial=start, unit="epoch", disable=not progress, dynamic_ncols=True
    )
    try:
        with _Interrupt().installed() as interrupt, metrics_path.open("a") as log:
            for epoch in range(start + 1, num_epochs + 1):
                tic = time.perf_counter()
                state, metrics = train_epoch(state, data, key, epoch)
                record = {"epoch": epoch, "step": int(state.step), **_to_python(metrics)}
                record["seconds"] = time.perf_counter() - tic
                if learning_rate is not None:
                    record["lr"] = float(learning_rate(int(state.step) - 1))
                if evaluate is not None and (epoch % eval_every == 0 or epoch == num_epochs):
                    record.update(_to_python(evaluate(state, epoch)))
                log.write(json.dumps(record) + "\n")
                log.flush()
                history.append(record)
                bar.update(1)
                bar.set_postfix(loss=f"{record['loss']:.3f}")
                if on_epoch_end is not None:
                    on_epoch_end(epoch, record)
                if epoch % checkpoint_every == 0:
                    save(epoch)
                if interrupt.requested:
                    status = "interrupted"
                    break
                if max_minutes is not None and time.monotonic() - began > 60 * max_minutes:
                    status = "time_limit" if epoch < num_epochs else "completed"
                    break
            save(epoch)
    finally:
        bar.close()
        checkpointer.close()
    return FitResult(state, epoch, status, history)
