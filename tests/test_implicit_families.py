"""Family-specific tests for the implicitly reparameterized families: gamma, beta, dirichlet,
student_t (the generic contract layers run from tests/specs/ in tests/test_families.py).

Here: the log-space gamma gradient against an independent reference (and the upstream float32
jax.random.loggamma bug it fixes), the per-sample gradients of the composite families at the
gamma level, dirichlet's distribution and Monte-Carlo gradient layers (scipy has no multivariate
`expect`), student_t's heavy tails and saturation, CDFs, and float32 extremes.

Reference for d log z/da with z ~ Gamma(a, 1) held at fixed CDF, d log z/da = −(∂F/∂a)/(z p(z)),
written without mpmath: with F(z; a) = z^a/Γ(a) · S and S = Σ_k (−z)^k / (k! (a + k)),
    d log z/da = −e^z · (S · (log z − ψ(a)) + ∂S/∂a),   ∂S/∂a = −Σ_k (−z)^k / (k! (a + k)²),
evaluated from log z in float64 for z < 1 (valid where z itself underflows, since z only enters
through e^z and powers of z); for z ≥ 1, ∂F/∂a by central differences of scipy's gammainc.
"""

from __future__ import annotations

import functools

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from scipy import special, stats

from reparam import beta, dirichlet, gamma, student_t

Z_THRESHOLD = 5.0  # MC tolerance in standard errors, as in tests/test_families.py


def per_sample_grads(draw, params, argnums=0):
    """(draw(*params), gradients of sum(draw(*params)) w.r.t. params[argnums]); traceable, for
    use inside a test's own jitted program.

    With parameters broadcast to the sample's shape, the gradients are per-sample gradients.
    """

    def total(*ps):
        z = draw(*ps)
        return jnp.sum(z), z

    (_, z), grads = jax.value_and_grad(total, argnums, has_aux=True)(*params)
    return z, grads


def draw_and_grads(draw, params, argnums=0):
    """`per_sample_grads` as one compiled call. Compiling once per test (rather than sampling and
    differentiating eagerly) keeps it fast: the gamma sampler and its gradient dominate the
    compile time."""
    with jax.debug_key_reuse(False):
        return jax.jit(lambda *ps: per_sample_grads(draw, ps, argnums))(*params)


def log_gamma_grad_reference(a: float, log_z: np.ndarray) -> np.ndarray:
    """d log z/da for z ~ Gamma(a, 1) (module docstring), float64, elementwise over `log_z`."""
    a = float(a)
    log_z = np.asarray(log_z, np.float64)
    z = np.exp(np.minimum(log_z, 0.0))
    k = np.arange(40.0)[:, None]
    terms = np.exp(k * np.log(np.where(z > 0, z, 1.0)) - special.gammaln(k + 1)) * (-1.0) ** k
    terms = np.where((k == 0) | (z > 0), terms, 0.0)  # z = 0: only the k = 0 term
    s = np.sum(terms / (a + k), axis=0)
    ds = -np.sum(terms / (a + k) ** 2, axis=0)
    series = -np.exp(z) * (s * (log_z - special.digamma(a)) + ds)

    big = np.exp(np.maximum(log_z, 0.0))
    step = 1e-6 * a
    d_cdf = (special.gammainc(a + step, big) - special.gammainc(a - step, big)) / (2 * step)
    log_density = (a - 1) * np.log(big) - big - special.gammaln(a)
    finite_difference = -d_cdf / (big * np.exp(log_density))
    return np.where(log_z < 0, series, finite_difference)


