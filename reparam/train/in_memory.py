"""Training on small data sets held whole on the device: full-batch optimization as one compiled
`lax.scan` over steps (`fit_full_batch`), and minibatch epochs over a pytree of arrays such as
(inputs, labels) (`make_minibatch_epoch`, and `run_epochs`, the Python loop over them).

Both reuse `make_train_step` (the step's key is `fold_in(key, state.step)`); the loss is
`loss_fn(params, batch, key) -> (loss, metrics)`, as for `make_train_epoch`. With a `mesh`
(`reparam.train.distributed.make_mesh`), every batch is split over its data axis and the state
stays replicated: XLA sums the gradients across devices.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh
from tqdm.auto import tqdm

from reparam.train import distributed
from reparam.train.loop import LossFn, Metrics, make_train_step
from reparam.train.state import TrainState

Array = jax.Array
PyTree = Any

# fold_in tags of the epoch key, as in `make_train_epoch`: step keys and shuffles independent.
_STEP_STREAM = 0
_SHUFFLE_STREAM = 1


def fit_full_batch(
    key: Array,
    state: TrainState,
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    data: PyTree,
    *,
    num_steps: int,
    mesh: Mesh | None = None,
) -> tuple[TrainState, Metrics]:
    """`num_steps` optimizer steps, each on the whole of `data`, as one jitted `lax.scan`.

    Returns the final state and the metrics of every step ((num_steps,) arrays, "loss" among
    them). Compiles once per call (`loss_fn` is a closure): call it once per run.
    """
    if num_steps < 1:
        raise ValueError(f"reparam.train.fit_full_batch: `num_steps` must be >= 1, got {num_steps}")
    train_step = make_train_step(loss_fn, optimizer)

    @functools.partial(jax.jit, donate_argnums=1)
    def run(key: Array, state: TrainState, data: PyTree) -> tuple[TrainState, Metrics]:
        def body(state: TrainState, _) -> tuple[TrainState, Metrics]:
            state, metrics = train_step(state, distributed.shard_batch(data, mesh), key)
            return distributed.keep_replicated(state, mesh), metrics

        return jax.lax.scan(body, state, None, length=num_steps)

    return run(key, state, data)


def make_minibatch_epoch(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    batch_size: int,
    *,
    mesh: Mesh | None = None,
):
    """`epoch(key, state, data, index) -> (state, metrics averaged over its steps)`, jitted:
    one shuffled pass over `data`, a pytree of arrays with a common leading axis N (e.g.
    (inputs, labels)), in N // batch_size minibatches (the remainder dropped, a different one
    each epoch). The shuffle uses `fold_in(fold_in(key, 1), index)`, the steps `fold_in(key, 0)`.
    """
    distributed.check_divisible(
        "reparam.train.make_minibatch_epoch", "batch_size", batch_size, mesh
    )
    train_step = make_train_step(loss_fn, optimizer)

    @functools.partial(jax.jit, donate_argnums=1)
    def epoch(key: Array, state: TrainState, data: PyTree, index: Array):
        size = jax.tree.leaves(data)[0].shape[0]
        num_batches = size // batch_size
        if num_batches == 0:
            raise ValueError(
                f"reparam.train.make_minibatch_epoch: {size} examples are fewer than one batch "
                f"of `batch_size` {batch_size}"
            )
        shuffle_key = jax.random.fold_in(jax.random.fold_in(key, _SHUFFLE_STREAM), index)
        order = jax.random.permutation(shuffle_key, size)
        order = order[: num_batches * batch_size].reshape(num_batches, batch_size)
        # Each device gathers its slice of every batch from its own copy of the data.
        order = distributed.shard_batch(order, mesh, axis=1)
        step_key = jax.random.fold_in(key, _STEP_STREAM)

        def body(state: TrainState, indices: Array) -> tuple[TrainState, Metrics]:
            batch = jax.tree.map(lambda leaf: jnp.take(leaf, indices, axis=0), data)
            state, metrics = train_step(state, distributed.shard_batch(batch, mesh), step_key)
            return distributed.keep_replicated(state, mesh), metrics

        state, metrics = jax.lax.scan(body, state, order)
        return state, jax.tree.map(jnp.mean, metrics)

    return epoch


def run_epochs(
    key: Array,
    state: TrainState,
    epoch: Any,
    data: PyTree,
    *,
    num_epochs: int,
    keep: tuple[int, ...] = (),
    progress: bool = False,
    desc: str | None = None,
) -> tuple[TrainState, dict[str, np.ndarray], dict[int, PyTree]]:
    """The Python loop over `num_epochs` calls of a `make_minibatch_epoch` epoch (index 0, 1, ...).

    Returns the final state, each metric per epoch ((num_epochs,) numpy arrays) and copies of
    the parameters after the epochs numbered (from 1) in `keep` (0: the initial parameters).
    """
    # Copies: the epochs donate the state's buffers.
    kept = {0: jax.tree.map(jnp.copy, state.params)} if 0 in keep else {}
    history = []
    for index in tqdm(range(num_epochs), desc=desc, disable=not progress):
        state, metrics = epoch(key, state, data, index)
        history.append(jax.device_get(metrics))
        if index + 1 in keep:
            kept[index + 1] = jax.tree.map(jnp.copy, state.params)
    curves = {name: np.array([m[name] for m in history]) for name in history[0]}
    return state, curves, kept
