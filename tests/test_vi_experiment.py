"""experiments/vi_models.py: the models' two implementations agree, and `--quick` runs end to end.

The quick run is a subprocess: the experiment runs in float32 without key-reuse checking, as a
user runs it (this test session enables both globally), and the CLI is what gets exercised.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("numpyro")

from experiments.models import all_models
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


def test_quick_run_writes_tables_plots_and_reference(tmp_path):
    # In float32 (a child process), as NumPyro runs by default.
    child.run(["-m", "experiments.vi_models", "--quick", "--out", str(tmp_path)])
    report = (tmp_path / "vi_models.md").read_text()
    results = json.loads((tmp_path / "vi_models.json").read_text())
    assert "--quick" in report and "max split R-hat" in report
    (name,) = results["models"]
    entry = results["models"][name]
    reference = entry["reference"]
    assert np.isfinite(reference["max_r_hat"]) and reference["min_ess"] > 0
    labels = [fit["label"] for fit in entry["fits"]]
    assert labels == ["mean_field/stl/dirichlet-w", "numpyro/AutoNormal"]
    for fit in entry["fits"]:
        assert np.isfinite(fit["full"]["max_mean_error_sd"])
        assert fit["first_call_s"] > 0 and fit["budget_s"] > 0
        assert np.all(np.isfinite(fit["smoothed"]))
    assert entry["time_ratios"] == {}  # the quick run does not time NumPyro's compiled scan
    for plot in entry["plots"]:
        assert (tmp_path / plot).stat().st_size > 10_000
    draws = np.load(tmp_path / "vi_models_nuts.npz")
    assert f"{name}/weights[0]" in draws.files
