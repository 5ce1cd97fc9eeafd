"""The training state: a pytree of step, parameters and optimizer state."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

Array = jax.Array
PyTree = Any


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


__all__ = ["TrainState", "create_state"]
