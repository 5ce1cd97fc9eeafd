"""von_mises beyond the generic contract: both CDF branches (Fourier series and normal
approximation) against exact quadrature, in float64 and float32, second-order implicit
derivatives, wrapping at loc ≠ 0, circular moments, and κ from 1e-4 to 1e4 without NaN."""

from __future__ import annotations

import functools
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, optimize, special, stats

from reparam import von_mises
from tests.specs import TEST_FUNCTIONS

# Across both branches in float64 (series below κ = 50) and float32 (series below κ = 10.5).
KAPPAS = (1e-4, 0.5, 5.0, 10.4, 10.6, 49.0, 51.0, 300.0, 1e4)
RTOL = {np.float64: 1e-7, np.float32: 2e-5}


# ------------------------------------------------------------------ exact references (quadrature)
def density(t, kappa):
    """p(ω; κ) of the centred angle, periodic in t."""
    return np.exp(kappa * (np.cos(t) - 1)) / (2 * np.pi * special.i0e(kappa))


def _quad(f, a, b, points=None):
    inside = [p for p in (points or []) if a < p < b]
    with warnings.catch_warnings():
        # At epsrel=1e-13 quad may report roundoff; the result is still far inside our tolerances.
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        return integrate.quad(f, a, b, points=inside or None, epsabs=0, epsrel=1e-13, limit=500)[0]


def reference_domega_dkappa(omega: float, kappa: float) -> float:
    """−(∂F/∂κ)/p with ∂F/∂κ = ∫_{−π}^{ω} ∂p/∂κ = ∫ p(t) (cos t − I₁/I₀) dt, from the nearer end."""
    ratio = special.i1e(kappa) / special.i0e(kappa)
    integrand = lambda t: density(t, kappa) * (np.cos(t) - ratio)
    if omega < 0:
        dcdf = _quad(integrand, -np.pi, omega)
    else:
        dcdf = -_quad(integrand, omega, np.pi)  # ∂F/∂κ(π) = 0
    return -dcdf / density(omega, kappa)


def reference_cdf(x: float, loc: float, kappa: float) -> float:
    """P(z ≤ x) for z = wrap(loc + ω) ∈ [−π, π): the periodic density integrated from −π."""
    mode = math.remainder(loc, 2 * np.pi)
    return _quad(lambda t: density(t - loc, kappa), -np.pi, x, points=[mode])


def reference_entropy(kappa: float) -> float:
    log_norm = np.log(2 * np.pi * special.i0e(kappa))
    log_p = lambda t: kappa * (np.cos(t) - 1) - log_norm
    return -_quad(lambda t: density(t, kappa) * log_p(t), -np.pi, np.pi, points=[0.0])


def reference_circular_variance(kappa: float) -> float:
    # ∫ (1 − cos t) p(t) dt, written as 2 sin²(t/2) so that large κ does not cancel.
    integrand = lambda t: 2 * np.sin(0.5 * t) ** 2 * density(t, kappa)
    return _quad(integrand, -np.pi, np.pi, points=[0.0])


def _draw_with_gradient(key, kappa, n, dtype):
    """n centred draws (loc = 0, so z = ω) at one κ and their dz/dκ, per sample."""
    with jax.debug_key_reuse(False):
        z, dz = _draw_with_gradient_program(key, jnp.asarray(kappa, dtype), n, dtype)
    return np.asarray(z, np.float64), np.asarray(dz, np.float64)


# One compiled program per dtype for every κ (an argument, not a constant).
@functools.partial(jax.jit, static_argnums=(2, 3))
def _draw_with_gradient_program(key, kappa, n, dtype):
    kappas = jnp.full((n,), kappa, dtype)
    draw = lambda c: von_mises.sample(key, jnp.zeros((), dtype), c)
    return jax.jvp(draw, (kappas,), (jnp.ones_like(kappas),))


# ------------------------------------------------------------------ implicit gradients
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kappa", KAPPAS)
def test_implicit_gradient_matches_quadrature(kappa, dtype):
    """dω/dκ = −(∂F/∂κ)/p against exact quadrature at the drawn ω, both CDF branches."""
    omega, domega = _draw_with_gradient(jax.random.key(20), kappa, 12, dtype)
    reference = np.array([reference_domega_dkappa(w, kappa) for w in omega])
    scale = np.max(np.abs(reference))
    np.testing.assert_allclose(domega, reference, rtol=RTOL[dtype], atol=RTOL[dtype] * scale)


