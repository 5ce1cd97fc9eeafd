"""The estimator-variance experiment: `--quick` runs end to end and its numbers make sense.

The quick run is a subprocess, as a user runs it, with XLA's LLVM backend at -O0: compiling,
not running, is most of a quick run's time, and -O0 halves it (the same HLO, so the same
program up to floating-point contraction).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import integrate, stats

from experiments import estimator_variance as experiment
from tests import child


@pytest.mark.parametrize("name", list(experiment.FUNCTIONS))
def test_closed_form_expectations_match_quadrature(name):
    f, expectation = experiment.FUNCTIONS[name]
    for mu, sigma, k in ((0.0, 1.0, 1.0), (1.0, 1.0, 3.0), (-0.5, 0.3, 0.2)):
        reference = integrate.quad(
            lambda x: float(f(x, k)) * stats.norm.pdf(x, mu, sigma), -np.inf, np.inf
        )[0]
        assert math.isclose(
            float(expectation(mu, sigma, k)), reference, rel_tol=1e-8, abs_tol=1e-12
        )


def test_quick_run_writes_tables_plots_and_consistent_numbers(tmp_path):
    command = ["-m", "experiments.estimator_variance", "--quick"]
    child.run([*command, "--out", str(tmp_path), "--no-progress"])
    for name in (
        "estimator_variance.json",
        "estimator_variance_tables.md",
        "estimator_variance_gaussian_k.png",
        "estimator_variance_gaussian_grid.png",
        "estimator_variance_snr.png",
    ):
        assert (tmp_path / name).stat().st_size > 0, name
    record = json.loads((tmp_path / "estimator_variance.json").read_text())
    tables = (tmp_path / "estimator_variance_tables.md").read_text()
    assert "python -m experiments.estimator_variance --quick" in tables
    assert "Wall time" in tables and "Machine" in tables

    gaussian = record["gaussian"]
    for name in experiment.FUNCTIONS:
        for estimator in experiment.ESTIMATORS:
            entry = gaussian[name][estimator]
            # unbiased: every cell within 5 standard errors of the closed form
            assert max(entry["z_mu"]) < 5 and max(entry["z_sigma"]) < 5, (name, estimator)
            assert all(v >= 0 for v in entry["variance_mu"] + entry["variance_sigma"])
    # The pathwise ∂μ of (x − k)² is 2(x − k): variance 4σ² = 4 at σ = 1, for every k.
    k_cells = [i for i, tag in enumerate(gaussian["sweep"]) if tag == "k"]
    pathwise = np.array(gaussian["(x-k)^2"]["pathwise"]["variance_mu"])[k_cells]
    np.testing.assert_allclose(pathwise, 4.0, rtol=0.15)

    snr = record["snr"]["0.1"]
    assert record["snr"]["ks"] == [1, 10, 100]
    # Rainforth et al.: the standard encoder SNR falls with K; DReG's and the decoder's rise.
    encoder = {g: [snr[g][str(k)]["encoder_mean"] for k in (1, 10, 100)] for g in snr}
    decoder = {g: [snr[g][str(k)]["decoder_mean"] for k in (1, 10, 100)] for g in snr}
    assert encoder["standard"][0] > 2 * encoder["standard"][2]
    assert encoder["dreg"][2] > 2 * encoder["dreg"][0]
    for g in ("standard", "dreg"):
        assert decoder[g][2] > 5 * decoder[g][0]
        assert snr[g]["decoder_slope"] > 0.3
