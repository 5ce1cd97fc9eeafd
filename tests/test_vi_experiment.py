"""experiments/vi_models.py: the models' two implementations agree, and `--quick` runs end to end
with both libraries measured alike and close to NUTS.

The quick run is a subprocess, run once for the module: the experiment runs in float32 without
key-reuse checking, as a user runs it (this test session enables both globally), and the CLI is
what gets exercised.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("numpyro")

from experiments.models import all_models
from experiments.reports import vi_models as report
from reparam import vi
from tests import child

# A point inside every model's support, away from the initial values.
POINTS = {
    "eight_schools_centered": {
        "mu": np.array(1.3),
        "tau": np.array(2.7),
        "theta": np.linspace(-3.0, 9.0, 8),
    },
    "eight_schools_noncentered": {
        "mu": np.array(-0.4),
        "tau": np.array(0.6),
        "theta_tilde": np.linspace(-1.5, 1.0, 8),
    },
    "logistic_regression": {
        "alpha": np.array(0.3),
        "beta": np.sin(np.arange(30.0)) * 0.4,
    },
    "gaussian_mixture": {
        "weights": np.array([0.3, 0.7]),
        "locs": np.array([-2.2, 1.4]),
        "scales": np.array([0.8, 1.1]),
    },
}


@pytest.mark.parametrize("name", sorted(POINTS))
def test_log_joint_equals_the_numpyro_model_density(name):
    """Same unnormalized posterior in both implementations, or the comparison means nothing."""
    from numpyro.infer.util import log_density

    model = all_models()[name]
    point = POINTS[name]
    assert set(point) == set(model.init_params)
    ours = float(model.log_joint(point))
    theirs, _ = log_density(model.numpyro_model, (), {}, point)
    np.testing.assert_allclose(ours, float(theirs), rtol=1e-10)
    # And the initial point is valid for both.
    assert np.isfinite(float(model.log_joint(model.init_params)))


def test_quantities_are_the_same_for_both_eight_schools_parameterizations():
    models = all_models()
    mu, tau = np.array([0.5, 1.0]), np.array([2.0, 3.0])
    theta_tilde = np.arange(16.0).reshape(2, 8) / 10
    noncentered = models["eight_schools_noncentered"].quantities(
        {"mu": mu, "tau": tau, "theta_tilde": theta_tilde}
    )
    centered = models["eight_schools_centered"].quantities(
        {"mu": mu, "tau": tau, "theta": mu[:, None] + tau[:, None] * theta_tilde}
    )
    assert list(noncentered) == list(centered) == ["mu", "tau"] + [f"theta[{i}]" for i in range(8)]
    for name in centered:
        np.testing.assert_allclose(noncentered[name], centered[name])


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """The quick run's work directory and record (one mixture; mean_field/stl vs AutoNormal)."""
    workdir = tmp_path_factory.mktemp("vi_models") / "run"
    child.run(["-m", "experiments.vi_models", "--quick", "--workdir", str(workdir)])
    return workdir, json.loads((workdir / "record.json").read_text())


def test_quick_run_writes_record_report_and_plots(quick):
    workdir, record = quick
    report_text = (workdir / "vi_models.md").read_text()
    # The markdown is the record's rendering, nothing else (so committed records re-render).
    assert report_text == report.render(record)
    assert "--quick" in record["command"] and record["quick"]
    assert "max split R-hat" in report_text and "mean_field/stl vs AutoNormal" in report_text
    assert record["provenance"]["cpu"] in report_text  # the machine as measured
    (name,) = record["results"]["models"]
    reference = record["results"]["models"][name]["reference"]
    assert reference["max_r_hat"] < 1.1 and reference["min_ess"] > 50
    for plot in report.plot_names(name):
        assert (workdir / plot).stat().st_size > 10_000


def test_both_libraries_are_measured_alike(quick):
    _, record = quick
    (entry,) = record["results"]["models"].values()
    quantities = set(entry["reference"]["summary"])
    fits = {fit["label"]: fit for fit in entry["fits"]}
    assert list(fits) == ["mean_field/stl", "numpyro/AutoNormal"]
    for fit in fits.values():
        assert fit["first_call_s"] > 0 and fit["converge_s"] > 0 and fit["budget_s"] > 0
        # A converged fit runs fewer steps than the budget; the budget fit runs them all.
        assert fit["status"] == "converged" and fit["steps"] < record["config"]["num_steps"]
        assert len(fit["smoothed"]) == record["config"]["num_steps"] // record["config"]["window"]
        for when in ("at_convergence", "budget"):
            assert set(fit[when]["per_quantity"]) == quantities
    # NumPyro's per-call svi.init is part of its time to a fit, and reported as such.
    numpyro = fits["numpyro/AutoNormal"]
    assert 0 < numpyro["converge_setup_s"] < numpyro["converge_s"]
    assert fits["mean_field/stl"]["converge_setup_s"] is None


def test_both_libraries_stop_by_the_same_rule(quick):
    """Each fit's convergence step is where `reparam.vi`'s test fires on its own window means."""
    _, record = quick
    config = record["config"]
    (entry,) = record["results"]["models"].values()
    for fit in entry["fits"]:
        window_means = np.repeat(np.asarray(fit["smoothed"], np.float64), config["window"])
        fires = vi.convergence_step(
            window_means, config["window"], config["rtol"], config["patience"]
        )
        assert fires == fit["budget_converged_step"] == fit["steps"], fit["label"]


def test_both_libraries_agree_with_nuts(quick):
    """Every reported quantity's mean within 1 NUTS sd of NUTS's, and its sd within a factor of
    2: a guide that samples the wrong place or the wrong spread fails this (measured: ≤ 0.35 sd
    and sd ratios 0.8–1.5)."""
    _, record = quick
    (entry,) = record["results"]["models"].values()
    for fit in entry["fits"]:
        for when in ("at_convergence", "budget"):
            accuracy = fit[when]
            assert accuracy["max_mean_error_sd"] < 1.0, (fit["label"], when, accuracy)
            assert 0.5 < accuracy["sd_ratio_min"] <= accuracy["sd_ratio_max"] < 2.0, fit["label"]


@pytest.mark.parametrize(
    "flags",
    [
        ["--models", "nope"],
        ["--variants", "mean_field"],
        ["--variants", "x/stl"],
        ["--num-steps", "150"],
    ],
)
def test_bad_flags_are_one_line_errors_naming_the_flag(flags, capsys):
    from experiments import vi_models

    with pytest.raises(SystemExit) as exit_info:
        vi_models.main(flags)
    error = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and error.startswith(f"error: {flags[0]} must be")
    assert len(error.splitlines()) == 1
