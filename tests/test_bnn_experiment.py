"""The BNN experiment: `--quick` runs end to end, writes its record, report and plots, and its
results say the BNN works: the ELBO decreases, the predictive band widens away from the data,
the digits BNN classifies far above chance (10 classes) and is calibrated within a bound
measured on the quick run with slack, and local reparameterization / Flipout lower the weight
noise's gradient variance.

The quick run is a subprocess, as a user runs it (float32; this test session enables float64
globally), with the suite's fast-compile XLA settings (tests/child.py): compiling, not running,
is most of a quick run's time (the same HLO, so the same program up to floating-point details).
It runs once for the module.
"""

from __future__ import annotations

import dataclasses
import json

import jax
import numpy as np
import pytest

from experiments import bnn as experiment
from experiments import runner
from experiments.reports import bnn as report
from reparam.models import bnn
from reparam.nn.bayesian import ESTIMATORS
from tests import child


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("bnn") / "run"
    child.run(["-m", "experiments.bnn", "--quick", "--workdir", str(workdir), "--no-progress"])
    return workdir, json.loads((workdir / "record.json").read_text())


def test_blundell_curve():
    x, y = bnn.blundell_curve(jax.random.key(0), 500)
    assert x.shape == y.shape == (500, 1)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 0.5
    # ε ~ N(0, 0.02²) enters inside the sines too: the residual from the noise-free curve is
    # small but not zero.
    clean = x + 0.3 * np.sin(2 * np.pi * x) + 0.3 * np.sin(4 * np.pi * x)
    residual = np.asarray(y - clean)
    assert 0.01 < residual.std() < 0.2


def test_band_widening_statistic():
    grid = np.linspace(-0.2, 1.2, 141)
    flat = bnn.band_widening(grid, np.ones_like(grid))
    assert flat["ratio_left"] == flat["ratio_right"] == flat["ratio_far_right"] == 1.0
    widening = bnn.band_widening(grid, 0.1 + np.abs(grid - 0.25))
    assert widening["ratio_left"] > 1.5 and widening["ratio_far_right"] > 3


def test_quick_run_writes_record_report_and_plots(quick_run):
    workdir, record = quick_run
    for name in ("record.json", "bnn.md", "bnn_regression.png", "bnn_gradient_variance.png"):
        assert (workdir / name).stat().st_size > 0, name
    text = (workdir / "bnn.md").read_text()
    assert "python -m experiments.bnn --quick" in text
    # Provenance is measured, and the report is a function of the record alone.
    assert runner.describe_machine(record) in text
    assert text == report.render(record)


def test_quick_run_passes_its_checks(quick_run):
    _, record = quick_run
    assert report.checks_failed(record) == []
    bayes = record["results"]["regression"]["bayes"]
    assert bayes["loss_last"] < bayes["loss_first"]
    # The band widens away from the data (measured in the quick run: ×1.1 left, ×2.2 at x ≥ 1).
    assert (
        bayes["band"]["ratio_far_right"] > 1.5 and bayes["band_epistemic"]["ratio_far_right"] > 1.5
    )


def test_digits_bnn_classifies_and_is_calibrated(quick_run):
    _, record = quick_run
    digits = record["results"]["digits"]
    # Measured on the quick config (40 epochs), two seeds: BNN accuracy 0.947 / 0.949, ECE 0.137
    # / 0.115; the deterministic MLP 0.944 / 0.956, ECE 0.123. Chance is 0.1; an untrained or
    # mislabelled net has ECE well above 0.3 (0.42 after 4 epochs).
    for name in ("bayes", "bayes_mean_weights", "deterministic"):
        assert digits[name]["accuracy"] > 0.85, (name, digits[name])
    assert digits["bayes"]["ece"] < 0.25, digits["bayes"]
    assert digits["bayes"]["nll"] < 0.6, digits["bayes"]


def test_local_reparameterization_and_flipout_lower_the_weight_noise(quick_run):
    _, record = quick_run
    for point in ("early", "final"):
        entry = record["results"]["variance"][point]
        for estimator in ESTIMATORS:
            assert all(v > 0 for v in entry[estimator].values()), (point, estimator)
        # With one fixed minibatch only the weight noise varies; local reparameterization and
        # Flipout decorrelate it across examples, so the top layer's variance is lower.
        assert entry["local"]["fixed_top_loc"] < entry["bbb"]["fixed_top_loc"]
        assert entry["flipout"]["fixed_top_loc"] < entry["bbb"]["fixed_top_loc"]


def test_checks_fail_on_a_broken_record(quick_run):
    _, record = quick_run
    broken = json.loads(json.dumps(record))
    bayes, digits = broken["results"]["regression"]["bayes"], broken["results"]["digits"]
    bayes["band"]["ratio_left"] = bayes["band"]["ratio_far_right"] = 1.0
    bayes["loss_last"] = bayes["loss_first"] + 1
    digits["bayes"]["accuracy"] = 0.1
    failed = report.checks_failed(broken)
    assert any("band" in message for message in failed)
    assert any("did not decrease" in message for message in failed)
    assert any("accuracy" in message for message in failed)


def test_flags_choose_the_quick_preset_and_the_mesh(capsys):
    argv = ["--quick", "--mesh", "data", "--devices", "4", "--seed", "3"]
    config, flags = runner.cli(experiment.Config, experiment.Config.quick, argv)
    expected = dataclasses.replace(experiment.Config.quick(), mesh="data", devices=4, seed=3)
    assert config == expected and flags.quick
    with pytest.raises(SystemExit) as exit_info:
        runner.cli(experiment.Config, experiment.Config.quick, ["--var-early-epoch", "400"],
                   validate=experiment.validate)  # fmt: skip
    assert exit_info.value.code == 2
    assert "--var-early-epoch must be at most --digits-epochs 300, got 400" in (
        capsys.readouterr().err
    )
