"""lkj_cholesky: its own layers (the generic harness cannot take a static `dimension`).

Monte-Carlo checks use 10⁵ samples per case with fixed keys and a 5-standard-error tolerance:
samples are lower triangular with unit rows and a positive diagonal; each off-diagonal C_ij of
C = L Lᵀ follows 2 Beta(η − 1 + d/2, same) − 1 (KS); log_prob equals the hand-written d = 2 density
(1 − r²)^(η−1)/B(1/2, η) and TFP's CholeskyLKJ; the pathwise gradient of E[f(L)] in η matches the
closed form d/dη E[Σ C_ij²], the score-function estimator (combined standard error), and d = 2
quadrature; extreme η give finite samples, log-densities and gradients; bad input names the
argument. Two compiled programs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import betaln
from scipy import integrate, special, stats

from reparam import lkj_cholesky
from reparam.checks import checked

Z_THRESHOLD = 5.0
MC_SAMPLES = 100_000
CONCENTRATION3 = np.array([0.5, 1.0, 4.0])  # d = 3
CONCENTRATION2 = np.array([0.5, 2.0])  # d = 2
EXTREME_CONCENTRATIONS = np.geomspace(0.05, 1e3, 8)  # d = 4


@jax.jit
def _monte_carlo(concentration3, concentration2):
    """Per d: L, log p(L) (sample_and_log_prob), per-sample dL/dη and the score ∂η log p(L)."""

    def one(key, dimension, concentration):
        def draw(concentration):
            return lkj_cholesky.sample_and_log_prob(
                key, dimension, concentration, sample_shape=(MC_SAMPLES,)
            )

        ones = jnp.ones_like(concentration)
        (cholesky, log_p), (d_cholesky, _) = jax.jvp(draw, (concentration,), (ones,))
        _, score = jax.jvp(
            lambda c: lkj_cholesky.log_prob(cholesky, dimension, c), (concentration,), (ones,)
        )
        return cholesky, log_p, d_cholesky, score

    return one(jax.random.key(50), 3, concentration3), one(jax.random.key(51), 2, concentration2)


# log_prob compiled once per dimension (shared by two tests), not one program per eager op.
_log_prob = jax.jit(lkj_cholesky.log_prob, static_argnums=1)


@pytest.fixture(scope="module")
def draws():
    d3, d2 = _monte_carlo(CONCENTRATION3, CONCENTRATION2)
    return {
        3: tuple(np.asarray(a) for a in d3),
        2: tuple(np.asarray(a) for a in d2),
    }


def _mean_and_standard_error(samples):
    return samples.mean(0), samples.std(0, ddof=1) / np.sqrt(samples.shape[0])


def _correlation(cholesky):
    return cholesky @ np.swapaxes(cholesky, -1, -2)


def _sum_of_squared_correlations(cholesky, d_cholesky):
    """f(L) = Σ_{i>j} C_ij² and its derivative along dL (dC = dL Lᵀ + L dLᵀ); shapes (N, B)."""
    c = _correlation(cholesky)
    dc = d_cholesky @ np.swapaxes(cholesky, -1, -2) + cholesky @ np.swapaxes(d_cholesky, -1, -2)
    below = np.tril(np.ones(c.shape[-2:], bool), -1)
    return np.sum(np.where(below, c**2, 0), (-2, -1)), np.sum(
        np.where(below, 2 * c * dc, 0), (-2, -1)
    )


def _cosine(cholesky, d_cholesky):
    """f(L) = cos(C_10 + 2 C_21) (d = 3) and its derivative along dL; shapes (N, B)."""
    c = _correlation(cholesky)
    dc = d_cholesky @ np.swapaxes(cholesky, -1, -2) + cholesky @ np.swapaxes(d_cholesky, -1, -2)
    angle = c[..., 1, 0] + 2 * c[..., 2, 1]
    return np.cos(angle), -np.sin(angle) * (dc[..., 1, 0] + 2 * dc[..., 2, 1])


def test_samples_are_cholesky_factors_of_correlation_matrices(draws):
    for dimension, (cholesky, log_p, *_) in draws.items():
        concentration = CONCENTRATION3 if dimension == 3 else CONCENTRATION2
        assert np.all(np.triu(cholesky, 1) == 0), "not lower triangular"
        np.testing.assert_allclose(np.linalg.norm(cholesky, axis=-1), 1.0, atol=1e-12)
        assert np.all(np.diagonal(cholesky, axis1=-2, axis2=-1) > 0)
        np.testing.assert_allclose(
            log_p[:64], _log_prob(cholesky[:64], dimension, concentration), rtol=1e-10
        )


def test_off_diagonal_correlations_follow_their_beta_law(draws):
    cholesky = draws[3][0]
    c = _correlation(cholesky)
    for b, eta in enumerate(CONCENTRATION3):
        law = stats.beta(eta - 1 + 1.5, eta - 1 + 1.5)  # η − 1 + d/2 at d = 3
        for i, j in ((1, 0), (2, 0), (2, 1)):
            p_value = stats.kstest((c[:, b, i, j] + 1) / 2, law.cdf).pvalue
            assert p_value > 1e-4, f"KS p={p_value:.2g} for C_{i}{j} at η={eta}"


def test_log_prob_is_the_correlation_density_at_d2(draws):
    cholesky = draws[2][0][:64]
    r = cholesky[..., 1, 0]
    expected = (CONCENTRATION2 - 1) * np.log1p(-(r**2)) - np.asarray(betaln(0.5, CONCENTRATION2))
    np.testing.assert_allclose(
        _log_prob(cholesky, 2, CONCENTRATION2), expected, rtol=1e-10, atol=1e-12
    )


def test_pathwise_gradient_matches_closed_form_and_score_function(draws):
    cholesky, _, d_cholesky, score = draws[3]
    # E[Σ_{i>j} C_ij²] = 3/(2η + 2) at d = 3 (Var C_ij = 1/(2η + d − 1)): d/dη = −6/(2η + 2)²
    _, pathwise = _sum_of_squared_correlations(cholesky, d_cholesky)
    mean, standard_error = _mean_and_standard_error(pathwise)
    reference = -6 / (2 * CONCENTRATION3 + 2) ** 2
    assert np.all(np.abs(mean - reference) <= Z_THRESHOLD * standard_error), (mean, reference)

    for f in (_sum_of_squared_correlations, _cosine):
        values, pathwise = f(cholesky, d_cholesky)
        # Score function with the sample mean as baseline (E[score] = 0; its O(1/N) bias is far
        # below the standard error).
        score_terms = (values - values.mean(0)) * score
        mean_path, se_path = _mean_and_standard_error(pathwise)
        mean_score, se_score = _mean_and_standard_error(score_terms)
        tolerance = Z_THRESHOLD * np.sqrt(se_path**2 + se_score**2)
        assert np.all(np.abs(mean_path - mean_score) <= tolerance), (
            f"{f.__name__}: pathwise {mean_path} ± {se_path} vs score {mean_score} ± {se_score}"
        )


def test_pathwise_gradient_matches_d2_quadrature(draws):
    """d = 2: p(r) = (1 − r²)^(η−1)/B(1/2, η); d/dη E[f] = ∫ f p (log(1 − r²) − ψ(η) + ψ(η + ½)),
    integrated in θ with r = sin θ (p dr = cos^(2η−1) θ dθ / B: no endpoint singularity)."""
    cholesky, _, d_cholesky, _ = draws[2]
    r, dr = cholesky[..., 1, 0], d_cholesky[..., 1, 0]
    for f, df in (
        (np.square, lambda r: 2 * r),
        (lambda r: np.cos(2 * r), lambda r: -2 * np.sin(2 * r)),
    ):
        mean, standard_error = _mean_and_standard_error(df(r) * dr)
        for b, eta in enumerate(CONCENTRATION2):
            shift = special.digamma(eta + 0.5) - special.digamma(eta)

            def integrand(theta, eta=eta, shift=shift):
                cos = np.cos(theta)
                return f(np.sin(theta)) * cos ** (2 * eta - 1) * (2 * np.log(cos) + shift)

            total, _ = integrate.quad(integrand, -np.pi / 2, np.pi / 2, limit=200)
            reference = total / special.beta(0.5, eta)
            assert abs(mean[b] - reference) <= Z_THRESHOLD * standard_error[b] + 1e-9, (
                f"η={eta}: MC {mean[b]} ± {standard_error[b]} vs quadrature {reference}"
            )


@jax.jit
def _extremes(concentration):
    key = jax.random.key(52)
    weights = jax.random.normal(jax.random.key(53), (4, 4))

    def total(concentration):
        cholesky, log_p = lkj_cholesky.sample_and_log_prob(key, 4, concentration, (64,))
        return jnp.sum(cholesky * weights) + jnp.sum(log_p), (cholesky, log_p)

    grad, (cholesky, log_p) = jax.grad(total, has_aux=True)(concentration)
    return cholesky, log_p, lkj_cholesky.log_prob(cholesky, 4, concentration), grad


def test_extreme_concentrations_are_finite_and_match_tfp():
    with jax.debug_key_reuse(False):
        cholesky, log_p, log_p_again, grad = (
            np.asarray(a) for a in _extremes(EXTREME_CONCENTRATIONS)
        )
    assert np.all(np.isfinite(cholesky)) and np.all(np.isfinite(log_p))
    assert np.all(np.isfinite(grad)), grad
    assert np.all(np.triu(cholesky, 1) == 0)
    np.testing.assert_allclose(np.linalg.norm(cholesky, axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(log_p_again, log_p, rtol=1e-9)
    tfp = pytest.importorskip("tensorflow_probability.substrates.jax")
    reference = tfp.distributions.CholeskyLKJ(4, EXTREME_CONCENTRATIONS).log_prob(cholesky)
    np.testing.assert_allclose(log_p, reference, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
    ("dimension", "concentration", "error", "name"),
    [
        (1, 1.0, ValueError, "dimension"),
        (3.0, 1.0, TypeError, "dimension"),
        (True, 1.0, TypeError, "dimension"),
        (3, 0.0, ValueError, "concentration"),
        (3, -1.0, ValueError, "concentration"),
        (3, np.inf, ValueError, "concentration"),
        (3, np.nan, ValueError, "concentration"),
    ],
)
def test_bad_parameters_name_the_argument(dimension, concentration, error, name):
    with pytest.raises(error, match=f"`{name}`"):
        lkj_cholesky.sample(jax.random.key(0), dimension, concentration)
    with pytest.raises(error, match=f"`{name}`"):
        lkj_cholesky.log_prob(np.eye(3), dimension, concentration)


def test_bad_key_shape_and_x_name_the_argument():
    with pytest.raises(TypeError, match="`key`"):
        lkj_cholesky.sample(0, 3, 1.0)
    with pytest.raises(TypeError, match="`sample_shape`"):
        lkj_cholesky.sample(jax.random.key(0), 3, 1.0, sample_shape=2.0)
    with pytest.raises(ValueError, match="`x`"):
        lkj_cholesky.log_prob(np.eye(4), 3, 1.0)
    # Inside jit through checkify (log_prob: the same parameter checks as sample, compiled cheaply)
    log_prob = jax.jit(checked(lambda c: lkj_cholesky.log_prob(jnp.eye(3), 3, c)))
    err, _ = log_prob(jnp.asarray(-1.0))
    with pytest.raises(Exception, match="`concentration`"):
        err.throw()
