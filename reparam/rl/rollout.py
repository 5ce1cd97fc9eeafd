"""Stepping gymnax-style environments inside jitted code: one auto-resetting step, batches of
whole episodes, and the spaces' sizes.

An environment is a pair (`env`, `env_params`) as `gymnax.make(name)` returns it: `env` has
`reset_env(key, params) -> (obs, state)`, `step_env(key, state, action, params) -> (obs, state,
reward, done, info)` (no reset) and `step(...)` (auto-resetting, gymnax ≥ 1.0: `(obs, state,
reward, terminated, truncated, info)` with the observation before the reset in
`info["final_observation"]`). Both are passed in; nothing here imports gymnax.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from reparam.train import distributed

Array = jax.Array


class EnvSpec(NamedTuple):
    """Sizes of an environment with a flat observation and a symmetric box of actions."""

    obs_dim: int
    action_dim: int
    max_action: float  # actions lie in [−max_action, max_action]
    horizon: int  # steps of one episode (the time limit)


def env_spec(env: Any, env_params: Any) -> EnvSpec:
    """The `EnvSpec` of a gymnax environment (concrete numbers: call it outside `jit`)."""
    action_space = env.action_space(env_params)
    return EnvSpec(
        obs_dim=int(env.observation_space(env_params).shape[0]),
        action_dim=int(action_space.shape[0]),
        max_action=float(action_space.high),
        horizon=int(env_params.max_steps_in_episode),
    )


class EnvStep(NamedTuple):
    """What one auto-resetting step gives.

    `next_obs` is the observation the action led to (before any reset): what a critic
    bootstraps from. `obs` is the observation to act on next (the reset one where `done`).
    `terminated` is a true end of the task; `done` is terminated or truncated (time limit).
    """

    next_obs: Array
    reward: Array
    terminated: Array
    done: Array
    state: Any
    obs: Array


def env_step(key: Array, env: Any, env_params: Any, state: Any, action: Array) -> EnvStep:
    """One step of a single environment that resets itself at the end of an episode."""
    obs, state, reward, terminated, truncated, info = env.step(key, state, action, env_params)
    done = jnp.logical_or(terminated, truncated)
    return EnvStep(info["final_observation"], reward, terminated, done, state, obs)


class Trajectory(NamedTuple):
    """`num_envs` episodes, time first: obs (T, N, obs_dim), actions (T, N, A), rewards (T, N)."""

    obs: Array
    actions: Array
    rewards: Array


def episodes(
    key: Array,
    env: Any,
    env_params: Any,
    act: Callable[[Array, Array], Array],
    num_envs: int,
    *,
    mesh: Mesh | None = None,
) -> Trajectory:
    """`num_envs` whole episodes (one `lax.scan` over the time limit, environments vmapped).

    Args:
      key: resets use `fold_in(key, 0)`, step t uses `fold_in(key, t + 1)`.
      act: (key, obs (N, obs_dim)) -> actions (N, A), e.g. a policy's draw or its mode.
      num_envs: N.
      mesh: split the environments over its data axis (each device steps its share).
    """
    horizon = int(env_params.max_steps_in_episode)
    reset_keys = jax.random.split(jax.random.fold_in(key, 0), num_envs)
    obs, state = jax.vmap(env.reset_env, in_axes=(0, None))(reset_keys, env_params)

    def body(carry, t):
        obs, state = distributed.shard_batch(carry, mesh)
        action_key, step_key = jax.random.split(jax.random.fold_in(key, t + 1))
        action = act(action_key, obs)
        step_keys = jax.random.split(step_key, num_envs)
        next_obs, state, reward, _, _ = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))(
            step_keys, state, action, env_params
        )
        return (next_obs, state), Trajectory(obs, action, reward)

    _, trajectory = jax.lax.scan(body, (obs, state), jnp.arange(horizon))
    return trajectory


def completed_episodes(done: Any, episode_return: Any) -> tuple[np.ndarray, np.ndarray]:
    """From per-step outputs of a single-environment run, (T,) each: the steps at which
    episodes ended (1-based counts of steps taken) and their returns. Host-side (numpy)."""
    done = np.asarray(done, bool)
    return np.flatnonzero(done) + 1, np.asarray(episode_return)[done]
