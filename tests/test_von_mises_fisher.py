"""von_mises_fisher beyond the generic contract (tests/specs/von_mises_fisher.py): log-Bessel and
A_d against scipy, log_prob/entropy against scipy.stats.vonmises_fisher, the marginal w = ⟨z, μ⟩
against its CDF (KS), the implicit dw/dκ against finite differences of the CDF, Monte-Carlo
gradients of E[f(w)] against quadrature and against the score-function estimator, gradients in
loc against the closed form, entropy and KL against Monte Carlo, and κ from 1e-4 to 1e5.

Compiled programs are few: one per dimension d for all the w-checks (κ batched in one array),
one per d for the full-sample checks; every reference is scipy quadrature or a closed form.
"""

from __future__ import annotations

import functools
import math
import warnings

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import example, given, settings
from scipy import integrate, special, stats

from reparam import von_mises_fisher as vmf

Z_THRESHOLD = 5.0  # |MC − reference| ≤ 5 standard errors (fixed keys: deterministic)
KAPPAS = np.array([1e-2, 1.0, 1e2, 1e4])
NUM_W = 20_000  # draws of w per κ


# ------------------------------------------------------------------ references (scipy, numpy)
def _quad(f, a, b, points=None):
    inside = [p for p in (points or []) if a < p < b]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        return integrate.quad(f, a, b, points=inside or None, epsabs=0, epsrel=1e-13, limit=500)[0]


def _theta_max(kappa: float, d: int) -> float:
    """Beyond this θ the density of Θ = arccos w is below e^(−60) of its peak."""
    return min(math.pi, 2.0 * (math.sqrt(d) + 11.0) / math.sqrt(kappa))


def _mode(kappa: float, d: int) -> float:
    c = (math.hypot(d - 2, 2 * kappa) - (d - 2)) / (2 * kappa)
    return math.acos(min(1.0, c))


def _g(theta, kappa: float, d: int):
    """Unnormalized density of Θ: e^(κ(cos θ − 1)) sin^(d−2) θ."""
    return np.exp(-2 * kappa * np.sin(0.5 * theta) ** 2) * np.sin(theta) ** (d - 2)


def expectation(h, kappa: float, d: int) -> float:
    """E[h(S)] for S = 1 − w = 2 sin²(Θ/2), by scipy quadrature in θ."""
    end, mode = _theta_max(kappa, d), [_mode(kappa, d)]
    total = _quad(lambda t: _g(t, kappa, d), 0, end, mode)
    return _quad(lambda t: h(2 * np.sin(0.5 * t) ** 2) * _g(t, kappa, d), 0, end, mode) / total


def numeric_cdf_s(s: np.ndarray, kappa: float, d: int, panels: int = 160) -> np.ndarray:
    """P(S ≤ s), vectorized: [0, θ_max] is cut at every θ_s and into `panels` equal steps, each
    piece integrated by an 8-node numpy Gauss–Legendre rule and the pieces summed in order.

    One pass for all the s of a KS test (8 nodes per piece), where a rule on each [0, θ_s]
    would evaluate the density (nodes × len(s)) times; as accurate, or more (no piece is longer
    than θ_max/160): checked against the d = 3 closed form and scipy's quad below.
    """
    x, w = np.polynomial.legendre.leggauss(8)
    x, w = 0.5 * (x + 1), 0.5 * w
    end = _theta_max(kappa, d)
    upper = np.minimum(2 * np.arcsin(np.sqrt(np.clip(s / 2, 0, 1))), end)
    edges, index = np.unique(
        np.concatenate([upper.ravel(), np.linspace(0, end, panels + 1)]), return_inverse=True
    )
    width = np.diff(edges)
    pieces = width * (_g(edges[:-1, None] + width[:, None] * x, kappa, d) @ w)
    cumulative = np.concatenate([[0.0], np.cumsum(pieces)])
    return np.clip(cumulative[index[: upper.size]] / cumulative[-1], 0, 1).reshape(np.shape(s))


