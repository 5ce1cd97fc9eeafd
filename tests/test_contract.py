"""Every family of docs/DESIGN.md's table is importable as reparam.<module> with its contract."""

import importlib
import inspect

import pytest

import reparam
from tests.specs import all_specs

# docs/DESIGN.md's table: parameter names and order follow TFP/scipy.
PARAMETERS = {
    "normal": ("loc", "scale"),
    "multivariate_normal": ("loc", "scale_tril"),
    "low_rank_normal": ("loc", "cov_factor", "scale_diag"),
    "laplace": ("loc", "scale"),
    "logistic": ("loc", "scale"),
    "gumbel": ("loc", "scale"),
    "cauchy": ("loc", "scale"),
    "lognormal": ("loc", "scale"),
    "student_t": ("df", "loc", "scale"),
    "exponential": ("rate",),
    "uniform": ("low", "high"),
    "weibull": ("scale", "concentration"),
    "kumaraswamy": ("concentration1", "concentration0"),
    "beta": ("concentration1", "concentration0"),
    "gamma": ("concentration", "rate"),
    "dirichlet": ("concentration",),
    "von_mises": ("loc", "concentration"),
    "relaxed_categorical": ("logits", "temperature"),
    "relaxed_bernoulli": ("logits", "temperature"),
    "tanh_normal": ("loc", "scale"),
    "normal_mixture": ("logits", "locs", "scales"),
}
# No parameter-free ε: the sampler is a rejection/gamma sampler with implicit gradients.
WITHOUT_NOISE = {"gamma", "beta", "dirichlet", "student_t", "von_mises"}


def test_families_listed_once():
    assert set(reparam.FAMILIES) == set(PARAMETERS)


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_module_has_the_contract(name):
    module = importlib.import_module(f"reparam.{name}")
    assert module.PARAMS == PARAMETERS[name]
    sample = inspect.signature(module.sample)
    assert next(iter(sample.parameters)) == "key"
    assert list(sample.parameters)[1 : 1 + len(module.PARAMS)] == list(module.PARAMS)
    assert "sample_shape" in sample.parameters
    log_prob = inspect.signature(module.log_prob)
    assert list(log_prob.parameters)[1 : 1 + len(module.PARAMS)] == list(module.PARAMS)
    if name in WITHOUT_NOISE:
        assert not hasattr(module, "noise") and not hasattr(module, "transform")
    else:
        assert list(inspect.signature(module.noise).parameters)[:3] == ["key", "shape", "dtype"]
        transform = inspect.signature(module.transform)
        assert list(transform.parameters)[1 : 1 + len(module.PARAMS)] == list(module.PARAMS)
    if name.startswith("relaxed"):
        assert "straight_through" in sample.parameters
        assert "straight_through" in inspect.signature(module.transform).parameters


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_every_family_has_a_spec(name):
    assert any(spec.module.__name__ == f"reparam.families.{name}" for spec in all_specs())
