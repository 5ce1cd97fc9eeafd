"""Replay buffer: a fixed-capacity ring of `Transition`s as a pytree, written and sampled by pure
functions (so it lives inside a jitted `lax.scan`)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array
PyTree = Any


# ---------------------------------------------------------------- replay buffer
class Transition(NamedTuple):
    """One step (or a batch / buffer of steps along leading axes).

    `terminal` is 1.0 only for a true end of the task (no bootstrapping from next_obs); a time
    limit (Pendulum's 200 steps) is *not* terminal: the value of next_obs is still bootstrapped.
    """

    obs: Array
    action: Array
    reward: Array
    next_obs: Array
    terminal: Array


class ReplayBuffer(NamedTuple):
    """Ring buffer: `data` leaves have a leading axis of length capacity; `position` is the
    next slot to write, `size` the number of valid entries (both int32 scalars)."""

    data: Transition
    position: Array
    size: Array


def replay_init(capacity: int, example: Transition) -> ReplayBuffer:
    """An empty buffer of `capacity` slots shaped like the single transition `example`."""
    if capacity < 1:
        raise ValueError(f"reparam.rl.replay_init: `capacity` must be >= 1; got {capacity}")
    data = jax.tree.map(lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.result_type(x)), example)
    return ReplayBuffer(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def replay_add(buffer: ReplayBuffer, transition: Transition) -> ReplayBuffer:
    """Write one transition at `position` (overwriting the oldest once full)."""
    capacity = buffer.data.reward.shape[0]
    data = jax.tree.map(
        lambda store, x: store.at[buffer.position].set(jnp.asarray(x, store.dtype)),
        buffer.data,
        transition,
    )
    return ReplayBuffer(
        data, (buffer.position + 1) % capacity, jnp.minimum(buffer.size + 1, capacity)
    )


def replay_sample(key: Array, buffer: ReplayBuffer, batch_size: int) -> Transition:
    """`batch_size` transitions drawn uniformly (with replacement) from the valid entries.

    The buffer must hold at least one transition (`size` ≥ 1); leaves get a leading axis B.
    """
    index = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.size, 1))
    return jax.tree.map(lambda store: store[index], buffer.data)
