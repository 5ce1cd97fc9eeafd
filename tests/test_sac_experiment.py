"""The SAC / REINFORCE Pendulum experiment: `--quick` runs end to end (env steps and updates in
one jitted scan), writes its report and plot, and produces finite returns of the right count.

The quick run is a subprocess, as a user runs it (float32; this test session enables float64
globally), with XLA's LLVM backend at -O0: compiling, not running, is most of a quick run's
time, and -O0 halves it (the same HLO, so the same program up to floating-point contraction).
"""

from __future__ import annotations

import json

import numpy as np

from experiments import sac_pendulum as experiment
from tests import child


def test_quick_run_writes_results_with_finite_returns(tmp_path):
    child.run(
        ["-m", "experiments.sac_pendulum", "--quick", "--out", str(tmp_path), "--no-progress"]
    )
    for name in ("sac_pendulum.json", "sac_pendulum.md", "sac_pendulum_returns.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    record = json.loads((tmp_path / "sac_pendulum.json").read_text())
    text = (tmp_path / "sac_pendulum.md").read_text()
    assert "python -m experiments.sac_pendulum --quick" in text
    assert "Machine" in text and "wall" in text.lower()

    config = experiment.Config.quick()
    (sac,) = record["sac"]
    # Pendulum episodes are 200 steps: the budget holds total_steps / 200 of them.
    assert len(sac["episode_returns"]) == config.total_steps // 200
    assert sac["episode_end_steps"] == [200 * (i + 1) for i in range(config.total_steps // 200)]
    returns = np.asarray(sac["episode_returns"])
    # Pendulum's reward per step lies in [−(π² + 0.1·8² + 0.001·2²), 0] ≈ [−16.3, 0].
    assert np.all(np.isfinite(returns)) and np.all(returns <= 0) and np.all(returns > -16.3 * 200)
    assert len(sac["eval_returns"]) == config.eval_episodes
    assert sac["finite"] and 0 < sac["final_alpha"] < 10

    (reinforce,) = record["reinforce"]
    assert reinforce["env_steps"] <= config.total_steps
    assert len(reinforce["episode_returns"]) == reinforce["env_steps"] // 200
    assert np.all(np.isfinite(reinforce["episode_returns"]))
