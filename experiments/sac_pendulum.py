"""SAC against REINFORCE on gymnax's Pendulum-v1: pathwise vs score-function policy gradients.

    python -m experiments.sac_pendulum --quick --out runs/sac_pendulum_quick
    python -m experiments.sac_pendulum --out experiments/results

SAC (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications"): tanh-squashed
Gaussian policy trained through the reparameterized action, twin Q critics with Polyak-averaged
targets, automatic entropy tuning (target entropy −dim A). Hyperparameters are SB3's zoo entry
for Pendulum-v1 (lr 1e-3, 256-256 MLPs, batch 256, γ 0.99, τ 0.005, one update per env step,
100 initial uniform-random steps, initial α = 1). Environment steps, replay-buffer writes and
updates run inside one jitted `lax.scan` (a chunk of `chunk_steps` steps per call, so that
Python can draw the progress bar between chunks).

REINFORCE (score function with a learned state-value baseline), same policy network, same
number of environment steps: `reinforce_envs` parallel episodes of 200 steps per update, the
whole run one jitted `lax.scan` over updates.

Pendulum has no terminal state: the 200-step limit is a truncation, so SAC bootstraps through it
from the true final observation (gymnax ≥ 1.0 reports terminated and truncated separately and
keeps the pre-reset observation in info["final_observation"]). The headline metric, as in the
issue: mean undiscounted return of the last 10 training episodes after `total_steps` steps; we
also report 10 evaluation episodes of the deterministic policy tanh(μ(s)) (what SB3's zoo
reports). Anchors: SB3 zoo −202 ± 60 at 20k; target ≥ −170 over 3 seeds in under 10 CPU minutes.

Data parallelism: `--mesh data [--devices N]` (fake CPU devices with
XLA_FLAGS=--xla_force_host_platform_device_count=N) splits SAC's replay minibatch of every
update, and REINFORCE's parallel environments (rollout and loss; `--reinforce-envs`, a multiple
of N), over a `reparam.distributed` mesh; the agent's parameters, the replay buffer and SAC's
single environment stay replicated, and XLA sums the gradients across devices. Same returns as
one device up to float32 summation order (tests/test_sharding.py).

Writes into --out: sac_pendulum.json, sac_pendulum.md, sac_pendulum_returns.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from reparam import rl
from reparam.nn.policy import TanhGaussianPolicy, TwinQ, ValueNetwork
from reparam.train import distributed

Array = jax.Array

SB3_ZOO_RETURN = (-202.0, 60.0)
TARGET_RETURN = -170.0
TARGET_CPU_SECONDS = 600.0


@dataclass(frozen=True)
class Config:
    """The full run; `quick()` is the seconds-long test variant."""

    env_name: str = "Pendulum-v1"
    total_steps: int = 20_000
    learning_starts: int = 100
    batch_size: int = 256
    hidden: tuple[int, ...] = (256, 256)
    learning_rate: float = 1e-3
    gamma: float = 0.99
    tau: float = 0.005
    chunk_steps: int = 1_000
    seeds: tuple[int, ...] = (0, 1, 2)
    eval_episodes: int = 10
    last_episodes: int = 10
    # REINFORCE
    reinforce_envs: int = 4
    reinforce_lr: float = 1e-3
    run_reinforce: bool = True
    # One extra REINFORCE run (first seed) with this many env steps, for context: how far the
    # score-function gradient gets with 10× SAC's budget. 0 disables it.
    reinforce_long_steps: int = 200_000
    # Data parallelism: "none" (one device) or "data" (reparam.distributed mesh over `devices`,
    # None: all): SAC's replay minibatches and REINFORCE's environments are split over it.
    mesh: str = "none"
    devices: int | None = None

    def __post_init__(self) -> None:
        distributed.check_mesh_choice("experiments.sac_pendulum.Config", self.mesh)

    @staticmethod
    def quick(**overrides: Any) -> Config:
        base = dict(
            total_steps=800,
            learning_starts=100,
            batch_size=32,
            hidden=(32, 32),
            chunk_steps=400,
            seeds=(0,),
            eval_episodes=1,
            last_episodes=2,
            reinforce_envs=2,
            reinforce_long_steps=0,
        )
        base.update(overrides)
        return Config(**base)


def make_env(name: str):
    import gymnax  # local import: only the RL experiment needs it

    env, params = gymnax.make(name)
    return env, params


def _env_step(env, env_params, key: Array, state, action: Array):
    """One auto-resetting step: (true next obs, reward, terminated, done, state, obs to act on).

    gymnax ≥ 1.0 separates termination from time-limit truncation and returns the observation
    before the auto-reset as info["final_observation"]: that is the next_obs a critic needs.
    """
    obs, state, reward, terminated, truncated, info = env.step(key, state, action, env_params)
    done = jnp.logical_or(terminated, truncated)
    return info["final_observation"], reward, terminated, done, state, obs


# ---------------------------------------------------------------- SAC
def make_sac(config: Config, mesh: Mesh | None = None):
    """(init, run_chunk, evaluate) for SAC; run_chunk is jitted and scans `chunk_steps` steps.

    With a `mesh`, every update's replay minibatch is split over its data axis and the rest of
    the carry (agent, buffer, environment) is kept replicated."""
    distributed.check_divisible("experiments.sac_pendulum", "batch_size", config.batch_size, mesh)
    env, env_params = make_env(config.env_name)
    obs_dim = env.observation_space(env_params).shape[0]
    action_dim = env.action_space(env_params).shape[0]
    max_action = float(env.action_space(env_params).high)
    policy = TanhGaussianPolicy(action_dim, hidden=config.hidden, action_scale=max_action)
    critic = TwinQ(hidden=config.hidden)
    sac_config = rl.SACConfig(
        gamma=config.gamma,
        tau=config.tau,
        actor_lr=config.learning_rate,
        critic_lr=config.learning_rate,
        alpha_lr=config.learning_rate,
    )
    example = rl.Transition(
        obs=jnp.zeros(obs_dim),
        action=jnp.zeros(action_dim),
        reward=jnp.zeros(()),
        next_obs=jnp.zeros(obs_dim),
        terminal=jnp.zeros(()),
    )

    def init(key: Array) -> dict[str, Any]:
        agent_key, env_key = jax.random.split(key)
        obs, env_state = env.reset_env(env_key, env_params)
        return {
            "agent": rl.sac_init(
                agent_key, policy, critic, example.obs, example.action, sac_config
            ),
            "buffer": rl.replay_init(config.total_steps, example),
            "env_state": env_state,
            "obs": obs,
            "episode_return": jnp.zeros(()),
        }

    metric_shapes = jax.eval_shape(
        lambda: rl.sac_update(
            jax.random.key(0),
            rl.sac_init(jax.random.key(0), policy, critic, example.obs, example.action),
            jax.tree.map(lambda x: jnp.zeros((config.batch_size, *x.shape)), example),
            policy=policy,
            critic=critic,
            config=sac_config,
        )[1]
    )

    def step(carry: dict[str, Any], t: Array, key: Array):
        keys = jax.random.split(jax.random.fold_in(key, t), 5)
        agent, obs = carry["agent"], carry["obs"]
        policy_action, _ = policy.apply(agent.actor_params, keys[0], obs)
        random_action = jax.random.uniform(
            keys[1], (action_dim,), minval=-max_action, maxval=max_action
        )
        action = jnp.where(t < config.learning_starts, random_action, policy_action)
        next_obs, reward, terminated, done, env_state, obs_after = _env_step(
            env, env_params, keys[2], carry["env_state"], action
        )
        # Only true termination stops bootstrapping; Pendulum's time limit is a truncation.
        transition = rl.Transition(obs, action, reward, next_obs, terminated.astype(reward.dtype))
        buffer = rl.replay_add(carry["buffer"], transition)

        def update(agent):
            batch = rl.replay_sample(keys[3], buffer, config.batch_size)
            # Each device gathers its slice of the minibatch from its copy of the buffer.
            batch = distributed.shard_batch(batch, mesh)
            return rl.sac_update(
                keys[4], agent, batch, policy=policy, critic=critic, config=sac_config
            )

        def skip(agent):
            return agent, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), metric_shapes)

        agent, metrics = jax.lax.cond(t >= config.learning_starts, update, skip, agent)
        episode_return = carry["episode_return"] + reward
        out = {"done": done, "episode_return": episode_return, **metrics}
        carry = {
            "agent": agent,
            "buffer": buffer,
            "env_state": env_state,
            "obs": obs_after,
            "episode_return": jnp.where(done, 0.0, episode_return),
        }
        return distributed.keep_replicated(carry, mesh), out

    @jax.jit
    def run_chunk(carry: dict[str, Any], key: Array, start: Array):
        ts = start + jnp.arange(config.chunk_steps)
        return jax.lax.scan(lambda c, t: step(c, t, key), carry, ts)

    @jax.jit
    def evaluate(actor_params, key: Array) -> Array:
        """Undiscounted returns of `eval_episodes` deterministic-policy episodes (vmapped)."""
        keys = jax.random.split(key, config.eval_episodes)
        obs, state = jax.vmap(env.reset_env, in_axes=(0, None))(keys, env_params)

        def body(carry, _):
            obs, state, total = carry
            action = policy.apply(actor_params, obs, method="mode")
            obs, state, reward, _, _ = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))(
                keys, state, action, env_params
            )
            return (obs, state, total + reward), None

        horizon = env_params.max_steps_in_episode
        (_, _, total), _ = jax.lax.scan(
            body, (obs, state, jnp.zeros(config.eval_episodes)), None, length=horizon
        )
        return total

    return init, run_chunk, evaluate


def run_sac(
    config: Config,
    seed: int,
    progress: bool = True,
    mesh: Mesh | None = None,
    trace: bool = False,
) -> dict[str, Any]:
    """One SAC run; `trace` adds the per-step losses (arrays, not for JSON) under "trace"."""
    from tqdm import tqdm

    if config.total_steps % config.chunk_steps:
        raise ValueError("total_steps must be a multiple of chunk_steps")
    init, run_chunk, evaluate = make_sac(config, mesh)
    key = jax.random.key(seed)
    init_key, run_key, eval_key = jax.random.split(key, 3)
    wall, cpu = time.perf_counter(), time.process_time()
    carry = init(init_key)
    if mesh is not None:
        carry, run_key = distributed.put_replicated((carry, run_key), mesh)
    outs = []
    chunks = config.total_steps // config.chunk_steps
    with tqdm(total=config.total_steps, desc=f"SAC seed {seed}", disable=not progress) as bar:
        for i in range(chunks):
            carry, out = run_chunk(carry, run_key, jnp.asarray(i * config.chunk_steps))
            out = jax.device_get(out)
            outs.append(out)
            done_returns = out["episode_return"][out["done"]]
            if len(done_returns):
                bar.set_postfix(ret=f"{done_returns[-1]:.0f}", alpha=f"{out['alpha'][-1]:.3f}")
            bar.update(config.chunk_steps)
    # eval_episodes = 0 skips the evaluation (and its compilation).
    eval_returns = (
        np.asarray(evaluate(carry["agent"].actor_params, eval_key))
        if config.eval_episodes
        else np.zeros(0)
    )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    out = {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}
    steps = np.flatnonzero(out["done"]) + 1
    returns = out["episode_return"][out["done"]]
    return {
        "seed": seed,
        "episode_end_steps": steps.tolist(),
        "episode_returns": returns.tolist(),
        "last_mean": float(np.mean(returns[-config.last_episodes :])),
        "eval_returns": eval_returns.tolist(),
        "eval_mean": float(eval_returns.mean()) if len(eval_returns) else float("nan"),
        "final_alpha": float(out["alpha"][-1]),
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "env_steps_per_second": config.total_steps / wall,
        "finite": bool(np.all(np.isfinite(out["critic_loss"])) and np.all(np.isfinite(returns))),
        **({"trace": {k: out[k] for k in ("critic_loss", "actor_loss", "alpha")}} if trace else {}),
    }


# ---------------------------------------------------------------- REINFORCE
def make_reinforce(config: Config, mesh: Mesh | None = None):
    """(run, steps_per_update, num_updates); with a `mesh`, the `reinforce_envs` parallel
    environments (their rollout and their share of the loss) are split over its data axis."""
    distributed.check_divisible(
        "experiments.sac_pendulum", "reinforce_envs", config.reinforce_envs, mesh
    )
    env, env_params = make_env(config.env_name)
    obs_dim = env.observation_space(env_params).shape[0]
    action_dim = env.action_space(env_params).shape[0]
    max_action = float(env.action_space(env_params).high)
    horizon = int(env_params.max_steps_in_episode)
    policy = TanhGaussianPolicy(action_dim, hidden=config.hidden, action_scale=max_action)
    value = ValueNetwork(hidden=config.hidden)
    optimizer = optax.adam(config.reinforce_lr)
    steps_per_update = config.reinforce_envs * horizon
    num_updates = config.total_steps // steps_per_update

    def rollout(params, key):
        """`reinforce_envs` full episodes: obs (T, N, obs), actions (T, N, A), rewards (T, N)."""
        reset_keys = jax.random.split(jax.random.fold_in(key, 0), config.reinforce_envs)
        obs, state = jax.vmap(env.reset_env, in_axes=(0, None))(reset_keys, env_params)

        def body(carry, t):
            obs, state = distributed.shard_batch(carry, mesh)  # each device steps its envs
            k = jax.random.fold_in(key, t + 1)
            action_key, step_key = jax.random.split(k)
            action, _ = policy.apply(params, action_key, obs)
            step_keys = jax.random.split(step_key, config.reinforce_envs)
            next_obs, state, reward, _, _ = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))(
                step_keys, state, action, env_params
            )
            return (next_obs, state), (obs, action, reward)

        _, trajectory = jax.lax.scan(body, (obs, state), jnp.arange(horizon))
        return trajectory

    def loss_fn(params, obs, actions, returns):
        return rl.reinforce_loss(
            params["policy"], params["value"], obs, actions, returns, policy=policy, value=value
        )

    def update(carry, i, key):
        params, opt_state = carry
        obs, actions, rewards = rollout(params["policy"], jax.random.fold_in(key, i))
        obs, actions, rewards = distributed.shard_batch((obs, actions, rewards), mesh, axis=1)
        # Each rollout is one whole episode per environment: the last step ends it.
        terminals = jnp.zeros_like(rewards).at[-1].set(1.0)
        returns = rl.discounted_returns(rewards, terminals, config.gamma)
        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params, obs, actions, returns
        )
        updates, opt_state = optimizer.update(grads, opt_state)
        params = optax.apply_updates(params, updates)
        params, opt_state = distributed.keep_replicated((params, opt_state), mesh)
        return (params, opt_state), {
            "episode_returns": rewards.sum(axis=0),
            "loss": loss,
            **metrics,
        }

    @jax.jit
    def run(key):
        init_key, run_key = jax.random.split(key)
        policy_key, value_key = jax.random.split(init_key)
        params = {
            "policy": policy.init(policy_key, jnp.zeros(obs_dim), method="distribution"),
            "value": value.init(value_key, jnp.zeros(obs_dim)),
        }
        carry = (params, optimizer.init(params))
        _, out = jax.lax.scan(lambda c, i: update(c, i, run_key), carry, jnp.arange(num_updates))
        return out

    return run, steps_per_update, num_updates


def run_reinforce(
    config: Config, seed: int, mesh: Mesh | None = None, trace: bool = False
) -> dict[str, Any]:
    """One REINFORCE run; `trace` adds the per-update losses (arrays) under "trace"."""
    run, steps_per_update, num_updates = make_reinforce(config, mesh)
    key = jax.random.key(seed)
    if mesh is not None:
        key = distributed.put_replicated(key, mesh)
    wall, cpu = time.perf_counter(), time.process_time()
    out = jax.device_get(run(key))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    returns = np.asarray(out["episode_returns"]).ravel()  # (updates · envs,), in order
    ends = np.repeat((np.arange(num_updates) + 1) * steps_per_update, config.reinforce_envs)
    return {
        "seed": seed,
        "episode_end_steps": ends.tolist(),
        "episode_returns": returns.tolist(),
        "last_mean": float(np.mean(returns[-config.last_episodes :])),
        "env_steps": int(num_updates * steps_per_update),
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "finite": bool(np.all(np.isfinite(returns)) and np.all(np.isfinite(out["loss"]))),
        **({"trace": {"loss": out["loss"]}} if trace else {}),
    }


# ---------------------------------------------------------------- report
def machine() -> str:
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(
            (line.split(":", 1)[1].strip() for line in lines.splitlines() if "Model name" in line),
            platform.processor(),
        )
    except (OSError, subprocess.CalledProcessError):
        model = platform.processor() or platform.machine()
    return f"{model}, {jax.device_count()} JAX device(s) ({jax.default_backend()})"


def _per_update(run: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    steps, returns = np.asarray(run["episode_end_steps"]), np.asarray(run["episode_returns"])
    unique = np.unique(steps)
    return unique, np.array([returns[steps == s].mean() for s in unique])


def plot(record: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, run in enumerate(record["sac"]):
        ax.plot(run["episode_end_steps"], run["episode_returns"], color="C0", alpha=0.8, lw=1,
                label="SAC, training episodes (3 seeds)" if i == 0 else None)  # fmt: skip
    for i, run in enumerate(record.get("reinforce", [])):
        # Parallel episodes end together: plot the mean return of each update's batch.
        steps, returns = _per_update(run)
        ax.plot(steps, returns, color="C3", alpha=0.8, lw=1,
                label="REINFORCE, mean per update (3 seeds)" if i == 0 else None)  # fmt: skip
    ax.axhline(TARGET_RETURN, color="k", ls="--", lw=1, label=f"target {TARGET_RETURN:g}")
    zoo, zoo_std = SB3_ZOO_RETURN
    ax.axhspan(zoo - zoo_std, zoo + zoo_std, color="gray", alpha=0.2, label="SB3 zoo SAC @20k")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return (training episodes)")
    ax.set_title("Pendulum-v1: SAC (pathwise) vs REINFORCE (score function)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_markdown(record: dict[str, Any], path: Path) -> None:
    config = record["config"]
    sac, reinforce = record["sac"], record.get("reinforce", [])
    lines = [
        f"# SAC vs REINFORCE on gymnax {config['env_name']}",
        "",
        f"Command: `{record['command']}`  ",
        f"Machine: {record['machine']} — shared with other jobs (wall times inflated; CPU time "
        "is `time.process_time()` of this process, all threads)  ",
        f"Total wall time: {record['total_wall_seconds']:.1f} s",
        "",
        f"Budget: {config['total_steps']} env steps per run. Metric: mean undiscounted return of "
        f"the last {config['last_episodes']} training episodes (stochastic policy); "
        f"eval: {config['eval_episodes']} episodes of the deterministic policy at the end.",
        "",
        f"| method | seed | last-{config['last_episodes']} return | eval return | wall s | CPU s "
        "| env steps/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in sac:
        lines.append(
            f"| SAC | {run['seed']} | {run['last_mean']:.1f} | {run['eval_mean']:.1f} | "
            f"{run['wall_seconds']:.1f} | {run['cpu_seconds']:.1f} | "
            f"{run['env_steps_per_second']:.0f} |"
        )
    for run in reinforce:
        lines.append(
            f"| REINFORCE | {run['seed']} | {run['last_mean']:.1f} | – | "
            f"{run['wall_seconds']:.1f} | {run['cpu_seconds']:.1f} | "
            f"{run['env_steps'] / run['wall_seconds']:.0f} |"
        )
    long = record.get("reinforce_long")
    if long:
        lines.append(
            f"| REINFORCE, {long['env_steps']} steps | {long['seed']} | {long['last_mean']:.1f} | "
            f"– | {long['wall_seconds']:.1f} | {long['cpu_seconds']:.1f} | "
            f"{long['env_steps'] / long['wall_seconds']:.0f} |"
        )
    summary = record["summary"]
    lines += [
        "",
        f"SAC last-{config['last_episodes']} return over seeds: {summary['sac_last_mean']:.1f} ± "
        f"{summary['sac_last_std']:.1f} (mean ± std over {len(sac)} seeds; worst seed "
        f"{summary['sac_last_worst']:.1f}); max CPU time per run {summary['sac_max_cpu']:.0f} s.",
    ]
    if reinforce:
        lines.append(
            f"REINFORCE last-{config['last_episodes']} return: "
            f"{summary['reinforce_last_mean']:.1f} ± {summary['reinforce_last_std']:.1f}."
        )
    zoo, zoo_std = SB3_ZOO_RETURN
    lines += [
        "",
        f"Anchors: SB3 zoo SAC {zoo:g} ± {zoo_std:g} (mean ± std over seeds) at 20k steps. "
        f"Target: mean over 3 seeds ≥ {TARGET_RETURN:g}, each run under "
        f"{TARGET_CPU_SECONDS / 60:.0f} CPU minutes — met: **{summary['target_met']}**; every "
        f"seed ≥ {TARGET_RETURN:g}: {summary['every_seed_meets_target']}. (The last-10 mean of "
        "one seed is noisy: Pendulum's return depends strongly on the random start angle.)",
        "",
        "![returns](sac_pendulum_returns.png)",
        "",
    ]
    path.write_text("\n".join(lines))


def run(config: Config, out: Path, command: str, progress: bool = True) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    mesh = distributed.mesh_from_flags(config.mesh, config.devices, "experiments.sac_pendulum")
    if config.run_reinforce:  # checked before SAC runs, not after
        distributed.check_divisible(
            "experiments.sac_pendulum", "reinforce_envs", config.reinforce_envs, mesh
        )
    start = time.perf_counter()
    sac = [run_sac(config, seed, progress, mesh) for seed in config.seeds]
    reinforce = (
        [run_reinforce(config, seed, mesh) for seed in config.seeds] if config.run_reinforce else []
    )
    reinforce_long = None
    if config.run_reinforce and config.reinforce_long_steps:
        long_config = dataclasses.replace(config, total_steps=config.reinforce_long_steps)
        reinforce_long = run_reinforce(long_config, config.seeds[0], mesh)
    sac_last = np.array([r["last_mean"] for r in sac])
    summary = {
        "sac_last_mean": float(sac_last.mean()),
        "sac_last_std": float(sac_last.std()),
        "sac_last_worst": float(sac_last.min()),
        "sac_max_cpu": float(max(r["cpu_seconds"] for r in sac)),
        "target_met": bool(
            sac_last.mean() >= TARGET_RETURN
            and max(r["cpu_seconds"] for r in sac) < TARGET_CPU_SECONDS
        ),
        "every_seed_meets_target": bool(sac_last.min() >= TARGET_RETURN),
    }
    if reinforce:
        reinforce_last = np.array([r["last_mean"] for r in reinforce])
        summary["reinforce_last_mean"] = float(reinforce_last.mean())
        summary["reinforce_last_std"] = float(reinforce_last.std())
    record = {
        "command": command,
        "machine": machine(),
        "config": dataclasses.asdict(config),
        "sac": sac,
        "reinforce": reinforce,
        "reinforce_long": reinforce_long,
        "summary": summary,
        "total_wall_seconds": time.perf_counter() - start,
    }
    (out / "sac_pendulum.json").write_text(json.dumps(record, indent=1))
    plot(record, out / "sac_pendulum_returns.png")
    write_markdown(record, out / "sac_pendulum.md")
    return record


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="seconds-long test run")
    parser.add_argument("--out", default="runs/sac_pendulum", help="output directory")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--steps", type=int, default=None, help="env steps per run")
    parser.add_argument("--no-reinforce", action="store_true")
    parser.add_argument(
        "--reinforce-envs", type=int, help="REINFORCE's parallel environments per update"
    )
    parser.add_argument("--no-progress", action="store_true")
    distributed.add_mesh_flags(parser)
    return parser


def _config_from_args(args: argparse.Namespace) -> Config:
    """The config the flags ask for (--devices alone implies --mesh data, as in vae_mnist)."""
    overrides: dict[str, Any] = {}
    if args.seeds is not None:
        overrides["seeds"] = tuple(args.seeds)
    if args.steps is not None:
        overrides["total_steps"] = args.steps
    if args.no_reinforce:
        overrides["run_reinforce"] = False
    if args.reinforce_envs is not None:
        overrides["reinforce_envs"] = args.reinforce_envs
    overrides.update(distributed.mesh_overrides(args.mesh, args.devices))
    return Config.quick(**overrides) if args.quick else Config(**overrides)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    config = _config_from_args(args)
    command = ("python -m experiments.sac_pendulum " + shlex.join(argv)).strip()
    record = run(config, Path(args.out), command, progress=not args.no_progress)
    summary = record["summary"]
    print(
        f"wrote {args.out}: SAC last-{config.last_episodes} return "
        f"{summary['sac_last_mean']:.1f} ± {summary['sac_last_std']:.1f}"
        + (
            f", REINFORCE {summary['reinforce_last_mean']:.1f}"
            if "reinforce_last_mean" in summary
            else ""
        )
    )
    # The quick run's check that can fail: training produced finite losses and returns.
    runs = record["sac"] + record["reinforce"]
    if not all(r["finite"] for r in runs):
        print("non-finite losses or returns", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