def cdf_s(s: np.ndarray, kappa: float, d: int) -> np.ndarray:
    """P(S ≤ s): closed form on S² (d = 3), (1 − e^(−κs)) / (1 − e^(−2κ)); else numeric."""
    if d == 3:
        return np.expm1(-kappa * s) / np.expm1(-2 * kappa)
    return numeric_cdf_s(s, kappa, d)


def bessel_ratio(kappa, d):
    """A_d(κ) = I_(d/2)(κ) / I_(d/2−1)(κ) from scipy."""
    return special.ive(d / 2, kappa) / special.ive(d / 2 - 1, kappa)


def _sphere(d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=d)
    return x / np.linalg.norm(x)


# ------------------------------------------------------------------ log-Bessel, A_d, scipy
def test_log_bessel_and_mean_resultant_length_match_scipy():
    orders = np.array([0.0, 0.5, 1.0, 1.5, 4.0, 4.5, 9.5, 24.0, 49.0])
    kappas = np.logspace(-4, 5, 28)
    nu, kappa = (a.ravel() for a in np.meshgrid(orders, kappas, indexing="ij"))
    with np.errstate(divide="ignore"):
        reference = np.log(special.ive(nu, kappa))
    ok = np.isfinite(reference)  # scipy underflows to 0 for ν = 49 at κ ≤ 1e-4·…
    assert ok.mean() > 0.95
    ratio = bessel_ratio(kappa, 2 * nu + 2)

    @jax.jit  # one program for both dtypes
    def both(n, k):
        return [
            (vmf.log_bessel_ive(n, k), vmf._one_minus_mean_cos(k, 2 * n))
            for n, k in ((n, k), (n.astype(jnp.float32), k.astype(jnp.float32)))
        ]

    results = both(jnp.asarray(nu), jnp.asarray(kappa))
    for (dtype, rtol), (log_ive, one_minus_ratio) in zip(
        ((np.float64, 1e-13), (np.float32, 1e-5)), results, strict=True
    ):
        assert log_ive.dtype == one_minus_ratio.dtype == dtype
        log_ive, one_minus_ratio = np.asarray(log_ive, np.float64), np.asarray(one_minus_ratio)
        np.testing.assert_allclose(
            log_ive[ok], reference[ok], rtol=rtol, atol=rtol * np.abs(reference[ok]).max() / 1e3
        )
        # 1 − A_d, relative: it is ≈ (d − 1)/(2κ) at large κ, where 1 − A from scipy cancels.
        trusted = ratio < 0.99
        np.testing.assert_allclose(one_minus_ratio[trusted], 1 - ratio[trusted], rtol=50 * rtol)


@pytest.mark.parametrize("d", [2, 3, 10, 100])
def test_log_prob_and_entropy_match_scipy(d):
    loc = _sphere(d, d)
    kappas = np.array([1e-2, 1.0, 30.0, 1e3])
    reference = stats.vonmises_fisher(loc, 1.0)
    points = reference.rvs(4, random_state=np.random.default_rng(d))  # (4, d) unit vectors
    points = np.concatenate([points, loc[None], -loc[None]])
    log_p, entropy = jax.jit(lambda x, k: (vmf.log_prob(x[:, None], loc, k), vmf.entropy(loc, k)))(
        points, kappas
    )
    for j, kappa in enumerate(kappas):
        dist = stats.vonmises_fisher(loc, kappa)
        np.testing.assert_allclose(log_p[:, j], dist.logpdf(points), rtol=1e-11, atol=1e-11)
        np.testing.assert_allclose(entropy[j], dist.entropy(), rtol=1e-11, atol=1e-11)


# ------------------------------------------------------------------ the marginal w, a program per d
def _s_and_ds(key, kappas, d: int):
    """(s, ds/dκ), each (K, NUM_W), s = 1 − ⟨z, μ⟩, for κ of shape (K,)."""

    def s_of(k):
        return vmf._one_minus_w(key, k[:, None], d, (k.shape[0], NUM_W))

    return jax.jvp(s_of, (kappas,), (jnp.ones_like(kappas),))


