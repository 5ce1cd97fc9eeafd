"""REINFORCE (Williams 1992) with a learned state-value baseline, as pure functions.

The actor minimizes −E[(G_t − V(s_t)) log π(a_t|s_t)], the *score-function* gradient, and V
regresses on G_t. `discounted_returns` and `reinforce_loss` are the pieces;
`make_reinforce_trainer` is a whole training run (parallel whole-episode rollouts and updates)
as one jitted `lax.scan` over updates.

Rollouts are (T, N): time, parallel environments.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from reparam.rl import rollout
from reparam.train import distributed

Array = jax.Array
PyTree = Any


def discounted_returns(rewards: Array, terminals: Array, gamma: float) -> Array:
    """G_t = r_t + γ (1 − terminal_t) G_{t+1} along the leading (time) axis, G_T = 0.

    rewards, terminals: (T, ...). An episode boundary inside the rollout must be marked
    terminal (also for a time limit: a Monte-Carlo return cannot bootstrap).
    """

    def backward(carry: Array, step: tuple[Array, Array]) -> tuple[Array, Array]:
        reward, terminal = step
        carry = reward + gamma * (1.0 - terminal) * carry
        return carry, carry

    _, returns = jax.lax.scan(
        backward, jnp.zeros_like(rewards[0]), (rewards, terminals), reverse=True
    )
    return returns


def reinforce_loss(
    policy_params: PyTree,
    value_params: PyTree,
    obs: Array,
    actions: Array,
    returns: Array,
    *,
    policy: nn.Module,
    value: nn.Module,
    value_coef: float = 0.5,
) -> tuple[Array, dict[str, Array]]:
    """Score-function policy loss with a learned baseline, plus the baseline's regression loss.

    obs (..., obs_dim), actions (..., A), returns (...). The policy term
    −mean[(G − V(s)) log π(a|s)] has the REINFORCE gradient (advantage not differentiated);
    the value term value_coef · mean[(G − V(s))²] trains the baseline.
    """
    log_prob = policy.apply(policy_params, obs, actions, method="log_prob")
    baseline = value.apply(value_params, obs)
    advantage = jax.lax.stop_gradient(returns - baseline)
    policy_loss = -jnp.mean(advantage * log_prob)
    value_loss = jnp.mean((returns - baseline) ** 2)
    loss = policy_loss + value_coef * value_loss
    return loss, {
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "entropy_proxy": -jnp.mean(log_prob),
    }


def make_reinforce_trainer(
    env: Any,
    env_params: Any,
    policy: nn.Module,
    value: nn.Module,
    optimizer: optax.GradientTransformation,
    *,
    num_envs: int,
    gamma: float,
    mesh: Mesh | None = None,
) -> Callable[[Array, int], tuple[PyTree, dict[str, Array]]]:
    """A jitted `train(key, num_updates) -> (params, outputs)`: `num_updates` (static) updates,
    each on `num_envs` whole episodes of the current stochastic policy, as one `lax.scan`.

    `params` is {"policy", "value"}; `outputs` are per update: "episode_returns" (U, N)
    undiscounted, "loss" and `reinforce_loss`'s metrics (U,). Update i rolls out with
    `fold_in(key', i)`, key' from `key`. With a `mesh`, the environments (their rollout and their
    share of the loss) are split over its data axis (`num_envs` a multiple of its size); the
    parameters stay replicated.
    """
    distributed.check_divisible("reparam.rl.make_reinforce_trainer", "num_envs", num_envs, mesh)
    spec = rollout.env_spec(env, env_params)
    loss_fn = functools.partial(reinforce_loss, policy=policy, value=value)

    def update(key: Array, carry: tuple[PyTree, Any], i: Array):
        params, opt_state = carry

        def act(key: Array, obs: Array) -> Array:
            return policy.apply(params["policy"], key, obs)[0]

        trajectory = rollout.episodes(
            jax.random.fold_in(key, i), env, env_params, act, num_envs, mesh=mesh
        )
        obs, actions, rewards = distributed.shard_batch(tuple(trajectory), mesh, axis=1)
        # Each rollout is one whole episode per environment: the last step ends it.
        terminals = jnp.zeros_like(rewards).at[-1].set(1.0)
        returns = discounted_returns(rewards, terminals, gamma)
        (loss, metrics), grads = jax.value_and_grad(
            lambda p: loss_fn(p["policy"], p["value"], obs, actions, returns), has_aux=True
        )(params)
        updates, opt_state = optimizer.update(grads, opt_state)
        params = optax.apply_updates(params, updates)
        carry = distributed.keep_replicated((params, opt_state), mesh)
        return carry, {"episode_returns": rewards.sum(axis=0), "loss": loss, **metrics}

    @functools.partial(jax.jit, static_argnames="num_updates")
    def train(key: Array, num_updates: int) -> tuple[PyTree, dict[str, Array]]:
        init_key, run_key = jax.random.split(key)
        policy_key, value_key = jax.random.split(init_key)
        obs = jnp.zeros(spec.obs_dim)
        params = {
            "policy": policy.init(policy_key, obs, method="distribution"),
            "value": value.init(value_key, obs),
        }
        carry = (params, optimizer.init(params))
        (params, _), outputs = jax.lax.scan(
            lambda c, i: update(run_key, c, i), carry, jnp.arange(num_updates)
        )
        return params, outputs

    return train
