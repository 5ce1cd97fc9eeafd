"""The BNN experiment: `--quick` runs end to end, writes its tables and plots, and its checks
(ELBO decreases, the predictive band widens away from the data) pass — and can fail.

The quick run is a subprocess, as a user runs it (float32; this test session enables float64
globally), with XLA's LLVM backend at -O0: compiling, not running, is most of a quick run's
time, and -O0 halves it (the same HLO, so the same program up to floating-point contraction).
"""

from __future__ import annotations

import json

import jax
import numpy as np

from experiments import bnn as experiment
from tests import child


def test_regression_data_is_blundells_curve():
    x, y = experiment.regression_data(jax.random.key(0), 500)
    assert x.shape == y.shape == (500, 1)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 0.5
    # ε ~ N(0, 0.02²) enters inside the sines too: the residual from the noise-free curve is
    # small but not zero.
    clean = x + 0.3 * np.sin(2 * np.pi * x) + 0.3 * np.sin(4 * np.pi * x)
    residual = np.asarray(y - clean)
    assert 0.01 < residual.std() < 0.2


def test_band_widening_statistic():
    grid = np.linspace(-0.2, 1.2, 141)
    flat = experiment.band_widening(grid, np.ones_like(grid))
    assert flat["ratio_left"] == flat["ratio_right"] == flat["ratio_far_right"] == 1.0
    widening = experiment.band_widening(grid, 0.1 + np.abs(grid - 0.25))
    assert widening["ratio_left"] > 1.5 and widening["ratio_far_right"] > 3


def test_quick_run_writes_results_and_passes_its_checks(tmp_path):
    child.run(["-m", "experiments.bnn", "--quick", "--out", str(tmp_path), "--no-progress"])
    for name in ("bnn.json", "bnn.md", "bnn_regression.png", "bnn_gradient_variance.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    record = json.loads((tmp_path / "bnn.json").read_text())
    text = (tmp_path / "bnn.md").read_text()
    assert "python -m experiments.bnn --quick" in text
    assert "Wall time" in text and "Machine" in text
    assert experiment.checks_failed(record) == []

    digits = record["digits"]
    for name in ("bayes", "bayes_mean_weights", "deterministic"):
        assert 0.0 <= digits[name]["ece"] <= 1.0
        assert digits[name]["accuracy"] > 0.3  # ten classes: far above chance after a few epochs
    for point in ("early", "final"):
        for estimator in experiment.ESTIMATORS:
            values = record["variance"][point][estimator]
            assert all(v > 0 for v in values.values()), (point, estimator)
        # With one fixed minibatch only the weight noise varies; local reparameterization and
        # Flipout decorrelate it across examples, so the top layer's variance is lower.
        entry = record["variance"][point]
        assert entry["local"]["fixed_top_loc"] < entry["bbb"]["fixed_top_loc"]
        assert entry["flipout"]["fixed_top_loc"] < entry["bbb"]["fixed_top_loc"]

    # The checks can fail: a record whose band does not widen, or whose loss went up.
    broken = json.loads(json.dumps(record))
    band = broken["regression"]["bayes"]["band"]
    band["ratio_left"] = band["ratio_far_right"] = 1.0
    broken["regression"]["bayes"]["loss_last"] = broken["regression"]["bayes"]["loss_first"] + 1
    failed = experiment.checks_failed(broken)
    assert any("band" in message for message in failed)
    assert any("did not decrease" in message for message in failed)