@pytest.mark.parametrize("kappa", [2.0, 80.0])
def test_second_derivative_follows_the_inverse_cdf(kappa):
    """d²ω/dκ² at fixed u = F(ω) against second differences of ω(κ) = F⁻¹(u; κ) (root finding)."""
    n = 4
    kappas = jnp.full((n,), kappa)
    ones = jnp.ones_like(kappas)
    draw = lambda c: von_mises.sample(jax.random.key(21), 0.0, c)
    first = lambda c: jax.jvp(draw, (c,), (ones,))[1]
    with jax.debug_key_reuse(False):
        # One compiled program for the draw and its second derivative (not one per eager op).
        omega, second = jax.jit(lambda c: (draw(c), jax.jvp(first, (c,), (ones,))[1]))(kappas)
        omega, second = np.asarray(omega), np.asarray(second)

    def inverse_cdf(u, k):
        return optimize.brentq(lambda w: reference_cdf(w, 0.0, k) - u, -np.pi, np.pi, xtol=1e-15)

    step = 1e-3 * kappa
    for w, d2 in zip(omega, second, strict=True):
        u = reference_cdf(w, 0.0, kappa)
        up, down = inverse_cdf(u, kappa + step), inverse_cdf(u, kappa - step)
        fd = (up - 2 * w + down) / step**2
        np.testing.assert_allclose(d2, fd, rtol=1e-4, atol=1e-6 / kappa**2)


def test_monte_carlo_gradient_in_the_normal_approximation_branch():
    """The generic MC layer at κ = 80 (float64's normal-approximation branch), f = z², cos."""
    n, kappa = 200_000, 80.0
    names = ("z2", "cos")

    @jax.jit  # both functions' per-sample gradients in one compiled program
    def grads(c):
        return [
            jax.grad(
                lambda c, f=TEST_FUNCTIONS[name]: jnp.sum(
                    f(von_mises.sample(jax.random.key(22), 0.0, c))
                )
            )(c)
            for name in names
        ]

    with jax.debug_key_reuse(False):  # the same key for both, as in two separate programs
        all_per_sample = grads(jnp.full((n,), kappa))
    for f_name, per_sample in zip(names, all_per_sample, strict=True):
        f = TEST_FUNCTIONS[f_name]
        per_sample = np.asarray(per_sample)
        estimate = per_sample.mean()
        standard_error = per_sample.std(ddof=1) / np.sqrt(n)
        step = 1e-3 * kappa

        def expect(k):
            return stats.vonmises(k).expect(f, epsabs=1e-14, epsrel=1e-12, limit=500, points=[0])

        reference = (expect(kappa + step) - expect(kappa - step)) / (2 * step)
        assert abs(estimate - reference) <= 5 * standard_error + 1e-9, (
            f"{f_name}: MC {estimate:.6g} ± {standard_error:.2g} vs quadrature {reference:.6g}"
        )


def test_gradient_in_loc_is_one_also_across_the_wrap():
    loc = jnp.array([0.0, 3.0, -3.1, 10.0])
    grads = jax.grad(lambda m: jnp.sum(von_mises.sample(jax.random.key(23), m, 1.5)))(loc)
    np.testing.assert_array_equal(np.asarray(grads), np.ones(4))


# ------------------------------------------------------------------ distribution
@pytest.mark.parametrize(("loc", "kappa"), [(0.0, 0.3), (2.5, 8.0), (-3.0, 30.0), (1.0, 80.0)])
def test_cdf_matches_quadrature_and_wraps(loc, kappa):
    x = np.linspace(-np.pi, np.pi, 13)
    reference = np.array([reference_cdf(v, loc, kappa) for v in x])
    np.testing.assert_allclose(np.asarray(von_mises.cdf(x, loc, kappa)), reference, atol=1e-8)
    assert float(von_mises.cdf(-np.pi, loc, kappa)) == 0.0
    assert float(von_mises.cdf(np.pi, loc, kappa)) == 1.0


@pytest.mark.parametrize(("loc", "kappa"), [(2.5, 1.0), (-3.0, 5.0)])
def test_wrapped_samples_follow_the_cdf(loc, kappa):
    """KS against the (quadrature-checked) CDF of z, where loc + ω crosses ±π and is wrapped."""
    z = np.asarray(von_mises.sample(jax.random.key(24), loc, kappa, sample_shape=(20_000,)))
    assert z.min() >= -np.pi and z.max() < np.pi
    cdf = lambda x: np.asarray(von_mises.cdf(x, loc, kappa))
    assert stats.kstest(z, cdf).pvalue > 1e-4


