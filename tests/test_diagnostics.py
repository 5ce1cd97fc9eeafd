"""Diagnostics: mean / variance / standard error / SNR over repeats, against known answers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reparam import estimators, normal
from reparam.estimators import diagnostics


def test_statistics_match_numpy_on_the_same_draws():
    """Repeat r uses the r-th key of split(key, R): recompute the estimates by hand."""
    estimate = lambda key, shift: {"a": jax.random.normal(key, (3,)) + shift, "b": jnp.ones(2)}
    stats = diagnostics.statistics(jax.random.key(0), estimate, 50, jnp.array(2.0))
    draws = np.stack(
        [
            np.asarray(jax.random.normal(k, (3,))) + 2.0
            for k in jax.random.split(jax.random.key(0), 50)
        ]
    )
    np.testing.assert_allclose(np.asarray(stats.mean["a"]), draws.mean(0), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(stats.variance["a"]), draws.var(0, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(
        np.asarray(stats.std_error["a"]), draws.std(0, ddof=1) / np.sqrt(50), rtol=1e-12
    )
    np.testing.assert_allclose(
        np.asarray(stats.snr["a"]), np.abs(draws.mean(0)) / draws.std(0, ddof=1), rtol=1e-12
    )
    # zero variance: infinite SNR for a nonzero mean, never NaN
    assert np.all(np.asarray(stats.variance["b"]) == 0)
    assert np.all(np.isinf(np.asarray(stats.snr["b"])))
    assert stats.num_repeats == 50


def test_batch_size_chunks_give_the_same_numbers():
    estimate = lambda key: jax.random.uniform(key, (4,))
    whole = diagnostics.statistics(jax.random.key(1), estimate, 30)
    chunked = diagnostics.statistics(jax.random.key(1), estimate, 30, batch_size=7)
    for a, b in zip(whole[:4], chunked[:4], strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12)


def test_gradient_statistics_of_the_pathwise_estimator_have_the_known_variance():
    """Pathwise ∂/∂loc of E[(z − 1)²] is 2(z − 1) = 2(loc − 1 + scale ε): mean 2(loc − 1),
    variance 4 scale²/K; ∂/∂scale is 2(loc − 1 + scale ε) ε: variance 4(loc−1)² + 8 scale²."""
    loc, scale, k = jnp.array([0.5, -1.0]), jnp.array([1.0, 2.0]), 4
    stats = diagnostics.gradient_statistics(
        jax.random.key(2),
        lambda key, p: estimators.pathwise(key, lambda z: (z - 1.0) ** 2, normal, p, k),
        (loc, scale),
        20_000,
    )
    np.testing.assert_allclose(np.asarray(stats.mean[0]), 2 * (loc - 1), atol=5 * 0.03)
    np.testing.assert_allclose(np.asarray(stats.variance[0]), 4 * scale**2 / k, rtol=0.05)
    np.testing.assert_allclose(
        np.asarray(stats.variance[1]), (4 * (loc - 1) ** 2 + 8 * scale**2) / k, rtol=0.05
    )
    np.testing.assert_allclose(
        np.asarray(stats.snr[0]), np.abs(2 * (loc - 1)) / np.sqrt(4 * scale**2 / k), rtol=0.05
    )


def test_gradient_statistics_accept_any_pytree_of_parameters():
    params = {"encoder": {"loc": jnp.zeros(2)}, "scale": jnp.ones(2)}
    stats = diagnostics.gradient_statistics(
        jax.random.key(3),
        lambda key, p: estimators.score_function(
            key, jnp.cos, normal, (p["encoder"]["loc"], p["scale"]), 3, baseline="leave_one_out"
        ),
        params,
        8,
    )
    assert jax.tree_util.tree_structure(stats.mean) == jax.tree_util.tree_structure(params)
    assert stats.snr["encoder"]["loc"].shape == (2,)


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="`num_repeats` must be >= 2"):
        diagnostics.statistics(jax.random.key(0), lambda k: k, 1)
    with pytest.raises(TypeError, match="`num_repeats`"):
        diagnostics.statistics(jax.random.key(0), lambda k: k, 10.0)
    with pytest.raises(TypeError, match="`estimate` must be callable"):
        diagnostics.statistics(jax.random.key(0), None, 10)
    with pytest.raises(TypeError, match="`surrogate` must be callable"):
        diagnostics.gradient_statistics(jax.random.key(0), 1.0, jnp.zeros(2), 10)
    with pytest.raises(ValueError, match="`batch_size`"):
        diagnostics.statistics(jax.random.key(0), lambda k: jnp.zeros(1), 10, batch_size=0)
    with pytest.raises(TypeError, match="`key`"):
        diagnostics.statistics(0, lambda k: jnp.zeros(1), 10)
