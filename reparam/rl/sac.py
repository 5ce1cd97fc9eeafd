"""SAC (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications") as pure functions.

The actor minimizes E_s E_{a~π}[α log π(a|s) − min_i Q_i(s, a)] through the *pathwise* gradient
of a = c · tanh(μ(s) + σ(s) ε); twin critics with target networks (Polyak averaging) regress on
r + γ (1 − terminal) (min_i Q̄_i(s', a') − α log π(a'|s')); α is tuned automatically by
minimizing −log α · (log π(a|s) + H̄) with target entropy H̄ = −dim(A).

* `SACState` / `sac_init` / `sac_update(key, state, batch, ...)`; the three losses
  `sac_critic_loss`, `sac_actor_loss`, `sac_alpha_loss` are exposed for tests and reuse.
* `make_sac_trainer(env, env_params, policy, critic, config)`: a whole training run on one
  environment: environment steps, replay-buffer writes and updates in one jitted `lax.scan`
  per chunk of steps (`SACTrainer.steps`), and the deterministic policy's evaluation;
  `train_sac(key, trainer, ...)` is the Python loop over chunks.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from reparam.rl import rollout
from reparam.rl.replay import ReplayBuffer, Transition, replay_add, replay_init, replay_sample
from reparam.train import distributed

Array = jax.Array
PyTree = Any


@dataclasses.dataclass(frozen=True)
class SACConfig:
    """SAC hyperparameters (defaults: Haarnoja et al. 2018, Table 1, except lr; SB3's zoo uses
    lr 1e-3 on Pendulum).

    target_entropy None means −dim(A), the paper's heuristic. The last three are the training
    loop's (`make_sac_trainer`): replay minibatch size, uniform-random steps before the first
    update (one update per environment step after them), replay capacity.
    """

    gamma: float = 0.99
    tau: float = 0.005
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    alpha_lr: float = 3e-4
    init_alpha: float = 1.0
    target_entropy: float | None = None
    batch_size: int = 256
    learning_starts: int = 100
    buffer_size: int = 1_000_000


class SACState(NamedTuple):
    step: Array
    actor_params: PyTree
    critic_params: PyTree
    target_critic_params: PyTree
    log_alpha: Array
    actor_opt_state: PyTree
    critic_opt_state: PyTree
    alpha_opt_state: PyTree


def sac_optimizers(
    config: SACConfig,
) -> tuple[
    optax.GradientTransformation, optax.GradientTransformation, optax.GradientTransformation
]:
    """Adam for actor, critics and log α (a pure function of the config, rebuilt where needed)."""
    return optax.adam(config.actor_lr), optax.adam(config.critic_lr), optax.adam(config.alpha_lr)


def sac_init(
    key: Array,
    policy: nn.Module,
    critic: nn.Module,
    obs: Array,
    action: Array,
    config: SACConfig = SACConfig(),
) -> SACState:
    """Initial SAC state; `obs` (obs_dim,) and `action` (A,) are examples for the shapes."""
    actor_key, critic_key = jax.random.split(key)
    actor_params = policy.init(actor_key, obs, method="distribution")
    critic_params = critic.init(critic_key, obs, action)
    log_alpha = jnp.log(jnp.asarray(config.init_alpha, jnp.result_type(float)))
    actor_opt, critic_opt, alpha_opt = sac_optimizers(config)
    return SACState(
        step=jnp.zeros((), jnp.int32),
        actor_params=actor_params,
        critic_params=critic_params,
        # A copy, so that donating the state never aliases online and target parameters.
        target_critic_params=jax.tree.map(jnp.copy, critic_params),
        log_alpha=log_alpha,
        actor_opt_state=actor_opt.init(actor_params),
        critic_opt_state=critic_opt.init(critic_params),
        alpha_opt_state=alpha_opt.init(log_alpha),
    )


def sac_critic_loss(
    critic_params: PyTree,
    target_critic_params: PyTree,
    actor_params: PyTree,
    log_alpha: Array,
    batch: Transition,
    key: Array,
    *,
    policy: nn.Module,
    critic: nn.Module,
    gamma: float,
) -> tuple[Array, dict[str, Array]]:
    """Soft Bellman error of the twin critics, a scalar (mean over the batch, summed over
    critics); the target uses the min of the target critics and a fresh a' ~ π(·|s')."""
    next_action, next_log_prob = policy.apply(actor_params, key, batch.next_obs)
    next_q = jnp.min(critic.apply(target_critic_params, batch.next_obs, next_action), axis=0)
    alpha = jnp.exp(log_alpha)
    target = batch.reward + gamma * (1.0 - batch.terminal) * (next_q - alpha * next_log_prob)
    target = jax.lax.stop_gradient(target)
    q = critic.apply(critic_params, batch.obs, batch.action)  # (2, B)
    loss = jnp.sum(jnp.mean(0.5 * (q - target) ** 2, axis=-1))
    return loss, {"critic_loss": loss, "q": jnp.mean(q)}


def sac_actor_loss(
    actor_params: PyTree,
    critic_params: PyTree,
    log_alpha: Array,
    obs: Array,
    key: Array,
    *,
    policy: nn.Module,
    critic: nn.Module,
) -> tuple[Array, Array]:
    """E[α log π(a|s) − min_i Q_i(s, a)] with a reparameterized (pathwise gradient); returns
    (loss, log π of the drawn actions (B,)) — the latter feeds `sac_alpha_loss`."""
    action, log_prob = policy.apply(actor_params, key, obs)
    q = jnp.min(critic.apply(critic_params, obs, action), axis=0)
    alpha = jax.lax.stop_gradient(jnp.exp(log_alpha))
    return jnp.mean(alpha * log_prob - q), log_prob


def sac_alpha_loss(log_alpha: Array, log_prob: Array, target_entropy: float) -> Array:
    """−log α · E[log π + H̄] (SB3's form): α grows while the entropy is below H̄."""
    return -log_alpha * jnp.mean(jax.lax.stop_gradient(log_prob) + target_entropy)


def sac_update(
    key: Array,
    state: SACState,
    batch: Transition,
    *,
    policy: nn.Module,
    critic: nn.Module,
    config: SACConfig = SACConfig(),
) -> tuple[SACState, dict[str, Array]]:
    """One SAC gradient step on a batch: critics, then actor (against the new critics), then α,
    then the Polyak-averaged targets. Pure; jit it (policy, critic and config are static)."""
    critic_key, actor_key = jax.random.split(key)
    actor_opt, critic_opt, alpha_opt = sac_optimizers(config)
    action_dim = batch.action.shape[-1]
    target_entropy = -float(action_dim) if config.target_entropy is None else config.target_entropy

    (_, critic_metrics), critic_grads = jax.value_and_grad(sac_critic_loss, has_aux=True)(
        state.critic_params,
        state.target_critic_params,
        state.actor_params,
        state.log_alpha,
        batch,
        critic_key,
        policy=policy,
        critic=critic,
        gamma=config.gamma,
    )
    updates, critic_opt_state = critic_opt.update(critic_grads, state.critic_opt_state)
    critic_params = optax.apply_updates(state.critic_params, updates)

    (actor_loss, log_prob), actor_grads = jax.value_and_grad(sac_actor_loss, has_aux=True)(
        state.actor_params,
        critic_params,
        state.log_alpha,
        batch.obs,
        actor_key,
        policy=policy,
        critic=critic,
    )
    updates, actor_opt_state = actor_opt.update(actor_grads, state.actor_opt_state)
    actor_params = optax.apply_updates(state.actor_params, updates)

    alpha_loss, alpha_grad = jax.value_and_grad(sac_alpha_loss)(
        state.log_alpha, log_prob, target_entropy
    )
    updates, alpha_opt_state = alpha_opt.update(alpha_grad, state.alpha_opt_state)
    log_alpha = optax.apply_updates(state.log_alpha, updates)

    target_critic_params = optax.incremental_update(
        critic_params, state.target_critic_params, config.tau
    )
    new_state = SACState(
        step=state.step + 1,
        actor_params=actor_params,
        critic_params=critic_params,
        target_critic_params=target_critic_params,
        log_alpha=log_alpha,
        actor_opt_state=actor_opt_state,
        critic_opt_state=critic_opt_state,
        alpha_opt_state=alpha_opt_state,
    )
    metrics = {
        **critic_metrics,
        "actor_loss": actor_loss,
        "alpha_loss": alpha_loss,
        "alpha": jnp.exp(log_alpha),
        "entropy": -jnp.mean(log_prob),
    }
    return new_state, metrics


# ---------------------------------------------------------------- the training loop
class SACCarry(NamedTuple):
    """What a training run carries from step to step."""

    agent: SACState
    buffer: ReplayBuffer
    env_state: Any
    obs: Array  # the observation to act on
    episode_return: Array  # undiscounted return of the running episode so far


class SACTrainer(NamedTuple):
    """SAC on one environment as jitted pure functions (build once, reuse for every seed).

    * `init(key) -> SACCarry`: agent, empty replay buffer, reset environment.
    * `steps(key, carry, start, num_steps) -> (carry, outputs)`: environment steps
      start .. start + num_steps − 1 (`num_steps` static) as one `lax.scan`: act (uniformly at
      random before `learning_starts`), step, store, update (from `learning_starts` on).
      Step t uses `fold_in(key, t)`, so chunking does not change the run. `outputs` are (num_steps,)
      arrays: "done", "episode_return" (the running return, complete where done) and
      `sac_update`'s metrics (zeros before the first update).
    * `evaluate(key, actor_params, num_episodes) -> (num_episodes,)` undiscounted returns of the
      deterministic policy c · tanh(μ(s)), episodes vmapped.
    """

    init: Callable[[Array], SACCarry]
    steps: Callable[[Array, SACCarry, Array, int], tuple[SACCarry, dict[str, Array]]]
    evaluate: Callable[[Array, PyTree, int], Array]


def make_sac_trainer(
    env: Any,
    env_params: Any,
    policy: nn.Module,
    critic: nn.Module,
    config: SACConfig = SACConfig(),
    *,
    mesh: Mesh | None = None,
) -> SACTrainer:
    """The `SACTrainer` of a gymnax environment (see `reparam.rl.rollout`) and its networks.

    Pendulum-like tasks have no terminal state: a time limit is a truncation, so the critics
    bootstrap through it from the true final observation (`rollout.env_step`). With a `mesh`,
    every update's replay minibatch is split over its data axis (`config.batch_size` must be a
    multiple of its size) and the rest of the carry is kept replicated.
    """
    where = "reparam.rl.make_sac_trainer"
    distributed.check_divisible(where, "batch_size", config.batch_size, mesh)
    spec = rollout.env_spec(env, env_params)
    example = Transition(
        obs=jnp.zeros(spec.obs_dim),
        action=jnp.zeros(spec.action_dim),
        reward=jnp.zeros(()),
        next_obs=jnp.zeros(spec.obs_dim),
        terminal=jnp.zeros(()),
    )
    update = functools.partial(sac_update, policy=policy, critic=critic, config=config)
    batch_example = jax.tree.map(lambda x: jnp.zeros((config.batch_size, *x.shape)), example)
    metric_shapes = jax.eval_shape(
        lambda key: update(key, sac_init(key, policy, critic, example.obs, example.action),
                           batch_example)[1],
        jax.random.key(0),
    )  # fmt: skip

    @jax.jit
    def init(key: Array) -> SACCarry:
        agent_key, env_key = jax.random.split(key)
        obs, env_state = env.reset_env(env_key, env_params)
        agent = sac_init(agent_key, policy, critic, example.obs, example.action, config)
        buffer = replay_init(config.buffer_size, example)
        return SACCarry(agent, buffer, env_state, obs, jnp.zeros(()))

    def step(key: Array, carry: SACCarry, t: Array) -> tuple[SACCarry, dict[str, Array]]:
        keys = jax.random.split(jax.random.fold_in(key, t), 5)
        policy_action, _ = policy.apply(carry.agent.actor_params, keys[0], carry.obs)
        random_action = jax.random.uniform(
            keys[1], (spec.action_dim,), minval=-spec.max_action, maxval=spec.max_action
        )
        action = jnp.where(t < config.learning_starts, random_action, policy_action)
        out = rollout.env_step(keys[2], env, env_params, carry.env_state, action)
        # Only true termination stops bootstrapping; a time limit is a truncation.
        terminal = out.terminated.astype(out.reward.dtype)
        buffer = replay_add(carry.buffer, Transition(carry.obs, action, out.reward, out.next_obs,
                                                     terminal))  # fmt: skip

        def learn(agent: SACState) -> tuple[SACState, dict[str, Array]]:
            batch = replay_sample(keys[3], buffer, config.batch_size)
            # Each device gathers its slice of the minibatch from its copy of the buffer.
            return update(keys[4], agent, distributed.shard_batch(batch, mesh))

        def wait(agent: SACState) -> tuple[SACState, dict[str, Array]]:
            return agent, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), metric_shapes)

        agent, metrics = jax.lax.cond(t >= config.learning_starts, learn, wait, carry.agent)
        episode_return = carry.episode_return + out.reward
        new = SACCarry(agent, buffer, out.state, out.obs, jnp.where(out.done, 0.0, episode_return))
        outputs = {"done": out.done, "episode_return": episode_return, **metrics}
        return distributed.keep_replicated(new, mesh), outputs

    # The carry (agent and replay buffer) is donated: updated in place, not copied.
    @functools.partial(jax.jit, static_argnames="num_steps", donate_argnames="carry")
    def steps(key: Array, carry: SACCarry, start: Array, num_steps: int):
        ts = start + jnp.arange(num_steps)
        return jax.lax.scan(lambda c, t: step(key, c, t), carry, ts)

    @functools.partial(jax.jit, static_argnames="num_episodes")
    def evaluate(key: Array, actor_params: PyTree, num_episodes: int) -> Array:
        def mode(key: Array, obs: Array) -> Array:
            del key  # the deterministic policy
            return policy.apply(actor_params, obs, method="mode")

        return rollout.episodes(key, env, env_params, mode, num_episodes).rewards.sum(axis=0)

    return SACTrainer(init, steps, evaluate)


