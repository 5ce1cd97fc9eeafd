"""power_spherical (one event axis, no scipy law: not in the generic harness of tests/specs/).

Monte-Carlo checks, 10⁵ samples per case with fixed keys, within 5 standard errors: unit norm;
w = μᵀx against its law (w + 1)/2 ~ Beta((d − 1)/2 + κ, (d − 1)/2) by KS; E[x] and E[x xᵀ]
against closed forms (the latter checks the uniform direction orthogonal to μ); the pathwise
gradients d E[w]/dκ (implicit, through the beta) and d E[⟨δ, x⟩]/dμ along a tangent δ (through the
Householder reflection) against their closed forms; entropy and `kl_uniform` against −E[log p]
and E[log p − log u]. Quadrature: log_prob integrates to 1 (d = 3 and 5). TFP's PowerSpherical
where importable. Extreme κ (1e-3 … 1e4) give finite samples, log-densities and gradients;
check_grads of log_prob; bad input names the argument. One compiled program draws everything.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy import integrate, stats

from reparam import power_spherical
from reparam.checks import checked

Z_THRESHOLD = 5.0
MC_SAMPLES = 100_000
LOC3 = np.array([[1.0, 0.0, 0.0], [0.6, 0.0, 0.8], [0.0, -1.0, 0.0]])
CONCENTRATION3 = np.array([0.5, 3.0, 100.0])
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


# Extremes: κ from 1e-3 to 1e4 at e₁ (where the paper's reflection is singular), −e₁ and others.
EXTREME_CONCENTRATIONS = np.geomspace(1e-3, 1e4, 8)
EXTREME_LOCS = np.array(
    [
        [1.0, 0.0, 0.0],
        [-1.0, 0.0, 0.0],
        [0.0, 1.0, 0.0],
        [0.6, 0.0, 0.8],
        [0.0, 0.0, -1.0],
        [-0.6, 0.8, 0.0],
        [0.48, 0.6, 0.64],
        [-0.48, -0.6, 0.64],
    ]
)


@jax.jit
def _draws(params3, params5, extremes):
    """Per case: x, log p(x) (sample_and_log_prob), dx/dκ and dx/dμ along δ per sample; at the
    extremes x, log p and the gradient of Σ⟨a, x⟩ + Σ log p in (μ, κ)."""

    def one(key, loc, concentration, delta):
        def draw(loc, concentration):
            return power_spherical.sample_and_log_prob(
                key, loc, concentration, sample_shape=(MC_SAMPLES,)
            )

        # One linearization, two tangents: the sampler is traced (and compiled) once.
        (x, log_p), pushforward = jax.linearize(draw, loc, concentration)
        dx_dkappa, _ = pushforward(jnp.zeros_like(loc), jnp.ones_like(concentration))
        dx_dloc, _ = pushforward(delta, jnp.zeros_like(concentration))
        return x, log_p, dx_dkappa, dx_dloc

    def extreme(loc, concentration):
        def total(loc, concentration):
            x, log_p = power_spherical.sample_and_log_prob(
                jax.random.key(42), loc, concentration, sample_shape=(64,)
            )
            return jnp.sum(x * jnp.array([0.3, -0.5, 0.8])) + jnp.sum(log_p), (x, log_p)

        grads, (x, log_p) = jax.grad(total, argnums=(0, 1), has_aux=True)(loc, concentration)
        return x, log_p, power_spherical.log_prob(x, loc, concentration), grads

    return (
        one(jax.random.key(40), *params3),
        one(jax.random.key(41), *params5),
        extreme(*extremes),
    )


# The closed forms the tests compare with, each one compiled program per shape (eager: op by op,
# at d = 3 and d = 5 each).
_log_prob = jax.jit(power_spherical.log_prob)
_mean = jax.jit(power_spherical.mean)
_entropy = jax.jit(power_spherical.entropy)
_kl_uniform = jax.jit(power_spherical.kl_uniform, static_argnums=1)


@pytest.fixture(scope="module")
def all_draws():
    return _draws(
        (LOC3, CONCENTRATION3, _tangent(LOC3)),
        (LOC5, CONCENTRATION5, _tangent(LOC5)),
        (EXTREME_LOCS, EXTREME_CONCENTRATIONS),
    )


@pytest.fixture(scope="module")
def draws(all_draws):
    return [
        (loc, concentration, *(np.asarray(a) for a in arrays))
        for (loc, concentration), arrays in zip(
            ((LOC3, CONCENTRATION3), (LOC5, CONCENTRATION5)), all_draws[:2], strict=True
        )
    ]


def _assert_mc(samples, reference, what):
    """Mean over axis 0 within Z_THRESHOLD standard errors of `reference` (broadcast)."""
    estimate = samples.mean(0)
    standard_error = samples.std(0, ddof=1) / np.sqrt(samples.shape[0])
    excess = np.abs(estimate - reference) - (Z_THRESHOLD * standard_error + 1e-12)
    assert np.all(excess <= 0), f"{what}: MC {estimate} ± {standard_error} vs {reference}"


def test_samples_are_unit_vectors_and_sample_and_log_prob_is_exact(draws):
    for loc, concentration, x, log_p, *_ in draws:
        np.testing.assert_allclose(np.linalg.norm(x, axis=-1), 1.0, atol=1e-12)
        np.testing.assert_allclose(log_p[:64], _log_prob(x[:64], loc, concentration), rtol=1e-10)


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
        _assert_mc(x, np.asarray(_mean(loc, concentration)), f"E[x], d={d}")
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
    for loc, concentration, _, _, dx_dkappa, dx_dloc in draws:
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
        _assert_mc(-log_p, np.asarray(_entropy(loc, concentration)), "entropy")
        _assert_mc(
            log_p + _log_sphere_area(d),
            np.asarray(_kl_uniform(concentration, d)),
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


def test_extreme_concentrations_give_finite_samples_log_probs_and_gradients(all_draws):
    x, log_p, log_p_again, (grad_loc, grad_concentration) = (
        np.asarray(a) if not isinstance(a, tuple) else tuple(np.asarray(g) for g in a)
        for a in all_draws[2]
    )
    for name, value in (
        ("x", x),
        ("log p", log_p),
        ("d/dloc", grad_loc),
        ("d/dκ", grad_concentration),
    ):
        assert np.all(np.isfinite(value)), f"non-finite {name} at κ in {EXTREME_CONCENTRATIONS}"
    np.testing.assert_allclose(np.linalg.norm(x, axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(log_p_again, log_p, rtol=1e-9, atol=1e-9)


def test_check_grads_log_prob(draws):
    loc, concentration, x = draws[0][0], draws[0][1], draws[0][2][:8]
    check_grads(
        jax.jit(lambda loc, concentration: power_spherical.log_prob(x, loc, concentration)),
        (jnp.asarray(loc), jnp.asarray(concentration)),
        order=2,
        modes=("fwd", "rev"),
        atol=1e-5,
        rtol=1e-5,
        eps=1e-6,
    )


@pytest.mark.parametrize(
    ("loc", "concentration", "name"),
    [
        (LOC3, 0.0, "concentration"),
        (LOC3, -1.0, "concentration"),
        (LOC3, np.inf, "concentration"),
        (LOC3, np.nan, "concentration"),
        (2 * LOC3, 1.0, "loc"),
        (np.full(3, np.nan), 1.0, "loc"),
        (np.array([1.0]), 1.0, "loc"),
    ],
)
def test_bad_parameters_name_the_argument(loc, concentration, name):
    for function in (power_spherical.sample, power_spherical.sample_and_log_prob):
        with pytest.raises(ValueError, match=f"`{name}`"):
            function(jax.random.key(0), loc, concentration)
    for function in (power_spherical.entropy, power_spherical.mean):
        with pytest.raises(ValueError, match=f"`{name}`"):
            function(loc, concentration)
    with pytest.raises(ValueError, match=f"`{name}`"):
        power_spherical.log_prob(np.eye(3)[0], loc, concentration)


def test_bad_key_shapes_and_kl_arguments_name_the_argument():
    with pytest.raises(TypeError, match="`key`"):
        power_spherical.sample(0, LOC3, 1.0)
    with pytest.raises(TypeError, match="`sample_shape`"):
        power_spherical.sample(jax.random.key(0), LOC3, 1.0, sample_shape=2.0)
    with pytest.raises(ValueError, match="do not broadcast"):
        power_spherical.sample(jax.random.key(0), LOC3, np.ones(2))
    with pytest.raises(ValueError, match="`x`"):
        power_spherical.log_prob(np.ones(4) / 2, LOC3, CONCENTRATION3)
    with pytest.raises(ValueError, match="`dimension`"):
        power_spherical.kl_uniform(1.0, 1)
    with pytest.raises(TypeError, match="`dimension`"):
        power_spherical.kl_uniform(1.0, 3.0)
    with pytest.raises(ValueError, match="`concentration`"):
        power_spherical.kl_uniform(-1.0, 3)
    # Inside jit through checkify (log_prob: the same parameter checks as sample, compiled cheaply)
    log_prob = jax.jit(checked(lambda loc: power_spherical.log_prob(np.eye(3)[0], loc, 1.0)))
    err, _ = log_prob(jnp.asarray(2 * LOC3))
    with pytest.raises(Exception, match="`loc`"):
        err.throw()