@functools.cache  # one compiled program per d, shared by the tests below
def _w_draws(d: int):
    """jit: (key, κ of shape (K,)) -> (s, ds/dκ), each (K, NUM_W), s = 1 − ⟨z, μ⟩."""
    return jax.jit(functools.partial(_s_and_ds, d=d))


W_CASES = {}


def w_draws(d: int):
    """(s, ds/dκ) for KAPPAS at dimension d, drawn once per session (fixed key)."""
    if d not in W_CASES:
        s, ds = _w_draws(d)(jax.random.key(100 + d), jnp.asarray(KAPPAS))
        W_CASES[d] = np.asarray(s), np.asarray(ds)
    return W_CASES[d]


@pytest.mark.parametrize("d", [2, 3, 10, 100])
def test_w_samples_follow_the_marginal_cdf(d):
    s, _ = w_draws(d)
    assert np.all((s >= 0) & (s <= 2))
    for j, kappa in enumerate(KAPPAS):
        result = stats.kstest(s[j], lambda x, k=kappa: cdf_s(x, k, d))
        assert result.pvalue > 1e-3, (d, kappa, result)


def test_numeric_cdf_matches_closed_form_and_quadrature():
    """The KS test's numeric CDF equals the d = 3 closed form and scipy's quad elsewhere."""
    for kappa in KAPPAS:
        s = np.linspace(0, 2, 41) * min(1.0, 30 / kappa)
        np.testing.assert_allclose(numeric_cdf_s(s, kappa, 3), cdf_s(s, kappa, 3), atol=1e-12)
    for d, kappa, s in [(10, 1.0, 0.7), (100, 1e2, 0.5), (2, 1e4, 3e-5), (2, 1e-2, 1.9)]:
        end = _theta_max(kappa, d)
        theta = 2 * math.asin(math.sqrt(s / 2))
        quad = _quad(lambda t: _g(t, kappa, d), 0, theta) / _quad(lambda t: _g(t, kappa, d), 0, end)
        np.testing.assert_allclose(numeric_cdf_s(np.array([s]), kappa, d), quad, rtol=1e-10)


def _test_functions(kappa):
    """f(w) and f'(w) as functions of s = 1 − w: w itself and a bounded one scaled to κ."""
    return {
        "w": (lambda s: 1 - s, lambda s: np.ones_like(s)),
        "1/(1+κs)": (lambda s: 1 / (1 + kappa * s), lambda s: kappa / (1 + kappa * s) ** 2),
    }


@pytest.mark.parametrize("d", [3, 10, 100])
def test_pathwise_gradient_of_expectations_matches_quadrature(d):
    """d/dκ E[f(w)] = E[f(w)(w − A_d)] = E[f (m − S)] by quadrature, vs the mean of f'(w) dw/dκ;
    at d = 3 and 10 also vs the score-function estimate f(w)(m − S) on the same draws."""
    s, ds = w_draws(d)
    for j, kappa in enumerate(KAPPAS):
        m = expectation(lambda x: x, kappa, d)
        for name, (f, df) in _test_functions(kappa).items():
            reference = expectation(lambda x, f=f, m=m: f(x) * (m - x), kappa, d)
            pathwise = df(s[j]) * -ds[j]  # df/dκ = f'(w) dw/dκ, dw/dκ = −ds/dκ
            error = abs(pathwise.mean() - reference)
            se = pathwise.std() / math.sqrt(NUM_W)
            assert error <= Z_THRESHOLD * se, (d, kappa, name, pathwise.mean(), reference, se)
            if d in (3, 10):
                score = f(s[j]) * (m - s[j])
                difference = pathwise - score
                se = difference.std() / math.sqrt(NUM_W)
                assert abs(difference.mean()) <= Z_THRESHOLD * se, (d, kappa, name, "score")