class SACRun(NamedTuple):
    """A finished `train_sac`: the final carry, the per-step outputs of every chunk joined
    (numpy, (total_steps,) each) and the evaluation returns ((eval_episodes,), numpy)."""

    carry: SACCarry
    outputs: dict[str, np.ndarray]
    eval_returns: np.ndarray


def train_sac(
    key: Array,
    trainer: SACTrainer,
    *,
    total_steps: int,
    chunk_steps: int,
    eval_episodes: int = 10,
    mesh: Mesh | None = None,
    on_chunk: Callable[[int, dict[str, np.ndarray]], None] | None = None,
) -> SACRun:
    """Run `total_steps` environment steps in chunks of `chunk_steps` (one compiled program
    reused), then evaluate; `on_chunk(steps done, chunk outputs)` after each chunk (a progress
    bar). `eval_episodes` 0 skips the evaluation (and its compilation). With a `mesh` (the
    trainer's), the carry is placed replicated on it."""
    if chunk_steps < 1 or total_steps % chunk_steps:
        raise ValueError(
            f"reparam.rl.train_sac: `total_steps` ({total_steps}) must be a positive multiple of "
            f"`chunk_steps` ({chunk_steps})"
        )
    init_key, run_key, eval_key = jax.random.split(key, 3)
    carry = trainer.init(init_key)
    if mesh is not None:
        carry, run_key = distributed.put_replicated((carry, run_key), mesh)
    chunks = []
    for start in range(0, total_steps, chunk_steps):
        carry, outputs = trainer.steps(run_key, carry, jnp.asarray(start), chunk_steps)
        chunks.append(jax.device_get(outputs))
        if on_chunk is not None:
            on_chunk(start + chunk_steps, chunks[-1])
    joined = {name: np.concatenate([chunk[name] for chunk in chunks]) for name in chunks[0]}
    eval_returns = np.zeros(0)
    if eval_episodes:
        actor_params = carry.agent.actor_params
        eval_returns = np.asarray(trainer.evaluate(eval_key, actor_params, eval_episodes))
    return SACRun(carry, joined, eval_returns)
