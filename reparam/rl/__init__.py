"""Reinforcement learning with pathwise and score-function policy gradients, as pure functions.

Two policy-gradient estimators for the same squashed-Gaussian policy (`reparam.nn.policy`):

* **SAC** (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications"): the actor
  minimizes E_s E_{a~π}[α log π(a|s) − min_i Q_i(s, a)] through the *pathwise* gradient of
  a = c · tanh(μ(s) + σ(s) ε); twin critics with target networks (Polyak averaging) regress on
  r + γ (1 − terminal) (min_i Q̄_i(s', a') − α log π(a'|s')); α is tuned automatically by
  minimizing −log α · (log π(a|s) + H̄) with target entropy H̄ = −dim(A).
* **REINFORCE** (Williams 1992) with a learned state-value baseline: the actor minimizes
  −E[(G_t − V(s_t)) log π(a_t|s_t)], the *score-function* gradient, V regresses on G_t.

Everything is a pytree and a pure function, so a whole training run (environment steps, buffer
writes and updates) can live inside one `jax.lax.scan`:

* `ReplayBuffer`: a ring buffer of `Transition`s with fixed capacity (`replay_init`,
  `replay_add`, `replay_sample`).
* `SACState` / `sac_init` / `sac_update(key, state, batch, ...)`; the three losses
  `sac_critic_loss`, `sac_actor_loss`, `sac_alpha_loss` are exposed for tests and reuse.
* `discounted_returns`, `reinforce_loss`.

Shapes: observations (..., obs_dim), actions (..., A), rewards and terminals (...); a batch has a
leading axis B; rollouts for REINFORCE are (T, N) (time, parallel environments).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

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


# ---------------------------------------------------------------- SAC
@dataclasses.dataclass(frozen=True)
class SACConfig:
    """SAC hyperparameters (defaults: Haarnoja et al. 2018, Table 1, except lr; SB3's zoo uses
    lr 1e-3 on Pendulum).

    target_entropy None means −dim(A), the paper's heuristic.
    """

    gamma: float = 0.99
    tau: float = 0.005
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    alpha_lr: float = 3e-4
    init_alpha: float = 1.0
    target_entropy: float | None = None


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


# ---------------------------------------------------------------- REINFORCE
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