def test_reference_agrees_with_scipy_finite_differences_where_both_apply():
    a = np.array([0.05, 0.5, 2.0, 7.0])
    z = np.array([0.01, 0.2, 0.7, 0.9])
    for a_i, z_i in zip(a, z, strict=True):
        step = 1e-6 * a_i
        d_cdf = (special.gammainc(a_i + step, z_i) - special.gammainc(a_i - step, z_i)) / (2 * step)
        expected = -d_cdf / (z_i * stats.gamma(a_i).pdf(z_i))
        np.testing.assert_allclose(
            log_gamma_grad_reference(a_i, np.log([z_i]))[0], expected, rtol=1e-6
        )
    # Where z underflows the series reduces to the asymptotic (ψ(a + 1) − log z)/a.
    log_z = np.array([-800.0, -1e4])
    np.testing.assert_allclose(
        log_gamma_grad_reference(1e-3, log_z),
        (special.digamma(1 + 1e-3) - log_z) / 1e-3,
        rtol=1e-13,
    )


# ---------------------------------------------------------------- gamma: log-space gradient
CONCENTRATIONS = (1e-4, 1e-2, 0.3, 1.0, 4.0, 50.0)


@pytest.mark.parametrize(("dtype", "rtol"), [(np.float64, 1e-7), (np.float32, 2e-5)])
def test_log_sample_gradient_matches_reference(dtype, rtol):
    """Per-sample d log z/da of `log_sample` vs the reference, underflowing draws included."""
    n = 256
    a = np.broadcast_to(np.asarray(CONCENTRATIONS, dtype)[:, None], (len(CONCENTRATIONS), n))
    log_z, grads = draw_and_grads(lambda a: gamma.log_sample(jax.random.key(20), a), (a,))
    log_z, grads = np.asarray(log_z, np.float64), np.asarray(grads, np.float64)
    underflowing = 0
    for row, a_i in enumerate(CONCENTRATIONS):
        reference = log_gamma_grad_reference(np.float64(dtype(a_i)), log_z[row])
        np.testing.assert_allclose(grads[row], reference, rtol=rtol, err_msg=f"a={a_i}")
        underflowing += int(np.sum(np.exp(log_z[row].astype(dtype)) == 0))
    assert underflowing > 0, "the draws should include samples that underflow the dtype"


def _jax_loggamma_draws_and_grads(key, a, n):
    """The upstream gradient, as reported: vmap over sample indices of grad. `a` is broadcast to
    the sample shape first and the dtype is a's, as in log_sample (the draws depend on both)."""

    def draw(a, i):
        return jax.random.loggamma(key, jnp.broadcast_to(a, (n,)), (n,), a.dtype)[i]

    return jax.vmap(jax.value_and_grad(draw), (None, 0))(a, jnp.arange(n))


@functools.partial(jax.jit, static_argnums=2)
def _upstream_and_ours(seed, a, n):
    """One program (the same for every a): upstream's (log z, d log z/da) and log_sample's, from
    one key each, made from the same seed (the two draws differ: different samplers)."""

    ours = per_sample_grads(
        lambda a: gamma.log_sample(jax.random.key(seed), a), (jnp.full((n,), a),)
    )
    return _jax_loggamma_draws_and_grads(jax.random.key(seed), a, n), ours


