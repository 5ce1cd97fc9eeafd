"""Shared argument checks: clear messages, checkify inside jit, no false alarms."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reparam import checks, normal


def test_key_accepts_typed_and_legacy_keys():
    typed, legacy = jax.random.key(0), jax.random.PRNGKey(0)
    assert checks.key(typed, "f") is typed
    assert checks.key(legacy, "f") is legacy
    with pytest.raises(TypeError, match="single PRNG key"):
        checks.key(jax.random.split(typed, 2), "f")


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


def test_choice_lists_the_choices():
    assert checks.choice("f", "mode", "a", ("a", "b")) == "a"
    with pytest.raises(ValueError, match=r"f: `mode` must be one of \('a', 'b'\); got 'c'"):
        checks.choice("f", "mode", "c", ("a", "b"))


@pytest.mark.parametrize(
    ("value", "error", "says"),
    [
        (0, ValueError, "`n` must be >= 1; got 0"),
        (2.0, TypeError, "`n` must be a Python int, got float 2.0"),
        (True, TypeError, "`n` must be a Python int, got bool True"),
        ("3", TypeError, "`n` must be a Python int, got str '3'"),
    ],
)
def test_count_refuses_what_is_not_a_count(value, error, says):
    with pytest.raises(error, match=re.escape(f"f: {says}")):
        checks.count("f", "n", value)


def test_count_accepts_numpy_ints_and_names_the_minimum_reason():
    assert checks.count("f", "n", np.int32(3)) == 3
    with pytest.raises(ValueError, match=r"`n` must be >= 2 \(two at least\); got 1"):
        checks.count("f", "n", 1, 2, " (two at least)")


def test_function_family_and_per_sample():
    with pytest.raises(TypeError, match="f: `g` must be callable, got int 3"):
        checks.function("f", "g", 3)
    assert checks.family("f", normal, "sample", "log_prob") is normal
    with pytest.raises(TypeError, match=r"f: `q` must be a family module .* lacks log_prob"):
        checks.family("f", object(), "log_prob", name="q")
    with pytest.raises(ValueError, match=r"`h` must return one value per sample.*got shape \(3,\)"):
        checks.per_sample("f", "h", jnp.zeros(3), 4)


def test_broadcastable_names_expected_and_actual_shapes():
    checks.broadcastable("f", "x", (5, 1, 3), (4,), (3,))  # (5, 1) broadcasts with (4,)
    message = "f: `x` must have shape (..., 3) with the leading part broadcastable to the "
    with pytest.raises(ValueError, match=re.escape(message) + r".*\(4,\).*got shape \(2, 4\)"):
        checks.broadcastable("f", "x", (2, 4), (4,), (3,))
    with pytest.raises(ValueError, match=re.escape("got shape (5,)")):
        checks.broadcastable("f", "eps", (5,), (3,))
