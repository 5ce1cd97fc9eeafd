"""The estimator-variance experiment: `--quick` runs end to end and its numbers make sense.

The quick run is a subprocess, run once for the module, as a user runs it, with the suite's
fast-compile XLA settings (tests/child.py): compiling, not running, is most of a quick run's time
(the same HLO, so the same program up to floating-point details).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import integrate, stats

from experiments import estimator_variance as experiment
from experiments.reports import estimator_variance as report
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


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("estimator_variance") / "run"
    child.run(["-m", "experiments.estimator_variance", "--quick", "--workdir", str(workdir)])
    return workdir, json.loads((workdir / "record.json").read_text())


def test_quick_run_writes_record_tables_and_plots(quick):
    workdir, record = quick
    for name in ("k", "grid", "snr"):
        stem = f"gaussian_{name}" if name != "snr" else name
        assert (workdir / f"estimator_variance_{stem}.png").stat().st_size > 10_000, name
    tables = (workdir / "estimator_variance_tables.md").read_text()
    # The tables are the record's rendering, nothing else (so committed records re-render).
    assert tables == report.render(record)
    assert "python -m experiments.estimator_variance --quick" in tables
    assert record["provenance"]["cpu"] in tables and "Wall time" in tables


def test_gaussian_study_is_unbiased_and_ordered(quick):
    _, record = quick
    gaussian = record["results"]["gaussian"]
    assert report.functions(gaussian) == list(experiment.FUNCTIONS)
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
    # Mohamed et al.: the pathwise estimator's variance is below the score function's for the
    # smooth quadratic, at every cell, and for ∂σ of every f at μ = 0, σ = 1, k = 1 (measured
    # margins ≥ 2.5×; for ∂μ of the bounded exp and cos the score function can be lower).
    variance = lambda name, e, which: np.array(gaussian[name][e][f"variance_{which}"])
    for which in ("mu", "sigma"):
        ratio = variance("(x-k)^2", "score_function", which) / variance(
            "(x-k)^2", "pathwise", which
        )
        assert ratio.min() > 2, which
    key = gaussian["sweep"].index("key")
    for name in experiment.FUNCTIONS:
        sf, pathwise = (variance(name, e, "sigma")[key] for e in ("score_function", "pathwise"))
        assert sf > 2 * pathwise, name


def test_snr_study_reproduces_rainforth_et_al(quick):
    _, record = quick
    snr = record["results"]["snr"]
    assert snr["ks"] == [1, 10, 100]
    point, slopes = snr["perturbations"]["0.1"], report.slopes(snr, "0.1")
    # Rainforth et al.: the standard encoder SNR falls with K; DReG's and the decoder's rise.
    encoder = {g: [point[g][str(k)]["encoder_mean"] for k in (1, 10, 100)] for g in point}
    decoder = {g: [point[g][str(k)]["decoder_mean"] for k in (1, 10, 100)] for g in point}
    assert encoder["standard"][0] > 2 * encoder["standard"][2]
    assert encoder["dreg"][2] > 2 * encoder["dreg"][0]
    assert slopes["standard"]["encoder"] < 0 < slopes["dreg"]["encoder"]
    for g in ("standard", "dreg"):
        assert decoder[g][2] > 5 * decoder[g][0]
        assert slopes[g]["decoder"] > 0.3
