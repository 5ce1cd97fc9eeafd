"""tanh_normal beyond the generic layers: the change of variables, finiteness at |z| → 1, and
`sample_and_log_prob`'s exactness where tanh rounds to ±1."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from reparam import tanh_normal


def test_log_prob_is_normal_log_prob_of_atanh_minus_log_abs_dtanh():
    """Float64 change of variables, computed with scipy and numpy only."""
    loc = np.array([-1.0, 0.0, 0.7, 2.0])[:, None]
    scale = np.array([0.3, 1.0, 2.0, 0.8])[:, None]
    z = np.linspace(-0.999, 0.999, 41)
    u = np.arctanh(z)
    reference = stats.norm.logpdf(u, loc, scale) - np.log(1 - np.tanh(u) ** 2)
    np.testing.assert_allclose(
        np.asarray(tanh_normal.log_prob(z, loc, scale)), reference, rtol=1e-11, atol=1e-11
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_prob_and_its_gradients_are_finite_at_the_boundary(dtype):
    actions = np.array([-1.0, -(1 - 1e-7), 1 - 1e-7, 1.0], dtype)
    loc, scale = jnp.asarray(0.3, dtype), jnp.asarray(0.5, dtype)
    log_p = tanh_normal.log_prob(actions, loc, scale)
    assert log_p.dtype == dtype
    assert np.all(np.isfinite(np.asarray(log_p))), log_p
    grads = jax.grad(lambda m, s: jnp.sum(tanh_normal.log_prob(actions, m, s)), (0, 1))(loc, scale)
    assert all(np.isfinite(np.asarray(g)) for g in grads)
    # ±(1 − 1e-7) is representable in float64: there the value is exact, not a clipped one.
    if dtype == np.float64:
        u = np.arctanh(actions[1:3])
        reference = stats.norm.logpdf(u, 0.3, 0.5) - np.log1p(-(actions[1:3] ** 2))
        np.testing.assert_allclose(np.asarray(log_p[1:3]), reference, rtol=1e-9)


def test_log_det_jacobian_is_stable():
    u = np.linspace(-15.0, 15.0, 61)
    np.testing.assert_allclose(
        np.asarray(tanh_normal.log_det_jacobian(jnp.asarray(u))),
        np.log(4.0) - 2 * np.logaddexp(u, -u),  # log sech²u, independently
        rtol=1e-12,
        atol=1e-12,
    )
    huge = jnp.asarray([-1e4, -50.0, 50.0, 1e4], jnp.float32)
    value = tanh_normal.log_det_jacobian(huge)
    assert np.all(np.isfinite(np.asarray(value)))
    np.testing.assert_allclose(np.asarray(value), math.log(4) - 2 * np.abs(huge), rtol=1e-6)


def test_sample_and_log_prob_is_exact_where_tanh_rounds_to_one():
    """float32 at loc = 12: every z is 1 to within 3 ulps (1 − z² has lost every digit: 1 within
    the float32 rounding of XLA's default tanh, 1 − 1.8e-7 with its legacy CPU emitter, which the
    suite compiles with), yet log p matches float64 from the same ε."""
    loc, scale = jnp.float32(12.0), jnp.float32(0.5)
    with jax.debug_key_reuse(False):
        z, log_p = tanh_normal.sample_and_log_prob(jax.random.key(30), loc, scale, (1000,))
        eps = np.asarray(tanh_normal.noise(jax.random.key(30), (1000,), jnp.float32), np.float64)
    assert np.all(np.asarray(z) >= 1.0 - 3 * np.finfo(np.float32).epsneg)
    u = 12.0 + 0.5 * eps
    reference = stats.norm.logpdf(u, 12.0, 0.5) - (np.log(4.0) - 2 * np.logaddexp(u, -u))
    np.testing.assert_allclose(np.asarray(log_p), reference, rtol=2e-6)
    # log_prob(z) only sees z = 1 and cannot know u: it stays finite but is not exact.
    assert np.all(np.isfinite(np.asarray(tanh_normal.log_prob(z, loc, scale))))


def test_sample_and_log_prob_matches_sample_then_log_prob_with_gradients():
    params = (jnp.asarray([-0.5, 0.2, 1.0]), jnp.asarray([0.4, 1.0, 1.5]))
    with jax.debug_key_reuse(False):
        z, log_p = tanh_normal.sample_and_log_prob(jax.random.key(31), *params, sample_shape=(6,))
        z_again = tanh_normal.sample(jax.random.key(31), *params, sample_shape=(6,))
        np.testing.assert_array_equal(np.asarray(z), np.asarray(z_again))
        np.testing.assert_allclose(
            np.asarray(log_p), np.asarray(tanh_normal.log_prob(z, *params)), rtol=1e-10
        )

        # The total derivative of log q(z(θ); θ) is what SAC's entropy term differentiates.
        def fused(ps):
            return jnp.sum(tanh_normal.sample_and_log_prob(jax.random.key(32), *ps, (6,))[1])

        def separate(ps):
            return jnp.sum(
                tanh_normal.log_prob(tanh_normal.sample(jax.random.key(32), *ps, (6,)), *ps)
            )

        for g_fused, g_separate in zip(
            jax.grad(fused)(params), jax.grad(separate)(params), strict=True
        ):
            np.testing.assert_allclose(np.asarray(g_fused), np.asarray(g_separate), rtol=1e-8)


@pytest.mark.parametrize(("loc", "scale"), [(0.0, 1.0), (1.3, 0.4), (-0.5, 2.5)])
def test_density_integrates_to_one_and_cdf_is_its_integral(loc, scale):
    density = jax.jit(lambda x: jnp.exp(tanh_normal.log_prob(x, loc, scale)))
    total, _ = integrate.quad(lambda x: float(density(x)), -1, 1, epsabs=1e-11, limit=200)
    assert abs(total - 1) < 1e-8
    partial, _ = integrate.quad(lambda x: float(density(x)), -1, 0.3, epsabs=1e-11, limit=200)
    np.testing.assert_allclose(float(tanh_normal.cdf(0.3, loc, scale)), partial, atol=1e-8)
    np.testing.assert_array_equal(
        np.asarray(tanh_normal.cdf(jnp.array([-2.0, -1.0, 1.0, 2.0]), loc, scale)), [0, 0, 1, 1]
    )