@pytest.mark.parametrize("kappa", [1e-4, 2.0, 1e4])
def test_float32_samples_follow_the_cdf(kappa):
    z = von_mises.sample(jax.random.key(25), np.float32(0.0), np.float32(kappa), (20_000,))
    assert z.dtype == np.float32
    assert stats.kstest(np.asarray(z, np.float64), stats.vonmises(kappa).cdf).pvalue > 1e-4


def test_log_prob_is_periodic_and_matches_sample_and_log_prob():
    key = jax.random.key(26)
    loc, kappa = jnp.array([0.3, -2.0]), jnp.array([4.0, 200.0])
    with jax.debug_key_reuse(False):
        z, lp = von_mises.sample_and_log_prob(key, loc, kappa, sample_shape=(5,))
        np.testing.assert_array_equal(
            np.asarray(z), np.asarray(von_mises.sample(key, loc, kappa, 5))
        )
    np.testing.assert_allclose(
        np.asarray(lp), np.asarray(von_mises.log_prob(z, loc, kappa)), rtol=1e-12
    )
    np.testing.assert_allclose(
        np.asarray(von_mises.log_prob(z + 2 * np.pi, loc, kappa)), np.asarray(lp), rtol=1e-10
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_entropy_and_circular_variance_match_quadrature(dtype):
    kappas = np.array([1e-4, 0.7, 20.0, 100.0, 600.0, 1e4])
    entropy = von_mises.entropy(np.zeros((), dtype), kappas.astype(dtype))
    variance = von_mises.circular_variance(np.zeros((), dtype), kappas.astype(dtype))
    assert entropy.dtype == dtype and variance.dtype == dtype
    rtol = 1e-9 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(
        np.asarray(entropy, np.float64),
        [reference_entropy(k) for k in kappas],
        rtol=rtol,
        atol=rtol,
    )
    np.testing.assert_allclose(
        np.asarray(variance, np.float64),
        [reference_circular_variance(k) for k in kappas],
        rtol=rtol,
    )


def test_mean_is_the_wrapped_loc():
    np.testing.assert_allclose(
        np.asarray(von_mises.mean(jnp.array([4.0, -1.0, -np.pi]), 2.0)),
        [4.0 - 2 * np.pi, -1.0, -np.pi],
        rtol=1e-15,
    )


# ------------------------------------------------------------------ extremes and invalid values
def test_float32_concentrations_from_1e_4_to_1e4_give_no_nan():
    kappas = jnp.asarray(np.logspace(-4, 4, 17), jnp.float32)
    locs = jnp.asarray(np.linspace(-3, 3, 17), jnp.float32)

    @jax.jit
    def everything(locs, kappas):
        def total(loc, kappa):
            return jnp.sum(von_mises.sample(jax.random.key(27), loc, kappa, (256,)))

        z = von_mises.sample(jax.random.key(27), locs, kappas, (256,))
        lp = lambda loc, kappa: jnp.sum(von_mises.log_prob(z, loc, kappa))
        moments = lambda loc, kappa: jnp.sum(
            von_mises.entropy(loc, kappa) + von_mises.circular_variance(loc, kappa)
        )
        return (
            z,
            von_mises.log_prob(z, locs, kappas),
            jax.grad(total, (0, 1))(locs, kappas),
            jax.grad(lp, (0, 1))(locs, kappas),
            jax.grad(moments, 1)(locs, kappas),
        )

    with jax.debug_key_reuse(False):
        outputs = everything(locs, kappas)
    for leaf in jax.tree_util.tree_leaves(outputs):
        assert leaf.dtype == jnp.float32
        assert np.all(np.isfinite(np.asarray(leaf)))
    z = np.asarray(outputs[0])
    assert z.min() >= -np.pi and z.max() < np.pi


def test_invalid_concentration_inside_jit_is_nan_not_a_hang():
    """Unchecked jit cannot raise; the rejection loop must still stop (and flag with NaN)."""
    z = jax.jit(von_mises.sample)(jax.random.key(28), 0.0, jnp.array([np.nan, -1.0, 0.0, 1.0]))
    z = np.asarray(z)
    assert np.all(np.isnan(z[:3])) and np.isfinite(z[3])
