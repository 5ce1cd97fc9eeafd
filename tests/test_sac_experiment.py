"""The SAC / REINFORCE Pendulum experiment: `--quick` runs end to end (env steps and updates in
jitted scans), writes its record, report and plot, and SAC *learns*: its last training episodes
beat its first ones by a margin that a policy which does not learn does not reach (the quick
config's `min_improvement`; how it was measured is noted at `Config.quick`).

The quick run is a subprocess, as a user runs it (float32; this test session enables float64
globally), with the suite's fast-compile XLA settings (tests/child.py): compiling, not running,
is most of a quick run's time (the same HLO, so the same program up to floating-point details).
It runs once for the module.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments import runner
from experiments import sac_pendulum as experiment
from experiments.reports import sac_pendulum as report
from tests import child

CONFIG = experiment.Config.quick()


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("sac") / "run"
    child.run(["-m", "experiments.sac_pendulum", "--quick", "--workdir", str(workdir),
               "--no-progress"])  # fmt: skip
    return workdir, json.loads((workdir / "record.json").read_text())


def test_quick_run_writes_record_report_and_plot(quick_run):
    workdir, record = quick_run
    for name in ("record.json", "sac_pendulum.md", "sac_pendulum_returns.png"):
        assert (workdir / name).stat().st_size > 0, name
    text = (workdir / "sac_pendulum.md").read_text()
    assert "python -m experiments.sac_pendulum --quick" in text
    # Provenance is measured, and the report is a function of the record alone.
    assert runner.describe_machine(record) in text
    assert text == report.render(record)
    assert record["provenance"]["cpu_count"] >= 1 and record["wall_seconds"] > 0


def test_sac_learns_in_the_quick_run(quick_run):
    _, record = quick_run
    (sac,) = record["results"]["sac"]
    assert report.checks_failed(record) == []
    assert sac["last_mean"] - sac["first_mean"] >= CONFIG.min_improvement, sac
    # The deterministic policy after training: uniformly random actions average −1230 per
    # episode (10-episode means: std 95, the best of 400 −942).
    assert len(sac["eval_returns"]) == CONFIG.eval_episodes
    assert sac["eval_mean"] > -800, sac["eval_returns"]


def test_quick_run_episodes_are_whole_and_finite(quick_run):
    _, record = quick_run
    (sac,) = record["results"]["sac"]
    # Pendulum episodes are 200 steps: the budget holds total_steps / 200 of them.
    episodes = CONFIG.total_steps // 200
    assert sac["episode_end_steps"] == [200 * (i + 1) for i in range(episodes)]
    returns = np.asarray(sac["episode_returns"])
    # Pendulum's reward per step lies in [−(π² + 0.1·8² + 0.001·2²), 0] ≈ [−16.3, 0].
    assert np.all(np.isfinite(returns)) and np.all(returns <= 0) and np.all(returns > -16.3 * 200)
    assert sac["finite"] and 0 < sac["final_alpha"] < 10

    (reinforce,) = record["results"]["reinforce"]
    assert reinforce["env_steps"] <= CONFIG.total_steps
    assert len(reinforce["episode_returns"]) == reinforce["env_steps"] // 200
    assert np.all(np.isfinite(reinforce["episode_returns"])) and reinforce["finite"]


def test_learning_check_fails_a_run_that_does_not_learn(quick_run):
    _, record = quick_run
    flat = json.loads(json.dumps(record))
    (sac,) = flat["results"]["sac"]
    sac["last_mean"] = sac["first_mean"] + CONFIG.min_improvement / 2
    assert any("did not learn" in message for message in report.checks_failed(flat))


def test_flags_choose_the_quick_preset_and_the_mesh(capsys):
    argv = ["--quick", "--mesh", "data", "--devices", "4", "--seeds", "3", "4"]
    config, flags = runner.cli(experiment.Config, experiment.Config.quick, argv)
    assert (config.mesh, config.devices, config.seeds) == ("data", 4, (3, 4))
    assert config.total_steps == CONFIG.total_steps and flags.quick
    with pytest.raises(SystemExit) as exit_info:
        runner.cli(experiment.Config, experiment.Config.quick, ["--devices", "4"],
                   validate=experiment.validate)  # fmt: skip
    assert exit_info.value.code == 2
    assert "--devices must be used with --mesh data, got 4" in capsys.readouterr().err
