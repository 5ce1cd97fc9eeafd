"""Reinforcement learning with pathwise and score-function policy gradients, as pure functions.

Two policy-gradient estimators for the same squashed-Gaussian policy (`reparam.nn.policy`):

* **SAC** (`reparam.rl.sac`; Haarnoja et al. 2018): the actor's gradient is *pathwise*, through
  the reparameterized action a = c · tanh(μ(s) + σ(s) ε); twin critics, automatic entropy tuning.
* **REINFORCE** (`reparam.rl.reinforce`; Williams 1992) with a learned state-value baseline: the
  *score-function* gradient −E[(G_t − V(s_t)) ∇ log π(a_t|s_t)].

Everything is a pytree and a pure function, so a whole training run (environment steps, buffer
writes and updates) lives inside one jitted `jax.lax.scan`:

* `replay`: `Transition`, `ReplayBuffer` (`replay_init`, `replay_add`, `replay_sample`).
* `sac`: `SACConfig`, `SACState`, `sac_init`, `sac_update` and its three losses; the training
  loop `make_sac_trainer` / `train_sac`.
* `reinforce`: `discounted_returns`, `reinforce_loss`, the training loop
  `make_reinforce_trainer`.
* `rollout`: gymnax environments inside jit: `env_step` (auto-resetting), `episodes` (N whole
  episodes vmapped), `env_spec`, `completed_episodes`. The environment is passed in.

Shapes: observations (..., obs_dim), actions (..., A), rewards and terminals (...); a batch has a
leading axis B; rollouts are (T, N) (time, parallel environments).
"""

from reparam.rl.reinforce import discounted_returns, make_reinforce_trainer, reinforce_loss
from reparam.rl.replay import ReplayBuffer, Transition, replay_add, replay_init, replay_sample
from reparam.rl.rollout import (
    EnvSpec,
    EnvStep,
    Trajectory,
    completed_episodes,
    env_spec,
    env_step,
    episodes,
)
from reparam.rl.sac import (
    SACCarry,
    SACConfig,
    SACRun,
    SACState,
    SACTrainer,
    make_sac_trainer,
    sac_actor_loss,
    sac_alpha_loss,
    sac_critic_loss,
    sac_init,
    sac_optimizers,
    sac_update,
    train_sac,
)

__all__ = [
    "EnvSpec",
    "EnvStep",
    "ReplayBuffer",
    "SACCarry",
    "SACConfig",
    "SACRun",
    "SACState",
    "SACTrainer",
    "Trajectory",
    "Transition",
    "completed_episodes",
    "discounted_returns",
    "env_spec",
    "env_step",
    "episodes",
    "make_reinforce_trainer",
    "make_sac_trainer",
    "reinforce_loss",
    "replay_add",
    "replay_init",
    "replay_sample",
    "sac_actor_loss",
    "sac_alpha_loss",
    "sac_critic_loss",
    "sac_init",
    "sac_optimizers",
    "sac_update",
    "train_sac",
]
