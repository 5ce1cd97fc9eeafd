"""power_spherical: the layers the generic harness (tests/specs/power_spherical.py) cannot run.

Monte-Carlo checks, 10⁵ samples per case with fixed keys, within 5 standard errors: unit norm;
w = μᵀx against its law (w + 1)/2 ~ Beta((d − 1)/2 + κ, (d − 1)/2) by KS; E[x] and E[x xᵀ]
against closed forms (the latter checks the uniform direction orthogonal to μ); the pathwise
gradients d E[w]/dκ (implicit, through the beta) and d E[⟨δ, x⟩]/dμ along a tangent δ (through the
Householder reflection) against their closed forms; entropy and `kl_uniform` against −E[log p]
and E[log p − log u]. Quadrature: log_prob integrates to 1 (d = 3 and 5). TFP's PowerSpherical
where importable. One compiled program draws everything for d = 3 and d = 5.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from reparam import power_spherical
from tests.specs.power_spherical import SPECS

Z_THRESHOLD = 5.0
MC_SAMPLES = 100_000
LOC3, CONCENTRATION3 = SPECS[0].params  # (3, 3) unit vectors, κ = 0.5, 3, 100
LOC5 = np.array([[0.0, 0.6, 0.0, 0.0, -0.8], [0.5, 0.5, 0.5, 0.5, 0.0]])
CONCENTRATION5 = np.array([2.0, 20.0])


def _tangent(loc):
    """A unit tangent δ ⊥ μ at each μ (the first basis vector's projection, or the second's)."""
    basis = np.eye(loc.shape[-1])
    pick = np.where(np.abs(loc[..., :1]) < 0.9, basis[0], basis[1])
    delta = pick - np.sum(pick * loc, -1, keepdims=True) * loc
    return delta / np.linalg.norm(delta, axis=-1, keepdims=True)


def _log_sphere_area(d):
    return math.log(2) + 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d)


@jax.jit
def _draws(params3, params5):
    """Per case: x, log p(x) (sample_and_log_prob), dx/dκ and dx/dμ along δ per sample."""

    def one(key, loc, concentration, delta):
        def draw(loc, concentration):
            return power_spherical.sample_and_log_prob(
                key, loc, concentration, sample_shape=(MC_SAMPLES,)
            )

        (x, log_p), (dx_dkappa, _) = jax.jvp(
            draw, (loc, concentration), (jnp.zeros_like(loc), jnp.ones_like(concentration))
        )
        _, (dx_dloc, _) = jax.jvp(
            draw, (loc, concentration), (delta, jnp.zeros_like(concentration))
        )
        return (
            x,
            log_p,
            dx_dkappa,
            dx_dloc,
            power_spherical.sample(key, loc, concentration, (MC_SAMPLES,))[:4],
        )

    return one(jax.random.key(40), *params3), one(jax.random.key(41), *params5)


@pytest.fixture(scope="module")
def draws():
    with jax.debug_key_reuse(False):  # sample and sample_and_log_prob share a key on purpose
        out = _draws((LOC3, CONCENTRATION3, _tangent(LOC3)), (LOC5, CONCENTRATION5, _tangent(LOC5)))
    return [
        (loc, concentration, *(np.asarray(a) for a in arrays))
        for (loc, concentration), arrays in zip(
            ((LOC3, CONCENTRATION3), (LOC5, CONCENTRATION5)), out, strict=True
        )
    ]


def _assert_mc(samples, reference, what):
    """Mean over axis 0 within Z_THRESHOLD standard errors of `reference` (broadcast)."""
    estimate = samples.mean(0)
    standard_error = samples.std(0, ddof=1) / np.sqrt(samples.shape[0])
    excess = np.abs(estimate - reference) - (Z_THRESHOLD * standard_error + 1e-12)
    assert np.all(excess <= 0), f"{what}: MC {estimate} ± {standard_error} vs {reference}"


def test_samples_are_unit_vectors_and_sample_and_log_prob_is_exact(draws):
    for loc, concentration, x, log_p, _, _, head in draws:
        np.testing.assert_allclose(np.linalg.norm(x, axis=-1), 1.0, atol=1e-12)
        # sample and sample_and_log_prob draw the same x (up to rounding: one is differentiated
        # here, which XLA may fuse differently); its log p is log_prob's
        np.testing.assert_allclose(head, x[:4], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(
            log_p[:64], power_spherical.log_prob(x[:64], loc, concentration), rtol=1e-10
        )


def test_w_follows_its_beta_law_and_the_moments_match(draws):
    for loc, concentration, x, *_ in draws:
        d = loc.shape[-1]
        w = np.sum(x * loc, -1)
        for b, kappa in enumerate(concentration):
            law = stats.beta(0.5 * (d - 1) + kappa, 0.5 * (d - 1))
            p_value = stats.kstest((w[:, b] + 1) / 2, law.cdf).pvalue
            assert p_value > 1e-4, f"KS p={p_value:.2g} at d={d}, κ={kappa}"
        mean_t = concentration / (d - 1 + concentration)
        _assert_mc(w, mean_t, f"E[w], d={d}")
        _assert_mc(x, np.asarray(power_spherical.mean(loc, concentration)), f"E[x], d={d}")
        # E[x xᵀ] = E[t²] μμᵀ + (1 − E[t²])/(d − 1) (I − μμᵀ), t = w = 2z − 1, z ~ Beta(a, c)
        a, c = 0.5 * (d - 1) + concentration, 0.5 * (d - 1)
        mean_z = a / (a + c)
        second_z = mean_z * (a + 1) / (a + c + 1)
        second_t = 4 * second_z - 4 * mean_z + 1
        outer = loc[:, :, None] * loc[:, None, :]
        expected = second_t[:, None, None] * outer + ((1 - second_t) / (d - 1))[:, None, None] * (
            np.eye(d) - outer
        )
        _assert_mc(x[..., :, None] * x[..., None, :], expected, f"E[x xᵀ], d={d}")


def test_monte_carlo_gradients_match_closed_forms(draws):
    for loc, concentration, _, _, dx_dkappa, dx_dloc, _ in draws:
        d = loc.shape[-1]
        # E[w] = κ/(d − 1 + κ): d/dκ = (d − 1)/(d − 1 + κ)² (implicit gradient through the beta)
        _assert_mc(
            np.sum(dx_dkappa * loc, -1),
            (d - 1) / (d - 1 + concentration) ** 2,
            f"dE[w]/dκ, d={d}",
        )
        # E[⟨δ, x⟩] = κ/(d − 1 + κ) ⟨δ, μ(s)⟩ along μ(s) on the sphere with μ'(0) = δ:
        # derivative κ/(d − 1 + κ) ‖δ‖² = κ/(d − 1 + κ) (through the Householder reflection)
        _assert_mc(
            np.sum(dx_dloc * _tangent(loc), -1),
            concentration / (d - 1 + concentration),
            f"dE[⟨δ, x⟩]/dμ·δ, d={d}",
        )


def test_entropy_and_kl_to_the_uniform_match_monte_carlo(draws):
    for loc, concentration, _, log_p, *_ in draws:
        d = loc.shape[-1]
        _assert_mc(-log_p, np.asarray(power_spherical.entropy(loc, concentration)), "entropy")
        _assert_mc(
            log_p + _log_sphere_area(d),
            np.asarray(power_spherical.kl_uniform(concentration, d)),
            f"KL to uniform, d={d}",
        )


@pytest.mark.parametrize("d", [3, 5])
def test_log_prob_integrates_to_one(d):
    """∫ p dσ = ∫₋₁¹ p(x(w)) |S^(d−2)| (1 − w²)^((d−3)/2) dw, x(w) = w μ + √(1 − w²) δ."""
    loc = np.eye(d)[1]  # not e₁: the density must not care
    delta = np.eye(d)[0]
    concentrations = np.array([1e-3, 0.5, 3.0, 100.0, 1e4])
    log_prob = jax.jit(jax.vmap(power_spherical.log_prob, in_axes=(0, None, None)))
    log_area = _log_sphere_area(d - 1)

    def integrand(w, kappa):
        x = (w * loc + math.sqrt(max(1 - w * w, 0.0)) * delta)[None]
        log_p = float(log_prob(x, loc, kappa)[0])
        return math.exp(log_p + log_area) * max(1 - w * w, 0.0) ** (0.5 * (d - 3))

    for kappa in concentrations:
        total, _ = integrate.quad(integrand, -1, 1, args=(kappa,), points=[0.99, 0.9999], limit=200)
        np.testing.assert_allclose(total, 1.0, rtol=1e-7, err_msg=f"κ={kappa}, d={d}")


def test_matches_tfp_power_spherical(draws):
    tfp = pytest.importorskip("tensorflow_probability.substrates.jax")
    for loc, concentration, x, *_ in draws:
        dist = tfp.distributions.PowerSpherical(loc, concentration)
        np.testing.assert_allclose(
            power_spherical.log_prob(x[:16], loc, concentration),
            dist.log_prob(x[:16]),
            rtol=1e-10,
            atol=1e-10,
        )
        np.testing.assert_allclose(
            power_spherical.entropy(loc, concentration), dist.entropy(), rtol=1e-10
        )
        np.testing.assert_allclose(
            power_spherical.mean(loc, concentration), dist.mean(), rtol=1e-12
        )


def test_kl_uniform_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="`dimension`"):
        power_spherical.kl_uniform(1.0, 1)
    with pytest.raises(TypeError, match="`dimension`"):
        power_spherical.kl_uniform(1.0, 3.0)
    with pytest.raises(ValueError, match="`concentration`"):
        power_spherical.kl_uniform(-1.0, 3)
    with pytest.raises(ValueError, match="`x`"):
        power_spherical.log_prob(np.ones(4) / 2, LOC3, CONCENTRATION3)