@pytest.mark.parametrize("d", [2, 3, 10, 100])
def test_implicit_derivative_matches_finite_differences_of_the_cdf(d):
    """ds/dκ = −(∂P(S ≤ s)/∂κ) / p_S(s) at fixed s, the CDF by scipy quad, central differences;
    in float64 and float32 (the same program shape, κ from 1e-2 to 1e4)."""
    cases = []
    for kappa in KAPPAS:
        scale = min(math.pi / 2, 2 * math.sqrt(d / kappa))
        for c in (0.1, 0.5, 0.9):
            cases.append((kappa, 2 * math.sin(0.5 * c * scale) ** 2))
    reference = []
    for kappa, s in cases:
        theta = 2 * math.asin(math.sqrt(s / 2))
        mode = _mode(kappa, d)

        def log_side(k, theta=theta, mode=mode):
            """log of the smaller side, P(Θ ≤ θ) below the mode, P(Θ > θ) above: no 1 − tiny."""
            end = _theta_max(k, d)
            part = _quad(lambda t: _g(t, k, d), *((0, theta) if theta <= mode else (theta, end)))
            return math.log(part) - math.log(_quad(lambda t: _g(t, k, d), 0, end, [mode]))

        h = 1e-4 * kappa
        log_density = math.log(_g(theta, kappa, d)) - math.log(
            _quad(lambda t: _g(t, kappa, d), 0, _theta_max(kappa, d), [mode])
        )
        # ∂P(Θ ≤ θ)/∂κ = ±P(side) ∂log P(side)/∂κ; dθ/dκ = −(∂P(Θ ≤ θ)/∂κ)/p(θ).
        side_over_density = math.exp(log_side(kappa) - log_density)
        derivative = (log_side(kappa + h) - log_side(kappa - h)) / (2 * h)
        dtheta = -side_over_density * derivative * (1 if theta <= mode else -1)
        reference.append(math.sin(theta) * dtheta)  # ds/dκ = sin θ dθ/dκ
    kappas, points = (np.array(c) for c in zip(*cases, strict=True))

    @jax.jit  # one program for both dtypes
    def both(s, k):
        low = (s.astype(jnp.float32), k.astype(jnp.float32))
        return vmf._ds_dconcentration(s, k, d), vmf._ds_dconcentration(*low, d)

    for (dtype, rtol), mine in zip(
        ((np.float64, 1e-6), (np.float32, 1e-4)), both(points, kappas), strict=True
    ):
        assert mine.dtype == dtype
        np.testing.assert_allclose(np.asarray(mine, np.float64), reference, rtol=rtol)


def test_implicit_derivative_equals_the_closed_form_on_the_2_sphere():
    """d = 3: s(u; κ) = −log(u + (1 − u)e^(−2κ))/κ has ds/dκ and d²s/dκ² by autodiff; the
    quadrature's implicit rule must agree at every u, κ (float64: 3e-12 and 3e-10 measured)."""
    u = np.linspace(0.005, 0.995, 23)
    kappa = np.repeat(np.array([1e-2, 0.3, 1.0, 1e2, 1e4]), u.size)
    u = np.tile(u, 5)

    def s_closed(k, u):
        return -jnp.log1p((1 - u) * jnp.expm1(-2 * k)) / k

    # Second order: the custom JVP differentiates its own rule (s depends on κ inside it too).
    def second(f):
        return jax.vmap(jax.grad(jax.grad(f)))

    @jax.jit  # one program for the first and second derivatives, closed and implicit
    def derivatives(kappa, u):
        s, ds = jax.jvp(lambda k: s_closed(k, u), (kappa,), (jnp.ones_like(kappa),))
        mine = vmf._ds_dconcentration(s, kappa, 3)
        closed = second(s_closed)(kappa, u)
        implicit = second(lambda k, s: vmf._implicit_s(s, k, 3))(kappa, s)
        return ds, mine, closed, implicit

    ds, mine, closed, implicit = (np.asarray(v) for v in derivatives(kappa, u))
    np.testing.assert_allclose(mine, ds, rtol=1e-10)
    np.testing.assert_allclose(implicit, closed, rtol=1e-8)


# ------------------------------------------------------------------ full samples, a program per d
NUM_Z = 100_000
Z_KAPPAS = np.array([1e-2, 2.0, 1e3])


