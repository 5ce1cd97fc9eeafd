"""SAC against REINFORCE on gymnax's Pendulum-v1: pathwise vs score-function policy gradients.

    python -m experiments.sac_pendulum --quick
    python -m experiments.sac_pendulum --workdir runs/sac_pendulum --record

SAC (Haarnoja et al. 2018; SB3 zoo's Pendulum hyperparameters: lr 1e-3, 256-256 MLPs, batch 256,
γ 0.99, τ 0.005, one update per step after 100 uniform-random steps, initial α = 1) against
REINFORCE with a learned baseline (same policy network and env steps; `reinforce_envs` parallel
200-step episodes per update). The loops are `reparam.rl` (`make_sac_trainer` / `train_sac`,
`make_reinforce_trainer`: env steps, buffer writes and updates in jitted `lax.scan`s); this
script holds the config, runs the seeds and writes the record; experiments/reports/sac_pendulum.py
renders the report and plot from it. Headline: mean return of the last `last_episodes` training
episodes (SB3 zoo −202 ± 60 at 20k; target ≥ −170 over 3 seeds in under 10 CPU minutes), and
`eval_episodes` of the deterministic policy. `--quick` fails (exit 1) unless SAC learns: its
last episodes beat its first ones by `min_improvement`.

`--mesh data [--devices N]` (fake CPU devices: XLA_FLAGS=--xla_force_host_platform_device_count=N)
splits SAC's replay minibatches and REINFORCE's environments over a device mesh; the same returns
as one device up to float32 summation order (tests/test_sharding.py).

Writes into --workdir: record.json, sac_pendulum.md, sac_pendulum_returns.png.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import time
from dataclasses import dataclass
from typing import Any

import gymnax
import jax
import numpy as np
import optax
from jax.sharding import Mesh
from tqdm import tqdm

from experiments import runner
from experiments.reports import sac_pendulum as report
from reparam import rl
from reparam.nn.policy import TanhGaussianPolicy, TwinQ, ValueNetwork
from reparam.train import distributed


@dataclass(frozen=True)
class Config:
    """SAC vs REINFORCE on gymnax's Pendulum-v1 (pathwise vs score-function gradients)."""

    env_name: str = "Pendulum-v1"
    """gymnax environment."""
    total_steps: int = 20_000
    """Environment steps of every run (SAC's and REINFORCE's)."""
    learning_starts: int = 100
    """SAC's uniform-random steps before its first update."""
    batch_size: int = 256
    """SAC's replay minibatch (a multiple of --devices with --mesh data)."""
    hidden: tuple[int, ...] = (256, 256)
    """Hidden widths of every network (policy, critics, value baseline)."""
    learning_rate: float = 1e-3
    """SAC's Adam learning rate (actor, critics and α)."""
    gamma: float = 0.99
    """Discount."""
    tau: float = 0.005
    """Polyak rate of SAC's target critics."""
    chunk_steps: int = 1_000
    """SAC steps per compiled chunk (the progress bar moves between chunks)."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """One SAC and one REINFORCE run per seed."""
    eval_episodes: int = 10
    """Episodes of SAC's deterministic policy after training (0: none)."""
    last_episodes: int = 10
    """The headline metric averages the last this many training episodes."""
    min_improvement: float | None = None
    """If set: fail (exit 1) unless every SAC seed's last `last_episodes` training episodes beat
    its first `last_episodes` by this much (the quick run's learning check)."""
    reinforce_envs: int = 4
    """REINFORCE's parallel episodes per update (a multiple of --devices with --mesh data)."""
    reinforce_lr: float = 1e-3
    """REINFORCE's Adam learning rate."""
    run_reinforce: bool = True
    """Also run REINFORCE on every seed."""
    reinforce_long_steps: int | None = 200_000
    """One more REINFORCE run (first seed) with this many env steps, for context (None: no)."""
    mesh: str = "none"
    """'none' (one device) or 'data' (data-parallel over --devices)."""
    devices: int | None = None
    """Devices of the data mesh (None: all)."""

    def __post_init__(self) -> None:
        distributed.check_mesh_choice("experiments.sac_pendulum.Config", self.mesh)

    @staticmethod
    def quick() -> Config:
        # 25 episodes: SAC learns Pendulum by about step 4000 here. A uniformly random policy's
        # last-5 minus first-5 episode mean has std 185 (99.9th percentile 548, 400 draws):
        # the margin of 600 is one that no policy that does not learn reaches.
        return Config(
            total_steps=5_000,
            batch_size=128,
            hidden=(64, 64),
            chunk_steps=5_000,
            seeds=(0,),
            eval_episodes=10,
            last_episodes=5,
            min_improvement=600.0,
            reinforce_envs=2,
            reinforce_long_steps=None,
        )


def validate(config: Config) -> None:
    runner.require_mesh_for_devices(config)
    steps, chunk = config.total_steps, config.chunk_steps
    runner.require(steps % chunk == 0, "--total-steps", f"a multiple of --chunk-steps ({chunk})",
                   steps)  # fmt: skip


def policy_for(config: Config, spec: rl.EnvSpec) -> TanhGaussianPolicy:
    return TanhGaussianPolicy(spec.action_dim, hidden=config.hidden, action_scale=spec.max_action)


