"""The SAC / REINFORCE Pendulum report, built from a run's record alone (`render(record)`), so it
can be regenerated from a committed record: the markdown, the returns plot, the summary over
seeds and the checks the quick run must pass."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments import runner

SB3_ZOO_RETURN = (-202.0, 60.0)  # SB3 zoo SAC on Pendulum-v1 at 20k steps, mean ± std over seeds
TARGET_RETURN = -170.0
TARGET_CPU_SECONDS = 600.0


def summarize(
    last_episodes: int, sac: Sequence[Mapping[str, Any]], reinforce: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Mean, spread and worst seed of SAC's first and last training episodes, the target check,
    and REINFORCE's mean and spread."""
    last = np.array([r["last_mean"] for r in sac])
    max_cpu = max(r["cpu_seconds"] for r in sac)
    summary = {
        "sac_first_mean": float(np.mean([r["first_mean"] for r in sac])),
        "sac_last_mean": float(last.mean()),
        "sac_last_std": float(last.std()),
        "sac_last_worst": float(last.min()),
        "sac_max_cpu": float(max_cpu),
        "target_met": bool(last.mean() >= TARGET_RETURN and max_cpu < TARGET_CPU_SECONDS),
        "every_seed_meets_target": bool(last.min() >= TARGET_RETURN),
        "last_episodes": last_episodes,
    }
    if reinforce:
        reinforce_last = np.array([r["last_mean"] for r in reinforce])
        summary["reinforce_last_mean"] = float(reinforce_last.mean())
        summary["reinforce_last_std"] = float(reinforce_last.std())
    return summary


def checks_failed(record: Mapping[str, Any]) -> list[str]:
    """What a run must show: finite losses and returns, and (with `min_improvement` set) that
    every SAC seed's last training episodes beat its first ones by that margin."""
    results, margin = record["results"], record["config"]["min_improvement"]
    failed = [
        f"non-finite losses or returns (seed {r['seed']})"
        for r in results["sac"] + results["reinforce"]
        if not r["finite"]
    ]
    for r in results["sac"]:
        if margin is not None and not r["last_mean"] - r["first_mean"] >= margin:
            failed.append(
                f"SAC seed {r['seed']} did not learn: last episodes {r['last_mean']:.1f} vs "
                f"first {r['first_mean']:.1f}, needed an improvement of {margin:g}"
            )
    return failed


def _per_update(run: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    steps, returns = np.asarray(run["episode_end_steps"]), np.asarray(run["episode_returns"])
    unique = np.unique(steps)
    return unique, np.array([returns[steps == s].mean() for s in unique])


def plot(record: Mapping[str, Any], path: Path) -> None:
    """Training returns against environment steps, SAC and REINFORCE, with the anchors."""
    plt = runner.pyplot()
    results = record["results"]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    sac, reinforce = results["sac"], results["reinforce"]
    for i, run in enumerate(sac):
        label = f"SAC, training episodes ({len(sac)} seeds)" if i == 0 else None
        ax.plot(
            run["episode_end_steps"], run["episode_returns"], "C0", alpha=0.8, lw=1, label=label
        )
    for i, run in enumerate(reinforce):
        # Parallel episodes end together: plot the mean return of each update's batch.
        label = f"REINFORCE, mean per update ({len(reinforce)} seeds)" if i == 0 else None
        ax.plot(*_per_update(run), "C3", alpha=0.8, lw=1, label=label)
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


def write(record: Mapping[str, Any], folder: Path) -> None:
    """sac_pendulum.md and sac_pendulum_returns.png of `record` into `folder`."""
    plot(record, folder / "sac_pendulum_returns.png")
    (folder / "sac_pendulum.md").write_text(render(record))


def _row(method: str, run: Mapping[str, Any], eval_mean: float | None, steps: int) -> str:
    eval_text = "–" if eval_mean is None else f"{eval_mean:.1f}"
    return (
        f"| {method} | {run['seed']} | {run['last_mean']:.1f} | {eval_text} | "
        f"{run['wall_seconds']:.1f} | {run['cpu_seconds']:.1f} | "
        f"{steps / run['wall_seconds']:.0f} |"
    )


def render(record: Mapping[str, Any]) -> str:
    """The markdown report of a `python -m experiments.sac_pendulum` record."""
    config, results = record["config"], record["results"]
    sac, reinforce, long = results["sac"], results["reinforce"], results["reinforce_long"]
    summary, k = results["summary"], config["last_episodes"]
    lines = [
        f"# SAC vs REINFORCE on gymnax {config['env_name']}",
        "",
        f"Command: `{record['command']}`  ",
        f"Commit {record['provenance']['commit']}, {record['provenance']['date']}. "
        f"Machine: {runner.describe_machine(record)}  ",
        f"Total wall time {record['wall_seconds']:.1f} s, CPU time (this process, all threads) "
        f"{record['cpu_seconds']:.1f} s",
        "",
        f"Budget: {config['total_steps']} env steps per run. Metric: mean undiscounted return of "
        f"the last {k} training episodes (stochastic policy); eval: {config['eval_episodes']} "
        "episodes of the deterministic policy at the end.",
        "",
        f"| method | seed | last-{k} return | eval return | wall s | CPU s | env steps/s |",
        "|---|---|---|---|---|---|---|",
        *(_row("SAC", r, r["eval_mean"], config["total_steps"]) for r in sac),
        *(_row("REINFORCE", r, None, r["env_steps"]) for r in reinforce),
    ]
    if long:
        lines.append(_row(f"REINFORCE, {long['env_steps']} steps", long, None, long["env_steps"]))
    lines += [
        "",
        f"SAC last-{k} return over seeds: {summary['sac_last_mean']:.1f} ± "
        f"{summary['sac_last_std']:.1f} (mean ± std over {len(sac)} seeds; worst seed "
        f"{summary['sac_last_worst']:.1f}; first {k} episodes {summary['sac_first_mean']:.1f}); "
        f"max CPU time per run {summary['sac_max_cpu']:.0f} s.",
    ]
    if reinforce:
        lines.append(
            f"REINFORCE last-{k} return: {summary['reinforce_last_mean']:.1f} ± "
            f"{summary['reinforce_last_std']:.1f}."
        )
    zoo, zoo_std = SB3_ZOO_RETURN
    lines += [
        "",
        f"Anchors: SB3 zoo SAC {zoo:g} ± {zoo_std:g} (mean ± std over seeds) at 20k steps. "
        f"Target: mean over 3 seeds ≥ {TARGET_RETURN:g}, each run under "
        f"{TARGET_CPU_SECONDS / 60:.0f} CPU minutes — met: **{summary['target_met']}**; every "
        f"seed ≥ {TARGET_RETURN:g}: {summary['every_seed_meets_target']}. (The last-{k} mean of "
        "one seed is noisy: Pendulum's return depends strongly on the random start angle.)",
        "",
        "![returns](sac_pendulum_returns.png)",
        "",
    ]
    return "\n".join(lines)