@pytest.mark.parametrize("d", [3, 10])
def test_full_samples_unit_norm_log_prob_entropy_kl_and_gradients(d):
    """z on the sphere; sample_and_log_prob == log_prob(z); entropy and KL vs Monte Carlo;
    ∂/∂x and ∂/∂κ of E[⟨z, a⟩] vs A_d(κ)⟨x/|x|, a⟩ (loc = x/|x|), per-sample via jacfwd."""
    x0 = 1.3 * _sphere(d, 1)
    a = _sphere(d, 2)

    @jax.jit  # one program: draws, gradients, log_prob, entropy and KL
    def run(key, x, kappas):
        def projections(x, kappas):
            z, log_p = vmf.sample_and_log_prob(key, x / jnp.linalg.norm(x), kappas, (NUM_Z,))
            return z @ a, (z, log_p)

        # Forward mode along each coordinate of x (the Jacobian in x), and along κ with a
        # tangent of ones: sample j depends on κ_j only, so that column is ∂⟨z_j, a⟩/∂κ_j, the
        # diagonal of the Jacobian in κ (its off-diagonal zeros cost a forward pass each).
        tangents = (
            jnp.concatenate([jnp.eye(d), jnp.zeros((1, d))]),
            jnp.concatenate([jnp.zeros((d, 3)), jnp.ones((1, 3))]),
        )
        _, derivative, (z, log_p) = jax.vmap(
            lambda tx, tk: jax.jvp(projections, (x, kappas), (tx, tk), has_aux=True),
            out_axes=(None, 0, None),
        )(*tangents)
        mu = x / jnp.linalg.norm(x)
        again = vmf.log_prob(z, mu, kappas)
        entropy, kl = vmf.entropy(mu, kappas), vmf.kl_to_uniform(mu, kappas)
        return z, log_p, jnp.moveaxis(derivative[:d], 0, -1), derivative[d], again, entropy, kl

    outputs = run(jax.random.key(200 + d), jnp.asarray(x0), jnp.asarray(Z_KAPPAS))
    z, log_p, dx, dk, again, entropy, kl = (np.asarray(v) for v in outputs)
    assert z.shape == (NUM_Z, 3, d)
    assert dx.shape == (NUM_Z, 3, d) and dk.shape == (NUM_Z, 3)
    np.testing.assert_allclose(np.linalg.norm(z, axis=-1), 1.0, atol=1e-13)
    mu = x0 / np.linalg.norm(x0)
    np.testing.assert_allclose(log_p, again, rtol=1e-9, atol=1e-9)
    log_area = math.log(2) + 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d)
    np.testing.assert_allclose(kl, log_area - entropy, rtol=1e-12)
    A = bessel_ratio(Z_KAPPAS, d)
    derivative_A = 1 - A**2 - (d - 1) * A / Z_KAPPAS  # A' for the ratio I_(ν+1)/I_ν, ν = d/2 − 1
    for j, kappa in enumerate(Z_KAPPAS):
        se = log_p[:, j].std() / math.sqrt(NUM_Z)
        assert abs(-log_p[:, j].mean() - entropy[j]) <= Z_THRESHOLD * se, (d, kappa, "entropy")
        assert abs(log_p[:, j].mean() + log_area - kl[j]) <= Z_THRESHOLD * se, (d, kappa, "kl")
        # ∂/∂x A⟨x/|x|, a⟩ = A (a − μ⟨μ, a⟩)/|x|, coordinate by coordinate.
        expected = A[j] * (a - mu * (mu @ a)) / np.linalg.norm(x0)
        se = dx[:, j].std(axis=0) / math.sqrt(NUM_Z)
        error = np.abs(dx[:, j].mean(axis=0) - expected)
        assert np.all(error <= Z_THRESHOLD * se + 1e-15), (d, kappa, "loc", error / se)
        se = dk[:, j].std() / math.sqrt(NUM_Z)
        error = abs(dk[:, j].mean() - derivative_A[j] * (mu @ a))
        assert error <= Z_THRESHOLD * se, (d, kappa, "concentration", error / se)