@pytest.mark.parametrize("a", [1e-2, 1e-4])
def test_float32_small_concentration_fixes_upstream_loggamma_gradient(a):
    """jax.random.loggamma's gradient is wrong in float32 where Gamma(a) underflows (it is taken
    at the smallest normal float and saturates); log_sample's matches the reference there."""
    n = 64
    a32 = np.float32(a)
    (log_z, upstream), (ours_log_z, ours) = _upstream_and_ours(21, a32, n)
    assert log_z.dtype == ours_log_z.dtype == jnp.float32
    log_z, upstream = np.asarray(log_z), np.asarray(upstream)
    ours_log_z, ours = np.asarray(ours_log_z), np.asarray(ours, np.float64)
    # log_sample draws with its own sampler (families/_gamma_sampler.py), not jax's, so the two
    # draws differ; each gradient is checked against the reference at its own draws. (The
    # samplers' distributions are compared with scipy in tests/test_samplers.py.)
    assert np.sum(ours_log_z < np.log(np.finfo(np.float32).tiny)) >= n // 4
    np.testing.assert_allclose(
        ours, log_gamma_grad_reference(np.float64(a32), ours_log_z), rtol=2e-5
    )
    reference = log_gamma_grad_reference(np.float64(a32), log_z)

    # Below the smallest normal float32 (XLA's CPU flushes subnormals to 0), upstream evaluates
    # the gradient at z = tiny: one constant for all such draws, far off for the smaller ones.
    tiny = np.finfo(np.float32).tiny
    underflow = log_z < np.log(tiny)
    assert underflow.sum() >= n // 4
    at_tiny = log_gamma_grad_reference(np.float64(a32), np.log([tiny]))[0]
    np.testing.assert_allclose(upstream[underflow], at_tiny, rtol=1e-4)
    upstream = upstream.astype(np.float64)
    upstream_error = np.abs(upstream / reference - 1)
    assert upstream_error[underflow].max() > 0.5, (
        "upstream bug fixed? update reparam/families/gamma.py"
    )
    np.testing.assert_allclose(upstream[~underflow], reference[~underflow], rtol=1e-3)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_monte_carlo_gradient_of_mean_log_gamma_is_trigamma(dtype):
    """E[log G] = ψ(a), so d/da E[log G] = ψ'(a): a distribution-level check that, in float32 at
    a ≤ 1e-2, most of it comes from draws that underflow the dtype."""
    n = 100_000
    concentrations = np.array([1e-4, 1e-2, 0.5, 5.0])
    a = np.broadcast_to(np.asarray(concentrations, dtype)[:, None], (len(concentrations), n))
    per_sample = jax.jit(jax.grad(lambda a: jnp.sum(gamma.log_sample(jax.random.key(22), a))))(a)
    per_sample = np.asarray(per_sample, np.float64)
    assert np.all(np.isfinite(per_sample))
    for row, a_i in enumerate(concentrations):
        estimate = per_sample[row].mean()
        standard_error = per_sample[row].std(ddof=1) / np.sqrt(n)
        reference = special.polygamma(1, np.float64(dtype(a_i)))
        assert abs(estimate - reference) <= Z_THRESHOLD * standard_error + 1e-5 * reference, (
            f"a={a_i}: MC {estimate:.6g} ± {standard_error:.2g} vs trigamma {reference:.6g}"
        )


def test_log_sample_shapes_and_errors():
    key = jax.random.key(23)
    shape_of = lambda *args: jax.eval_shape(lambda: gamma.log_sample(key, *args))  # no compile
    assert shape_of(jnp.ones(3)).shape == (3,)
    assert shape_of(jnp.ones(3), (2, 3)).shape == (2, 3)
    assert shape_of(np.float32(2.0), (4,)).dtype == jnp.float32
    with pytest.raises(ValueError, match="does not broadcast"):
        gamma.log_sample(key, jnp.ones(3), (2,))
    with pytest.raises(ValueError, match="`concentration` must be > 0"):
        gamma.log_sample(key, -1.0)
    with pytest.raises(TypeError, match="`key`"):
        gamma.log_sample(0, 1.0)


