"""Checkpoints of a training run: orbax, atomic, keep-last-N, verified on restore.

`Checkpointer` writes a `TrainState` plus JSON metadata per epoch; the metadata holds a sha256 of
the state, checked on restore, so damage that still decodes is caught as well as files that no
longer decode. `open_checkpoint` opens a saved run (workdir, its checkpoints/ or best/ folder,
or one checkpoint) for evaluation: a work directory's best checkpoint (`BEST_DIRECTORY`, kept by
`reparam.train.EarlyStopping`) when it has one, else its latest.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax

from reparam.train import distributed
from reparam.train.state import TrainState

# Where `fit(..., early_stopping=...)` keeps the best checkpoint: workdir/best/<epoch>.
BEST_DIRECTORY = "best"
CHOICES = ("best", "last")


class CheckpointError(RuntimeError):
    """A checkpoint directory is missing, empty, truncated or corrupt (the message names it)."""


class CheckpointFallbackWarning(UserWarning):
    """The newest checkpoint could not be read and an earlier one was used."""


class Checkpointer:
    """Orbax checkpoints of a `TrainState` plus JSON metadata, one per epoch number.

    Writes are synchronous and atomic (orbax writes a temporary directory and renames it when
    complete), and only the last `max_to_keep` are kept. Synchronous, because the training state
    is donated to the next epoch right after a save. The metadata holds a sha256 of the state
    (`distributed.digest`), checked on restore: damage that still decodes (flipped bytes in an
    array file) is caught as well as files that no longer decode. In a multi-process run every
    process must call `save` and `restore` (orbax coordinates them; the directory must be shared).
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
        meta = {"epoch": int(epoch), **(meta or {}), "sha256": distributed.digest(state)}
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
            # NamedTuples come back as their own type; make sure of it for TrainState.
            state = TrainState(*state)
            expected = meta.get("sha256")
            if expected is not None and distributed.digest(state) != expected:
                raise ValueError("its arrays do not match the sha256 saved with them")
        except Exception as error:  # orbax/tensorstore raise many types for a damaged file
            raise CheckpointError(
                f"cannot restore checkpoint {epoch} from {where}: it is truncated, corrupt or "
                f"from another model ({_first_line(error)}). Delete it to fall back to an "
                f"earlier one, or start a fresh run."
            ) from error
        return state, dict(meta)

    def restore_meta(self, epoch: int) -> dict:
        """The JSON metadata saved with checkpoint `epoch` (e.g. the run's config), without its
        arrays: what a caller needs to rebuild the state's structure before `restore`.

        Raises:
          CheckpointError: the metadata cannot be read (names the checkpoint).
        """
        ocp = self._ocp
        try:
            meta = self._manager.restore(
                epoch, args=ocp.args.Composite(meta=ocp.args.JsonRestore())
            )["meta"]
            if meta is None:
                raise ValueError("its metadata (meta) is missing")
        except Exception as error:
            raise CheckpointError(
                f"cannot read the metadata of checkpoint {epoch} in {self.directory}: "
                f"{_first_line(error)}"
            ) from error
        return dict(meta)

    def restore_latest_valid(self, template: TrainState) -> tuple[TrainState, dict] | None:
        """Restore the newest checkpoint that reads back intact; None if there is none at all.

        Each unreadable checkpoint met on the way is moved to `<directory>.corrupt/<epoch>` (so
        the run can write that epoch again, and the evidence is kept) with a
        `CheckpointFallbackWarning` that carries the `CheckpointError` message.

        Raises:
          CheckpointError: checkpoints exist but none of them can be read.
        """
        errors = []
        for epoch in sorted(self.all_epochs(), reverse=True):
            try:
                return self.restore(template, epoch)
            except CheckpointError as error:
                errors.append(str(error))
                moved = self.quarantine(epoch)
                message = f"{error} Moved it to {moved}; trying an earlier checkpoint."
                warnings.warn(message, CheckpointFallbackWarning, stacklevel=2)
                if distributed.is_primary():
                    print(f"warning: {message}", file=sys.stderr, flush=True)
        if errors:
            raise CheckpointError(
                f"no readable checkpoint in {self.directory}: " + " | ".join(errors)
            )
        return None

    def quarantine(self, epoch: int) -> Path:
        """Move checkpoint `epoch` out of the directory, to `<directory>.corrupt/<epoch>[.n]`."""
        target_dir = self.directory.with_name(self.directory.name + ".corrupt")
        target = target_dir / str(epoch)
        suffix = 0
        while target.exists():
            suffix += 1
            target = target_dir / f"{epoch}.{suffix}"
        distributed.barrier(f"reparam-quarantine-{epoch}-before")
        if distributed.is_primary():
            target_dir.mkdir(parents=True, exist_ok=True)
            shutil.move(str(self.directory / str(epoch)), str(target))
        distributed.barrier(f"reparam-quarantine-{epoch}-after")
        self.reload()
        return target

    def reload(self) -> None:
        """Read the directory's list of checkpoints again (after files were moved or removed)."""
        self._manager.reload()

    def close(self) -> None:
        self._manager.close()

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def open_checkpoint(
    path: str | os.PathLike, choice: str = "best"
) -> tuple[Checkpointer, int, dict]:
    """Open a saved run for reading: `path` is a workdir, its checkpoints/ or best/ folder, or
    one checkpoint's folder (checkpoints/<epoch>, best/<epoch>).

    Args:
      path: what to open.
      choice: for a workdir, which checkpoint: "best", its best checkpoint (workdir/best, kept by
        early stopping) when it has one and else its latest; "last", its latest regular one.
        A folder or checkpoint named by `path` is opened as named.

    Returns:
      (the Checkpointer, the epoch: the one named or else the latest, that epoch's metadata).
      `checkpointer.directory.name == BEST_DIRECTORY` tells a best checkpoint.

    Raises:
      CheckpointError: the path does not exist, holds no checkpoint, or its metadata is unreadable.
    """
    if choice not in CHOICES:
        raise ValueError(f"reparam.train.open_checkpoint: `choice` must be one of {CHOICES}")
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint path {path} does not exist")
    epoch = None
    best = path / BEST_DIRECTORY
    if choice == "best" and best.is_dir() and any(p.name.isdigit() for p in best.iterdir()):
        path = best
    elif (path / "checkpoints").is_dir():
        path = path / "checkpoints"
    elif path.name.isdigit() and (path / "state").exists():
        path, epoch = path.parent, int(path.name)
    checkpointer = Checkpointer(path, create=False)
    epoch = checkpointer.latest() if epoch is None else epoch
    if epoch is None:
        raise CheckpointError(f"no checkpoint found in {checkpointer.directory}")
    return checkpointer, epoch, checkpointer.restore_meta(epoch)


def _first_line(error: BaseException, limit: int = 200) -> str:
    text = f"{type(error).__name__}: {error}".strip().splitlines()[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = [
    "BEST_DIRECTORY",
    "CheckpointError",
    "CheckpointFallbackWarning",
    "Checkpointer",
    "open_checkpoint",
]