# ------------------------------------------------------------------ extremes, float32, bad input
@pytest.mark.parametrize("d", [2, 10, 100])
def test_extreme_concentrations_give_finite_draws_and_gradients(d):
    """κ log-uniform over 1e-4 .. 1e5 (hypothesis): s ∈ [0, 2] and ds/dκ finite; the compiled
    program is the one of the other w-tests (same shapes)."""
    draws = _w_draws(d)

    @settings(max_examples=6)  # each example draws 4 × NUM_W: few examples, the ends explicit
    @example([np.log(1e-4), np.log(1e5), np.log(1e-4), np.log(1e5)])
    @given(st.lists(st.floats(np.log(1e-4), np.log(1e5)), min_size=4, max_size=4))
    def check(log_kappas):
        s, ds = draws(jax.random.key(7), jnp.exp(jnp.asarray(log_kappas)))
        s, ds = np.asarray(s), np.asarray(ds)
        assert np.all((s >= 0) & (s <= 2)), log_kappas
        assert np.all(np.isfinite(ds)), log_kappas

    check()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_concentrations_up_to_the_largest_float_never_hang(dtype):
    """Near the largest float b ≈ (d − 1)/(4κ) was flushed to 0 and Wood's test never accepted
    (an endless loop): now 2κs ≈ χ²(d − 1) (mean d − 1) wherever s is a normal float, and s is
    finite (at worst 0, below the normal range) at the largest float."""
    huge = 1e36 if dtype == np.float32 else 1e300
    kappa = np.asarray([[np.finfo(dtype).max], [huge]], dtype) * np.ones((1, 4000), dtype)
    # One program; each d draws with its own key(11), as in two calls.
    both = jax.jit(lambda kappa: [vmf._wood(jax.random.key(11), kappa, d) for d in (3, 5)])
    for d, s in zip((3, 5), both(kappa), strict=True):
        assert s.dtype == dtype
        s = np.asarray(s, np.float64)
        assert np.all(np.isfinite(s) & (s >= 0)), d
        scaled = 2 * huge * s[1]
        assert abs(scaled.mean() - (d - 1)) < 5 * scaled.std() / math.sqrt(scaled.size), d


def test_bad_input_names_the_argument():
    e1 = np.array([1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="`loc` must be unit vectors"):
        vmf.entropy(np.array([3.0, 4.0, 0.0]), 1.0)
    with pytest.raises(
        ValueError, match=r"reparam\.von_mises_fisher\.kl_to_uniform: `concentration`"
    ):
        vmf.kl_to_uniform(e1, -2.0)
    with pytest.raises(ValueError, match="`loc` must have shape"):
        vmf.mean(np.array([1.0]), 1.0)
    with pytest.raises(ValueError, match="`x` must have shape"):
        vmf.log_prob(np.ones((2, 4)) / 2, e1, 1.0)
    with pytest.raises(ValueError, match="do not broadcast"):
        vmf.sample(jax.random.key(0), np.tile(e1, (2, 1)), np.ones(3))


def test_float32_draws_follow_the_cdf_with_float64_gradients():
    """Wood's sampler and the implicit rule in float32 (d = 10): KS against the float64 CDF, and
    ds/dκ equal to the float64 rule at the same draws (κ from 1e-2 to 1e4)."""

    @jax.jit  # one program: the float32 draws and the float64 rule at them
    def draws(key, kappas):
        s, ds = _s_and_ds(key, kappas.astype(jnp.float32), 10)
        return s, ds, vmf._ds_dconcentration(s.astype(kappas.dtype), kappas[:, None], 10)

    s, ds, exact = draws(jax.random.key(300), jnp.asarray(KAPPAS))
    assert s.dtype == ds.dtype == jnp.float32 and exact.dtype == jnp.float64
    s64 = np.asarray(s, np.float64)
    np.testing.assert_allclose(np.asarray(ds, np.float64), np.asarray(exact), rtol=2e-4)
    for j, kappa in enumerate(KAPPAS):
        assert stats.kstest(s64[j], lambda x, k=kappa: cdf_s(x, k, 10)).pvalue > 1e-3, kappa