# ---------------------------------------------------------------- composite families, per sample
@pytest.mark.parametrize("family", ["beta", "student_t", "dirichlet"])
def test_composite_gradients_are_the_gamma_implicit_gradients_through_the_map(family):
    """Per-sample gradients of beta (G1/(G1 + G0)), student_t (df through G) and dirichlet
    (G/ΣG) equal the explicit map's chain rule with the gamma reference d log G/da.

    White-box: re-draws the gammas with the modules' documented key use.
    """
    n = 32
    key = jax.random.key(24)
    if family == "beta":
        a1, a0 = np.full((n,), 0.7), np.full((n,), 2.5)

        @jax.jit  # one program: the draws, their per-sample gradients and the gammas redrawn
        def draws(a1, a0):
            draw = lambda a1, a0: beta.sample(key, a1, a0)
            z, grads = per_sample_grads(draw, (a1, a0), (0, 1))
            # beta splits its key into (concentration1's gamma, concentration0's gamma).
            key1, key0 = jax.random.split(key)
            return z, grads, gamma.log_sample(key1, a1), gamma.log_sample(key0, a0)

        with jax.debug_key_reuse(False):
            z, (g1, g0), log_g1, log_g0 = draws(a1, a0)
        z, log_g1, log_g0 = (np.asarray(v) for v in (z, log_g1, log_g0))
        np.testing.assert_allclose(z, special.expit(log_g1 - log_g0), rtol=1e-13)
        np.testing.assert_allclose(
            g1, z * (1 - z) * log_gamma_grad_reference(0.7, log_g1), rtol=1e-6
        )
        np.testing.assert_allclose(
            g0, -z * (1 - z) * log_gamma_grad_reference(2.5, log_g0), rtol=1e-6
        )
    elif family == "student_t":
        df, loc, scale = np.full((n,), 3.0), 0.5, 2.0

        @jax.jit  # one program: the draws, their per-sample gradients and the gammas redrawn
        def draws(df):
            z, grad = per_sample_grads(lambda df: student_t.sample(key, df, loc, scale), (df,))
            # student_t splits its key into (normal, gamma).
            _, key_gamma = jax.random.split(key)
            return z, grad, gamma.log_sample(key_gamma, df / 2)

        with jax.debug_key_reuse(False):
            z, grad, log_g = draws(df)
        log_g = np.asarray(log_g)
        d_log_width = 0.5 * (1 / 3.0 - 0.5 * log_gamma_grad_reference(1.5, log_g))
        np.testing.assert_allclose(grad, (np.asarray(z) - loc) * d_log_width, rtol=1e-6, atol=1e-12)
    else:
        concentration = [0.3, 1.0, 4.0]
        alpha = jnp.broadcast_to(jnp.array(concentration), (n, 3))

        @jax.jit
        def draws_and_jacobian(alpha):
            sample = lambda a: dirichlet.sample(key, a)
            # dirichlet draws all n × K gammas with its key: redraw them the same way.
            return sample(alpha), gamma.log_sample(key, alpha), jax.jacobian(sample)(alpha)

        with jax.debug_key_reuse(False):
            z, log_g, jacobian = (np.asarray(x) for x in draws_and_jacobian(alpha))
        d_log_g = np.stack(
            [log_gamma_grad_reference(a_j, log_g[:, j]) for j, a_j in enumerate(concentration)],
            axis=-1,
        )
        # dz_i/dα_j = z_i (δ_ij − z_j) d log G_j/dα_j
        expected = z[:, :, None] * (np.eye(3)[None] - z[:, None, :]) * d_log_g[:, None, :]
        per_sample = np.einsum("nink->nik", jacobian)  # sample n only depends on row n of α
        np.testing.assert_allclose(per_sample, expected, rtol=1e-6, atol=1e-12)


# ---------------------------------------------------------------- CDFs and sample_and_log_prob
CDF_CASES = {
    "gamma": (
        gamma,
        (np.array([0.3, 2.0]), np.array([1.5, 0.2])),
        lambda a, r: stats.gamma(a, scale=1 / r),
    ),
    "beta": (beta, (np.array([0.3, 2.0]), np.array([4.0, 0.8])), stats.beta),
    "student_t": (
        student_t,
        (np.array([1.5, 30.0]), np.array([-1.0, 2.0]), np.array([0.5, 3.0])),
        stats.t,
    ),
}