@functools.cache  # one trainer per (config, mesh): its programs compile once for all seeds
def sac_trainer(config: Config, mesh: Mesh | None = None) -> rl.SACTrainer:
    env, env_params = gymnax.make(config.env_name)
    sac_config = rl.SACConfig(
        gamma=config.gamma, tau=config.tau, actor_lr=config.learning_rate,
        critic_lr=config.learning_rate, alpha_lr=config.learning_rate,
        batch_size=config.batch_size, learning_starts=config.learning_starts,
        buffer_size=config.total_steps,
    )  # fmt: skip
    policy = policy_for(config, rl.env_spec(env, env_params))
    critic = TwinQ(hidden=config.hidden)
    return rl.make_sac_trainer(env, env_params, policy, critic, sac_config, mesh=mesh)


def run_sac(key, config: Config, mesh: Mesh | None = None, progress=False, trace=False):
    """One SAC run's summary; `trace` adds the per-step losses (arrays) under "trace"."""
    trainer = sac_trainer(config, mesh)
    wall, cpu = time.perf_counter(), time.process_time()
    with tqdm(total=config.total_steps, desc="SAC", disable=not progress) as bar:
        result = rl.train_sac(
            key, trainer, total_steps=config.total_steps, chunk_steps=config.chunk_steps,
            eval_episodes=config.eval_episodes, mesh=mesh,
            on_chunk=lambda done, _: bar.update(done - bar.n),
        )  # fmt: skip
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    out = result.outputs
    steps, returns = rl.completed_episodes(out["done"], out["episode_return"])
    k = config.last_episodes
    return {
        "episode_end_steps": steps,
        "episode_returns": returns,
        "first_mean": float(np.mean(returns[:k])),
        "last_mean": float(np.mean(returns[-k:])),
        "eval_returns": result.eval_returns,
        "eval_mean": float(np.mean(result.eval_returns)) if config.eval_episodes else None,
        "final_alpha": float(out["alpha"][-1]),
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "finite": bool(np.all(np.isfinite(out["critic_loss"])) and np.all(np.isfinite(returns))),
        **({"trace": {k: out[k] for k in ("critic_loss", "actor_loss", "alpha")}} if trace else {}),
    }


@functools.cache  # one trainer per (config, mesh), as for SAC
def reinforce_trainer(config: Config, mesh: Mesh | None = None):
    env, env_params = gymnax.make(config.env_name)
    spec = rl.env_spec(env, env_params)
    train = rl.make_reinforce_trainer(
        env, env_params, policy_for(config, spec), ValueNetwork(hidden=config.hidden),
        optax.adam(config.reinforce_lr), num_envs=config.reinforce_envs, gamma=config.gamma,
        mesh=mesh,
    )  # fmt: skip
    return train, spec


def run_reinforce(key, config: Config, mesh: Mesh | None = None) -> dict[str, Any]:
    """One REINFORCE run of `config.total_steps` env steps (whole updates)."""
    train, spec = reinforce_trainer(config, mesh)
    steps_per_update = config.reinforce_envs * spec.horizon
    num_updates = config.total_steps // steps_per_update
    if mesh is not None:
        key = distributed.put_replicated(key, mesh)
    wall, cpu = time.perf_counter(), time.process_time()
    _, out = jax.device_get(train(key, num_updates))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    returns = np.asarray(out["episode_returns"]).ravel()  # (updates · envs,), in order
    return {
        "episode_end_steps": np.repeat(
            (np.arange(num_updates) + 1) * steps_per_update, config.reinforce_envs
        ),
        "episode_returns": returns,
        "last_mean": float(np.mean(returns[-config.last_episodes :])),
        "env_steps": num_updates * steps_per_update,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "finite": bool(np.all(np.isfinite(returns)) and np.all(np.isfinite(out["loss"]))),
    }


def train_and_evaluate(config: Config, run: runner.Run) -> dict[str, Any]:
    """Every seed's SAC and REINFORCE run, the summary, the record, the report and the plot."""
    mesh = distributed.mesh_from_flags(config.mesh, config.devices, "experiments.sac_pendulum")
    if config.run_reinforce:  # checked before SAC runs, not after
        distributed.check_divisible(
            "experiments.sac_pendulum", "reinforce_envs", config.reinforce_envs, mesh
        )
    sac = [
        {"seed": s, **run_sac(run.key("sac", s), config, mesh, run.progress)} for s in config.seeds
    ]
    reinforce = [
        {"seed": s, **run_reinforce(run.key("reinforce", s), config, mesh)}
        for s in (config.seeds if config.run_reinforce else ())
    ]
    long = None
    if config.run_reinforce and config.reinforce_long_steps:
        long_config = dataclasses.replace(config, total_steps=config.reinforce_long_steps)
        seed = config.seeds[0]
        long = {"seed": seed, **run_reinforce(run.key("reinforce-long", seed), long_config, mesh)}
    record = run.finish(
        {"sac": sac, "reinforce": reinforce, "reinforce_long": long,
         "summary": report.summarize(config.last_episodes, sac, reinforce)}
    )  # fmt: skip
    report.write(record, run.workdir)
    return record


def main(argv: list[str] | None = None) -> int:
    config, flags = runner.cli(Config, Config.quick, argv, validate=validate)
    run = runner.start("sac_pendulum", config, flags, argv)
    record = train_and_evaluate(config, run)
    summary, results = record["results"]["summary"], record["results"]
    print(
        f"wrote {run.workdir}: SAC last-{config.last_episodes} return "
        f"{summary['sac_last_mean']:.1f} ± {summary['sac_last_std']:.1f} (first "
        f"{summary['sac_first_mean']:.1f})"
        + (f", REINFORCE {summary['reinforce_last_mean']:.1f}" if results["reinforce"] else "")
    )
    for message in (failed := report.checks_failed(record)):
        print("check failed:", message, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(runner.main(main))
