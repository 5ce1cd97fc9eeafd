"""Training: the jitted, donated train step, an epoch as one `lax.scan`, the epoch loop,
checkpoints, data, evaluation and distribution over devices.

Modules: `loop` (step, epoch, `fit`), `state` (`TrainState`), `checkpoint` (orbax, verified
restore), `data` (binarized MNIST and digits loaders, the only module here that reads files or the
network), `evaluate` (importance-sampled NLL, active units), `distributed` (`jax.sharding` meshes
and `jax.distributed` launch). The names below are the loop's public API, as `reparam.train.fit`,
`reparam.train.EarlyStopping` etc.; the other modules are imported by name
(`from reparam.train import data`).
"""

from reparam.train.checkpoint import (
    BEST_DIRECTORY,
    Checkpointer,
    CheckpointError,
    CheckpointFallbackWarning,
    open_checkpoint,
)
from reparam.train.loop import (
    EarlyStopping,
    FitResult,
    adam,
    chunked_over_samples,
    fit,
    make_train_epoch,
    make_train_step,
    paper_epochs,
    paper_schedule,
    place_data,
    place_state,
)
from reparam.train.state import TrainState, create_state

__all__ = [
    "BEST_DIRECTORY",
    "CheckpointError",
    "CheckpointFallbackWarning",
    "Checkpointer",
    "EarlyStopping",
    "FitResult",
    "TrainState",
    "adam",
    "chunked_over_samples",
    "create_state",
    "fit",
    "make_train_epoch",
    "make_train_step",
    "open_checkpoint",
    "paper_epochs",
    "paper_schedule",
    "place_data",
    "place_state",
]
