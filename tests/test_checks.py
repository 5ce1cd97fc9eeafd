"""Shared argument checks: clear messages, checkify inside jit, no false alarms."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reparam import checks, normal


def test_key_accepts_typed_and_legacy_keys():
    checks.key(jax.random.key(0), "f")
    checks.key(jax.random.PRNGKey(0), "f")


@pytest.mark.parametrize(
    ("bad", "shown"),
    [
        (0, "int"),
        (np.float32(1.0), "float32"),
        (np.ones(3, np.float32), "float32[3]"),
        ("seed", "str"),
    ],
)
def test_non_key_message_names_key_and_what_came(bad, shown):
    expected = rf"reparam\.normal\.sample: `key` must be a PRNG key.*{re.escape(shown)}"
    with pytest.raises(TypeError, match=expected):
        normal.sample(bad, 0.0, 1.0)


def test_batch_of_keys_is_refused_with_advice():
    with pytest.raises(TypeError, match="vmap"):
        normal.sample(jax.random.split(jax.random.key(0), 3), 0.0, 1.0)


def test_value_error_names_argument_value_and_index():
    with pytest.raises(ValueError, match=r"`scale` must be > 0.*-2\.0 at index \(1,\)"):
        normal.sample(jax.random.key(0), 0.0, jnp.array([1.0, -2.0]))


def test_nan_parameter_is_refused():
    with pytest.raises(ValueError, match="`loc` must be a number, not NaN"):
        normal.log_prob(0.0, jnp.nan, 1.0)


def test_broadcast_message_lists_shapes():
    with pytest.raises(ValueError, match=r"`loc` \(2,\), `scale` \(3,\)"):
        normal.sample(jax.random.key(0), jnp.zeros(2), jnp.ones(3))


def test_non_numeric_parameter_is_a_type_error():
    with pytest.raises(TypeError, match="`loc` must be an array of numbers"):
        normal.log_prob(0.0, "zero", 1.0)


def test_sample_shape_errors():
    with pytest.raises(ValueError, match="non-negative"):
        normal.sample(jax.random.key(0), 0.0, 1.0, sample_shape=(-1,))
    with pytest.raises(TypeError, match="sample_shape"):
        normal.sample(jax.random.key(0), 0.0, 1.0, sample_shape=1.5)


def test_checks_are_seen_under_grad():
    with pytest.raises(ValueError, match="`scale`"):
        jax.grad(lambda s: normal.log_prob(0.0, 0.0, s))(-1.0)


def test_jit_without_checked_skips_value_checks_but_checked_catches_them():
    sample = lambda k, scale: normal.sample(k, 0.0, scale)
    jax.jit(sample)(jax.random.key(0), -1.0)  # abstract values: no eager check possible
    err, _ = jax.jit(checks.checked(sample))(jax.random.key(0), -1.0)
    with pytest.raises(Exception, match=r"`scale` must be > 0.*-1"):
        err.throw()


def test_less_names_both_arguments():
    with pytest.raises(ValueError, match=r"`low` must be < `high`; got low=2.0, high=1.0"):
        checks.less("f", "low", 2.0, "high", 1.0)
