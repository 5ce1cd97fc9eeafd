"""reparam.evaluate in a linear-Gaussian model with closed forms.

p(z) = N(0, 1), p(x|z) = N(x; w·z, 1): log p(x) = log N(x; 0, 1 + w²), and the exact posterior
is N(w·x/(1 + w²), 1/(1 + w²)).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

from reparam.models import evaluate

W = 1.5


def log_likelihood(x, z):
    """x (B, 1), z (K, B, 1) -> (K, B)."""
    return jnp.sum(-0.5 * (x - W * z) ** 2 - 0.5 * math.log(2 * math.pi), axis=-1)


def exact_log_px(x):
    variance = 1 + W**2
    return -0.5 * x**2 / variance - 0.5 * math.log(2 * math.pi * variance)


def exact_posterior(x):
    return W * x / (1 + W**2), jnp.full_like(x, 1 / math.sqrt(1 + W**2))


DATA = np.linspace(-2.0, 2.0, 7)[:, None]


@pytest.mark.parametrize(
    ("num_samples", "chunk_size", "batch_size"),
    [(1000, 1000, 7), (1000, 300, 3), (50, 7, 2), (1, 500, 4)],
)
def test_exact_posterior_gives_exact_log_likelihood(key, num_samples, chunk_size, batch_size):
    # Every importance weight is p(x), so any K, chunking (with a masked last chunk) and padding
    # of the last batch must return log p(x) to rounding.
    estimate = evaluate.importance_sampled_log_likelihood(
        key,
        DATA,
        exact_posterior,
        log_likelihood,
        num_samples=num_samples,
        chunk_size=chunk_size,
        batch_size=batch_size,
        dtype=jnp.float64,
    )
    assert estimate.shape == (7,)
    np.testing.assert_allclose(estimate, exact_log_px(DATA[:, 0]), rtol=1e-12)


def test_is_estimate_converges_from_below_with_a_poor_proposal(key):
    prior = lambda x: (jnp.zeros_like(x), jnp.ones_like(x))  # q = p(z): far from the posterior
    elbo = -0.5 * ((DATA[:, 0]) ** 2 + W**2) - 0.5 * math.log(2 * math.pi) - 0.0  # KL = 0
    few = evaluate.importance_sampled_log_likelihood(
        key, DATA, prior, log_likelihood, num_samples=5, dtype=jnp.float64
    )
    many = evaluate.importance_sampled_log_likelihood(
        key, DATA, prior, log_likelihood, num_samples=5000, chunk_size=700, dtype=jnp.float64
    )
    exact = exact_log_px(DATA[:, 0])
    np.testing.assert_allclose(many, exact, atol=0.05)
    assert np.all(many > elbo)
    assert np.mean(many) > np.mean(few)


def test_bad_arguments(key):
    with pytest.raises(ValueError, match="`num_samples`"):
        evaluate.importance_sampled_log_likelihood(
            key, DATA, exact_posterior, log_likelihood, num_samples=0
        )


def test_active_units_and_per_dimension_kl():
    x = np.random.default_rng(0).normal(size=(2003, 1))
    gains = jnp.array([1.0, 0.05, 0.0])
    scales = jnp.array([0.5, 1.0, 2.0])
    encode = lambda x: (x * gains, jnp.broadcast_to(scales, (x.shape[0], 3)))
    active, variances = evaluate.active_units(x, encode, batch_size=500, dtype=jnp.float64)
    np.testing.assert_allclose(variances, np.var(x) * np.asarray(gains) ** 2, rtol=1e-10)
    assert active == 1  # variances 1, 0.0025, 0 against the 0.01 threshold
    kl = evaluate.per_dimension_kl(x, encode, batch_size=500, dtype=jnp.float64)
    expected = [
        np.mean(0.5 * ((g * x[:, 0]) ** 2 + s**2 - 1) - np.log(s))
        for g, s in zip(np.asarray(gains), np.asarray(scales), strict=True)
    ]
    np.testing.assert_allclose(kl, expected, rtol=1e-10)


def test_mean_bound_averages_real_rows_only(key):
    data = np.arange(7.0)[:, None]
    mean = evaluate.mean_bound(key, data, lambda k, x: x[:, 0] ** 2, batch_size=3)
    np.testing.assert_allclose(mean, np.mean(np.arange(7.0) ** 2))
