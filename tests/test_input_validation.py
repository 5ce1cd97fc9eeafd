"""Bad shapes get the library's own error, naming the function, the argument and what came.

Cheap by design: every case fails in the argument checks, before any jit compile.
"""

import re

import jax
import numpy as np
import pytest

from reparam.models import discrete_vae
from tests.specs import all_specs

SPECS = [pytest.param(spec, id=spec.name) for spec in all_specs() if spec.id is None]
NOISE_SPECS = [pytest.param(spec, id=spec.name) for spec in all_specs() if spec.has_noise]

# (sample_shape, error, what the message must say about it)
BAD_SAMPLE_SHAPES = [
    ("12", TypeError, "str '12'"),  # not (1, 2)
    ((2.7, 3), TypeError, "2.7 is a float"),  # not (2, 3)
    ("a", TypeError, "str 'a'"),  # not a bare int() error
    ((True, 2), TypeError, "True is a bool"),
    (2.0, TypeError, "float 2.0"),
    (((2,), 3), TypeError, "(2,) is a tuple"),
    ((2, -1), ValueError, "non-negative, got (2, -1)"),
    (-3, ValueError, "non-negative, got (-3,)"),
]


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("function", ["sample", "sample_and_log_prob"])
@pytest.mark.parametrize(("bad", "error", "says"), BAD_SAMPLE_SHAPES)
def test_bad_sample_shape_is_named(spec, function, bad, error, says):
    module = spec.module
    name = module.__name__.split(".")[-1]
    message = rf"reparam\.{name}\.{function}: `sample_shape` must be .*{re.escape(says)}"
    with pytest.raises(error, match=message):
        getattr(module, function)(jax.random.key(0), *spec.params, sample_shape=bad)


@pytest.mark.parametrize("spec", NOISE_SPECS)
@pytest.mark.parametrize(("bad", "error", "says"), BAD_SAMPLE_SHAPES[:3])
def test_bad_noise_shape_is_named(spec, bad, error, says):
    name = spec.module.__name__.split(".")[-1]
    with pytest.raises(error, match=rf"reparam\.{name}\.noise: `shape` must be"):
        spec.module.noise(jax.random.key(0), bad)
    with pytest.raises(error, match=rf"reparam\.{name}\.noise_shape: `sample_shape` must be"):
        spec.module.noise_shape(bad, *spec.params)


def test_good_sample_shapes_are_kept():
    spec = next(s for s in all_specs() if s.name == "normal")
    for shape, expected in [(4, (4,)), ((), ()), ([2, 1], (2, 1)), ((np.int64(2),), (2,))]:
        z = spec.module.sample(jax.random.key(0), *spec.params, sample_shape=shape)
        assert z.shape == (*expected, *spec.batch_shape)


def _wrong_batch(spec, event):
    """A shape whose batch part (4,) does not broadcast with the specs' batch (3,)."""
    assert spec.batch_shape == (3,)
    return (4, *event)


@pytest.mark.parametrize("spec", NOISE_SPECS)
def test_transform_with_wrongly_shaped_eps(spec):
    name = spec.module.__name__.split(".")[-1]
    eps = np.zeros(_wrong_batch(spec, spec.noise_event))
    with pytest.raises(ValueError, match=rf"reparam\.{name}\.transform: `eps` must have shape"):
        spec.module.transform(eps, *spec.params, **spec.sample_kwargs)
    try:
        spec.module.transform(eps, *spec.params, **spec.sample_kwargs)
    except ValueError as error:
        assert "(3,)" in str(error) and f"got shape {eps.shape}" in str(error)
    if spec.noise_event:  # the event axis of the wrong size
        eps = np.zeros((3, spec.noise_event[-1] + 1))
        with pytest.raises(ValueError, match=rf"{name}\.transform: `eps` must have shape .*"):
            spec.module.transform(eps, *spec.params, **spec.sample_kwargs)


@pytest.mark.parametrize("spec", SPECS)
def test_log_prob_with_wrongly_shaped_x(spec):
    name = spec.module.__name__.split(".")[-1]
    x = np.full(_wrong_batch(spec, spec.event_shape), 0.5)
    with pytest.raises(
        ValueError, match=rf"reparam\.{name}\.log_prob: `x` must have shape"
    ) as info:
        spec.module.log_prob(x, *spec.params)
    assert "(3,)" in str(info.value) and f"got shape {x.shape}" in str(info.value)
    if spec.event_shape:
        x = np.full((3, spec.event_shape[-1] + 1), 0.1)
        with pytest.raises(ValueError, match=rf"reparam\.{name}\.log_prob: `x` must have shape"):
            spec.module.log_prob(x, *spec.params)


def test_broadcastable_x_and_eps_still_work():
    spec = next(s for s in all_specs() if s.name == "normal")
    loc, scale = spec.params
    assert spec.module.log_prob(np.zeros((5, 1)), loc, scale).shape == (5, 3)
    assert spec.module.transform(0.5, loc, scale).shape == (3,)


def test_one_hot_categorical_sample_shape():
    logits = np.zeros((2, 3))
    with pytest.raises(TypeError, match=r"one_hot_categorical\.sample: `sample_shape`"):
        discrete_vae.one_hot_categorical.sample(jax.random.key(0), logits, "12")