@pytest.mark.parametrize("name", list(CDF_CASES))
def test_cdf_matches_scipy_including_outside_the_support(name):
    module, params, scipy_dist = CDF_CASES[name]
    fixed = np.array(
        [[-1.0, -1.0], [1e-12, 1e-12], [0.5, 0.5], [2.0, 2.0], [1e12, 1e12], [-1e12, -1e12]]
    )

    @jax.jit  # one program: the draws, and the CDF at them and at the fixed points
    def draws_and_cdf(params):
        x = jnp.concatenate([module.sample(jax.random.key(25), *params, sample_shape=(50,)), fixed])
        return x, module.cdf(x, *params)

    x, got = (np.asarray(v) for v in draws_and_cdf(params))
    assert x.shape == (56, 2)
    np.testing.assert_array_equal(x[50:], fixed)
    np.testing.assert_allclose(got, scipy_dist(*params).cdf(x), rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize(
    ("module", "params"),
    [
        (gamma, (np.array([1e-3, 0.5, 3.0]), 2.0)),
        (beta, (np.array([1e-3, 0.5, 3.0]), 0.7)),
        (dirichlet, (np.array([[1e-3, 0.5, 3.0], [2.0, 2.0, 2.0]]),)),
    ],
    ids=["gamma", "beta", "dirichlet"],
)
def test_sample_and_log_prob_is_consistent_and_survives_underflow(module, params):
    key = jax.random.key(26)

    @jax.jit
    def draws(params):
        z, log_p = module.sample_and_log_prob(key, *params, sample_shape=(200,))
        # log_prob of the rounded z: the barrier keeps XLA from folding log(exp(·)) away (as if
        # compiled apart; one program instead of two).
        direct = module.log_prob(jax.lax.optimization_barrier(z), *params)
        return z, log_p, module.sample(key, *params, sample_shape=(200,)), direct

    with jax.debug_key_reuse(False):
        z, log_p, z_again, direct = (np.asarray(x) for x in draws(params))
    np.testing.assert_array_equal(z, z_again)
    assert np.all(np.isfinite(log_p)), "log p from log z must stay finite where z rounds to 0"
    representable = np.isfinite(direct)
    assert not representable.all(), "the 1e-3 concentration should produce underflowing draws"
    np.testing.assert_allclose(log_p[representable], direct[representable], rtol=1e-8, atol=1e-8)


# ---------------------------------------------------------------- dirichlet
ALPHAS = np.array([[0.5, 1.0, 2.0], [0.3, 1.5, 4.0], [20.0, 0.05, 7.0]])


@pytest.fixture(scope="module")
def dirichlet_draws():
    """One program for the two tests below (op by op, they compiled some 200 small programs):
    7 draws (key 27) with log_prob at them, mean, variance and entropy; 20 000 draws (key 28)."""

    @jax.jit
    def draws(alphas):
        z = dirichlet.sample(jax.random.key(27), alphas, sample_shape=(7,))
        # log_prob of the rounded z, as if compiled apart: the barrier keeps XLA from folding
        # log(exp(·)) away.
        log_p = dirichlet.log_prob(jax.lax.optimization_barrier(z), alphas)
        moments = tuple(f(alphas) for f in (dirichlet.mean, dirichlet.variance, dirichlet.entropy))
        many = dirichlet.sample(jax.random.key(28), alphas, sample_shape=(20_000,))
        return z, log_p, moments, many

    z, log_p, moments, many = draws(ALPHAS)
    return {
        "z": np.asarray(z),
        "log_p": np.asarray(log_p),
        "moments": [np.asarray(m) for m in moments],
        "many": np.asarray(many),
    }


def test_dirichlet_log_prob_and_moments_match_scipy(dirichlet_draws):
    z = dirichlet_draws["z"]
    assert z.shape == (7, 3, 3)
    np.testing.assert_allclose(z.sum(-1), 1.0, rtol=1e-12)
    log_p = dirichlet_draws["log_p"]
    assert log_p.shape == (7, 3)
    mean, var, entropy = dirichlet_draws["moments"]
    for b, alpha in enumerate(ALPHAS):
        reference = stats.dirichlet(alpha)
        # scipy wants components on the first axis for a batch of points
        np.testing.assert_allclose(log_p[:, b], reference.logpdf(z[:, b].T), rtol=1e-9)
        np.testing.assert_allclose(mean[b], reference.mean(), rtol=1e-12)
        np.testing.assert_allclose(var[b], reference.var(), rtol=1e-12)
        np.testing.assert_allclose(entropy[b], reference.entropy(), rtol=1e-10)


def test_dirichlet_marginals_are_beta(dirichlet_draws):
    """Kolmogorov–Smirnov of each z_i against Beta(α_i, α_0 − α_i), fixed key; p > 1e-4."""
    z = dirichlet_draws["many"]
    assert z.shape == (20_000, 3, 3)
    for b, alpha in enumerate(ALPHAS):
        for i, alpha_i in enumerate(alpha):
            marginal = stats.beta(alpha_i, alpha.sum() - alpha_i)
            p_value = stats.kstest(z[:, b, i], marginal.cdf).pvalue
            assert p_value > 1e-4, f"KS p={p_value:.2g} for α={alpha}, component {i}"


def _dirichlet_mean_closed_form(alpha):
    """scipy.stats.dirichlet.mean: α_i / α_0."""
    return alpha / jnp.sum(alpha)


def _dirichlet_second_moment_closed_form(alpha):
    """E[z_i²] = var + mean², var from scipy.stats.dirichlet.var: α_i(α_0 − α_i)/(α_0²(α_0 + 1))."""
    total = jnp.sum(alpha)
    return alpha * (total - alpha) / (total**2 * (total + 1)) + (alpha / total) ** 2


def test_dirichlet_monte_carlo_gradients_match_closed_forms():
    """d/dα_j of E[z_i] and E[z_i²], per-sample pathwise gradients vs jax.grad of the closed
    forms, within 5 standard errors (10^5 samples, fixed key)."""
    alpha = np.array([0.3, 1.5, 4.0])

    @jax.jit  # one program for the closed forms and their Jacobians (op by op: some 40)
    def closed_forms(alpha):
        forms = (_dirichlet_mean_closed_form, _dirichlet_second_moment_closed_form)
        return [f(alpha) for f in forms], [jax.jacobian(f)(alpha) for f in forms]

    (mean, second_moment), jacobians = closed_forms(alpha)
    np.testing.assert_allclose(mean, stats.dirichlet(alpha).mean())
    np.testing.assert_allclose(second_moment - mean**2, stats.dirichlet(alpha).var())
    n = 100_000
    alphas = np.broadcast_to(alpha, (n, 3))

    @jax.jit
    def per_sample_jacobian(alphas):
        # Row n of z only depends on row n of α, so a JVP with tangent e_j in every row gives
        # every row's dz_n/dα_{n,j}: K forward passes (not 2K reverse ones through the sums).
        def dz_dalpha_j(tangent):
            return jax.jvp(lambda a: dirichlet.sample(jax.random.key(29), a), (alphas,), (tangent,))

        tangents = jnp.broadcast_to(jnp.eye(3)[:, None, :], (3, *alphas.shape))
        z, dz = jax.vmap(dz_dalpha_j)(tangents)  # [j, n, i]: z_{n,i} and dz_{n,i}/dα_{n,j}
        # Per-sample d/dα_j of the moments' summands z_i and z_i²: [2K, n, K_j].
        summands = jnp.concatenate([dz, 2 * z * dz], axis=-1)  # [j, n, 2K]
        return jnp.transpose(summands, (2, 1, 0))

    per_sample = np.asarray(per_sample_jacobian(alphas))
    assert np.all(np.isfinite(per_sample))
    estimate = per_sample.mean(axis=1)
    standard_error = per_sample.std(axis=1, ddof=1) / np.sqrt(n)
    reference = np.concatenate([np.asarray(j) for j in jacobians])
    assert reference.shape == (6, 3)
    tolerance = Z_THRESHOLD * standard_error + 1e-6 * (1 + np.abs(reference))
    assert np.all(np.abs(estimate - reference) <= tolerance), (
        f"MC\n{estimate}\n± {standard_error}\nvs closed form\n{reference}"
    )


_CONCENTRATION = st.floats(np.log(1e-4), np.log(1e4)).map(np.exp)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dirichlet_extremes_have_finite_samples_and_gradients(dtype):
    weights = jnp.arange(1.0, 5.0, dtype=dtype)

    @jax.jit
    def sample_and_grads(alpha):
        def objectives(alpha):
            z = dirichlet.sample(jax.random.key(30), alpha, sample_shape=(64,))
            return jnp.sum(z * weights), jnp.sum(z**2)

        return (
            dirichlet.sample(jax.random.key(30), alpha, sample_shape=(64,)),
            jax.jacrev(objectives)(alpha),
        )

    @given(st.lists(_CONCENTRATION, min_size=4, max_size=4))
    def check(raw):
        alpha = jnp.asarray(raw, dtype)
        with jax.debug_key_reuse(False):
            z, (grad_linear, grad_square) = sample_and_grads(alpha)
        z = np.asarray(z)
        assert np.all(np.isfinite(z)) and np.all(z >= 0), f"bad sample at {raw}"
        np.testing.assert_allclose(z.sum(-1), 1.0, rtol=1e-5 if dtype == np.float32 else 1e-12)
        assert np.all(np.isfinite(np.asarray(grad_linear))), f"non-finite gradient at {raw}"
        assert np.all(np.isfinite(np.asarray(grad_square))), f"non-finite gradient at {raw}"

    check()


def test_dirichlet_shape_errors_name_the_argument():
    with pytest.raises(ValueError, match="`concentration` must have at least 1 dimension"):
        dirichlet.sample(jax.random.key(0), 1.0)
    with pytest.raises(ValueError, match=r"`x` must have shape \(\.\.\., 3\)"):
        dirichlet.log_prob(jnp.ones(4) / 4, jnp.ones(3))
    with pytest.raises(ValueError, match=r"`x` must have shape \(\.\.\., 3\).*got shape \(\)"):
        dirichlet.log_prob(0.5, jnp.ones(3))


# ---------------------------------------------------------------- student_t
def test_student_t_heavy_tail_monte_carlo_gradients():
    """df = 1.3 (no variance): d/dθ E[exp(−z²)] for all three parameters at once, per-sample
    pathwise gradients vs central differences of scipy quadrature, within 5 standard errors."""
    params = (1.3, 0.3, 1.2)
    n = 200_000

    @jax.jit
    def per_sample(df, loc, scale):
        def total(df, loc, scale):
            return jnp.sum(jnp.exp(-(student_t.sample(jax.random.key(31), df, loc, scale) ** 2)))

        return jax.grad(total, (0, 1, 2))(df, loc, scale)

    grads = per_sample(*(np.full((n,), p) for p in params))
    for index, grad in enumerate(grads):
        grad = np.asarray(grad)
        assert np.all(np.isfinite(grad))
        step = 1e-4 * max(1.0, abs(params[index]))
        up, down = list(params), list(params)
        up[index] += step
        down[index] -= step
        expect = lambda p: stats.t(*p).expect(
            lambda z: np.exp(-(z**2)), epsabs=1e-13, epsrel=1e-12, limit=500
        )
        reference = (expect(up) - expect(down)) / (2 * step)
        standard_error = grad.std(ddof=1) / np.sqrt(n)
        tolerance = Z_THRESHOLD * standard_error + 1e-6 * (1 + abs(reference))
        assert abs(grad.mean() - reference) <= tolerance, (
            f"{student_t.PARAMS[index]}: MC {grad.mean():.6g} ± {standard_error:.2g} "
            f"vs quadrature {reference:.6g}"
        )


@pytest.mark.parametrize(("dtype", "df"), [(np.float64, 1e-4), (np.float32, 0.05)])
def test_student_t_saturates_beyond_the_float_range(dtype, df):
    """Tiny df: many draws exceed the float range; they saturate at loc ± max·2^-24 with
    gradient 1 in loc and 0 in df and scale, the rest keep exact values and finite gradients."""
    n = 512
    params = (jnp.full((n,), df, dtype), jnp.full((n,), 2.0, dtype), jnp.full((n,), 3.0, dtype))
    z, grads = draw_and_grads(
        lambda *p: student_t.sample(jax.random.key(32), *p), params, (0, 1, 2)
    )
    z, grads = np.asarray(z), [np.asarray(g) for g in grads]
    limit = np.finfo(dtype).max * np.float64(2.0**-24)
    saturated = np.abs(z.astype(np.float64) - 2.0) >= limit * (1 - 1e-6)
    assert 0 < saturated.sum() < n, "expected both saturated and ordinary draws"
    assert np.all(np.isfinite(z))
    for grad in grads:
        assert np.all(np.isfinite(grad))
    np.testing.assert_array_equal(grads[1], 1.0)
    np.testing.assert_array_equal(grads[0][saturated], 0.0)
    np.testing.assert_array_equal(grads[2][saturated], 0.0)
    # (z − loc)/scale from z rounded to the dtype: allow z's rounding error, which dominates for
    # draws close to loc (one of the new sampler's float32 draws: z − loc ≈ 3e-3).
    ordinary = z[~saturated].astype(np.float64)
    expected = (ordinary - 2.0) / 3.0
    rounding = np.spacing(np.abs(z[~saturated])).astype(np.float64) / 3.0
    error = np.abs(grads[2][~saturated] - expected)
    assert np.all(error <= 1e-5 * np.abs(expected) + rounding), np.max(error / rounding)


def test_student_t_moments_follow_scipy_where_undefined():
    df = np.array([0.5, 1.0, 1.5, 2.0, 2.5])

    @jax.jit  # one program (op by op: some 30)
    def moments(df):
        grads = jax.grad(lambda d, s: jnp.sum(student_t.variance(d, 0.0, s)), (0, 1))(df, 2.0)
        return student_t.mean(df, 1.0, 2.0), student_t.variance(df, 1.0, 2.0), grads

    mean, variance, grads = moments(df)
    # The mean is undefined for df ≤ 1: NaN (as TFP), where scipy says inf.
    np.testing.assert_allclose(
        np.asarray(mean), np.where(df > 1, stats.t(df, 1.0, 2.0).mean(), np.nan)
    )
    np.testing.assert_allclose(np.asarray(variance), stats.t(df, 1.0, 2.0).var())
    assert all(np.all(np.isfinite(np.asarray(g))) for g in grads)


# ---------------------------------------------------------------- float32 extremes, all four
F32_EXTREMES = {
    "gamma": (gamma, st.tuples(_CONCENTRATION, st.floats(np.log(1e-6), np.log(1e6)).map(np.exp))),
    "beta": (beta, st.tuples(_CONCENTRATION, _CONCENTRATION)),
    "student_t": (
        student_t,
        st.tuples(
            _CONCENTRATION, st.floats(-1e6, 1e6), st.floats(np.log(1e-6), np.log(1e6)).map(np.exp)
        ),
    ),
}


@pytest.mark.parametrize("name", list(F32_EXTREMES))
def test_float32_extremes_have_finite_samples_and_gradients(name):
    """The generic extremes test runs in float64; the underflow problems are worst in float32."""
    module, strategy = F32_EXTREMES[name]

    @jax.jit
    def sample_and_grad(params):
        draw = lambda ps: module.sample(jax.random.key(33), *ps, sample_shape=(64,))
        return draw(params), jax.grad(lambda ps: jnp.sum(draw(ps)))(params)

    @given(strategy)
    def check(raw):
        params = tuple(jnp.float32(p) for p in raw)
        with jax.debug_key_reuse(False):
            z, grads = sample_and_grad(params)
        assert np.all(np.isfinite(np.asarray(z))), f"non-finite sample at {raw}"
        for i, g in enumerate(grads):
            assert np.all(np.isfinite(np.asarray(g))), f"non-finite d/d{module.PARAMS[i]} at {raw}"

    check()
