"""Every family of docs/DESIGN.md's table is importable as reparam.<module> with its contract."""

import importlib
import inspect

import jax
import numpy as np
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
    "von_mises_fisher": ("loc", "concentration"),
    "relaxed_categorical": ("logits", "temperature"),
    "relaxed_bernoulli": ("logits", "temperature"),
    "tanh_normal": ("loc", "scale"),
    "normal_mixture": ("logits", "locs", "scales"),
    "truncated_normal": ("loc", "scale", "low", "high"),
    "power_spherical": ("loc", "concentration"),
    "lkj_cholesky": ("dimension", "concentration"),
    "half_normal": ("scale",),
    "half_cauchy": ("scale",),
    "half_student_t": ("df", "scale"),
    "inverse_gamma": ("concentration", "scale"),
    "chi2": ("df",),
    "pareto": ("concentration", "scale"),
    "generalized_normal": ("loc", "scale", "power"),
    "multivariate_normal_mixture": ("logits", "locs", "scale_trils"),
}
# No parameter-free ε: the sampler is a rejection/gamma sampler with implicit gradients.
WITHOUT_NOISE = {
    "gamma",
    "beta",
    "dirichlet",
    "student_t",
    "von_mises",
    "von_mises_fisher",
    "power_spherical",
    "lkj_cholesky",
    "half_student_t",
    "inverse_gamma",
    "chi2",
    "generalized_normal",
}
# Not in the generic layers (tests/specs/), which are univariate-oriented: lkj_cholesky's
# `dimension` is a static Python int, which they would turn into a traced array; power_spherical
# has no scipy law. Their layers are in tests/test_lkj.py and tests/test_spherical.py.
WITHOUT_SPEC = {"lkj_cholesky", "power_spherical"}


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
    assert callable(module.sample_and_log_prob)
    # Defined in the family's own module, with its own docstring (not produced by a factory).
    for function in ("sample", "sample_and_log_prob", "log_prob", "noise", "transform"):
        if hasattr(module, function):
            assert getattr(module, function).__module__ == module.__name__, function
            assert getattr(module, function).__doc__, function
    if name in WITHOUT_NOISE:
        assert not hasattr(module, "noise") and not hasattr(module, "transform")
        assert not hasattr(module, "noise_shape")
    else:
        assert list(inspect.signature(module.noise).parameters)[:3] == ["key", "shape", "dtype"]
        transform = inspect.signature(module.transform)
        assert list(transform.parameters)[1 : 1 + len(module.PARAMS)] == list(module.PARAMS)
        noise_shape = inspect.signature(module.noise_shape)
        assert list(noise_shape.parameters) == ["sample_shape", *module.PARAMS]
    if name.startswith("relaxed"):
        assert "straight_through" in sample.parameters
        assert "straight_through" in inspect.signature(module.transform).parameters


@pytest.mark.parametrize("name", sorted(set(PARAMETERS) - WITHOUT_SPEC))
def test_every_family_has_a_spec(name):
    assert any(spec.module.__name__ == f"reparam.families.{name}" for spec in all_specs())


def _noise_specs():
    return [pytest.param(spec, id=spec.name) for spec in all_specs() if spec.has_noise]


@pytest.mark.parametrize("spec", _noise_specs())
@pytest.mark.parametrize("sample_shape", [(), (2,)])
def test_noise_shape_feeds_transform_to_give_sample_bit_for_bit(spec, sample_shape):
    """docs/DESIGN.md: `noise_shape` tells a caller with its own ε source what to draw."""
    module, params = spec.module, spec.params
    key = jax.random.key(7)
    shape = module.noise_shape(sample_shape, *params)
    assert shape == (*sample_shape, *spec.batch_shape, *spec.noise_event)
    with jax.debug_key_reuse(False):  # the same key twice on purpose: the same bits
        eps = module.noise(key, shape, np.asarray(params[0]).dtype)
        expected = module.sample(key, *params, sample_shape=sample_shape, **spec.sample_kwargs)
    z = module.transform(eps, *params, **spec.sample_kwargs)
    assert z.shape == (*sample_shape, *spec.batch_shape, *spec.event_shape) == expected.shape
    np.testing.assert_array_equal(np.asarray(z), np.asarray(expected))


def test_student_t_sample_and_log_prob_reuses_the_draw():
    params = (np.array([0.7, 3.0, 30.0]), np.array([0.0, -1.0, 2.0]), np.array([1.0, 0.5, 3.0]))
    with jax.debug_key_reuse(False):
        z, log_p = reparam.student_t.sample_and_log_prob(jax.random.key(3), *params, (4,))
        np.testing.assert_array_equal(
            np.asarray(z), np.asarray(reparam.student_t.sample(jax.random.key(3), *params, (4,)))
        )
    np.testing.assert_allclose(log_p, reparam.student_t.log_prob(z, *params), rtol=1e-12)
