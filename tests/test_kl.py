"""reparam.kl: closed forms against Monte Carlo with scipy, direct formulas, gradients, dispatch.

References are independent of reparam's samplers: the Monte-Carlo estimate of E_p[log p − log q]
draws from scipy.stats with a fixed numpy seed and uses scipy's log-densities; tolerances are 5
standard errors of that estimate (deterministic, since the seeds are fixed). Tests that need a
family module (reparam.<name>, written separately) skip until it exists.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy import integrate, stats

from reparam import checks, normal
from reparam.families import kl

Z_THRESHOLD = 5.0
MC_SAMPLES = 100_000


# ---------------------------------------------------------------- reference distributions
def _scipy(make: Callable[..., Any]):
    """(sample, logpdf) from a constructor of a frozen scipy distribution."""

    def sample(params, n, rng):
        return make(*params).rvs(n, random_state=rng)

    def logpdf(x, params):
        return make(*params).logpdf(x)

    return sample, logpdf


def _tanh_normal():
    def sample(params, n, rng):
        return np.tanh(stats.norm(*params).rvs(n, random_state=rng))

    def logpdf(x, params):
        return stats.norm(*params).logpdf(np.arctanh(x)) - np.log1p(-(x**2))

    return sample, logpdf


def _dirichlet():
    def sample(params, n, rng):
        return stats.dirichlet(params[0]).rvs(n, random_state=rng)

    def logpdf(x, params):
        return stats.dirichlet(params[0]).logpdf(x.T)

    return sample, logpdf


def _mvn():
    def sample(params, n, rng):
        loc, tril = params
        return stats.multivariate_normal(loc, tril @ tril.T).rvs(n, random_state=rng)

    def logpdf(x, params):
        loc, tril = params
        return stats.multivariate_normal(loc, tril @ tril.T).logpdf(x)

    return sample, logpdf


def _low_rank_vs_diagonal():
    """p: N(loc, W Wᵀ + diag(d²)); q: independent normals (scipy.stats.norm summed)."""

    def sample(params, n, rng):
        loc, factor, diag = params
        cov = factor @ factor.T + np.diag(diag**2)
        return stats.multivariate_normal(loc, cov).rvs(n, random_state=rng)

    def logpdf_p(x, params):
        loc, factor, diag = params
        return stats.multivariate_normal(loc, factor @ factor.T + np.diag(diag**2)).logpdf(x)

    def logpdf_q(x, params):
        loc, scale = params
        return stats.norm(loc, scale).logpdf(x).sum(axis=-1)

    return sample, logpdf_p, logpdf_q


@dataclass(frozen=True)
class Case:
    """A closed form, the family modules it is registered for, and reference pairs (p, q)."""

    name: str
    fn: Callable[..., jax.Array]
    p_family: str
    q_family: str
    pairs: tuple[tuple[tuple, tuple], ...]
    sample: Callable
    logpdf_p: Callable
    logpdf_q: Callable | None = None  # None: same as logpdf_p


def _case(name, fn, family, pairs, reference, q_family=None):
    sample, logpdf = reference
    return Case(name, fn, family, q_family or family, pairs, sample, logpdf)


_TRIL_P = np.array([[1.2, 0.0, 0.0], [0.3, 0.8, 0.0], [-0.5, 0.4, 1.5]])
_TRIL_Q = np.array([[0.9, 0.0, 0.0], [-0.2, 1.4, 0.0], [0.1, 0.6, 0.7]])
_FACTOR = np.array([[0.8, -0.3], [0.5, 0.9], [-0.4, 0.2]])

CASES = [
    _case(
        "normal_normal",
        kl.normal_normal,
        "normal",
        (((0.3, 1.2), (-0.5, 0.7)), ((2.0, 0.5), (0.0, 3.0))),
        _scipy(lambda loc, scale: stats.norm(loc, scale)),
    ),
    _case(
        "lognormal_lognormal",
        kl.lognormal_lognormal,
        "lognormal",
        (((0.3, 0.6), (-0.2, 0.9)), ((1.0, 0.4), (0.5, 0.3))),
        _scipy(lambda loc, scale: stats.lognorm(s=scale, scale=np.exp(loc))),
    ),
    _case(
        "tanh_normal_tanh_normal",
        kl.tanh_normal_tanh_normal,
        "tanh_normal",
        (((0.3, 0.6), (-0.2, 0.9)), ((-1.0, 0.4), (0.5, 0.3))),
        _tanh_normal(),
    ),
    _case(
        "laplace_laplace",
        kl.laplace_laplace,
        "laplace",
        (((0.3, 1.2), (-0.5, 0.7)), ((2.0, 0.5), (0.0, 3.0))),
        _scipy(lambda loc, scale: stats.laplace(loc, scale)),
    ),
    _case(
        "gumbel_gumbel",
        kl.gumbel_gumbel,
        "gumbel",
        (((0.3, 1.2), (-0.5, 0.7)), ((2.0, 0.5), (0.0, 3.0))),
        _scipy(lambda loc, scale: stats.gumbel_r(loc, scale)),
    ),
    _case(
        "cauchy_cauchy",
        kl.cauchy_cauchy,
        "cauchy",
        (((0.3, 1.2), (-0.5, 0.7)), ((2.0, 0.5), (0.0, 3.0))),
        _scipy(lambda loc, scale: stats.cauchy(loc, scale)),
    ),
    _case(
        "exponential_exponential",
        kl.exponential_exponential,
        "exponential",
        (((1.3,), (0.4,)), ((0.2,), (5.0,))),
        _scipy(lambda rate: stats.expon(scale=1.0 / rate)),
    ),
    _case(
        "gamma_gamma",
        kl.gamma_gamma,
        "gamma",
        (((2.5, 1.3), (1.5, 0.8)), ((0.7, 2.0), (3.0, 1.0))),
        _scipy(lambda concentration, rate: stats.gamma(concentration, scale=1.0 / rate)),
    ),
    _case(
        "weibull_weibull",
        kl.weibull_weibull,
        "weibull",
        (((1.5, 2.0), (1.0, 1.3)), ((0.7, 0.8), (2.0, 3.0))),
        _scipy(lambda scale, concentration: stats.weibull_min(concentration, scale=scale)),
    ),
    _case(
        "beta_beta",
        kl.beta_beta,
        "beta",
        (((2.0, 3.0), (1.0, 1.5)), ((0.7, 0.9), (4.0, 2.0))),
        _scipy(lambda c1, c0: stats.beta(c1, c0)),
    ),
    _case(
        "uniform_uniform",
        kl.uniform_uniform,
        "uniform",
        (((0.2, 0.7), (0.0, 1.0)), ((-3.0, 2.0), (-3.5, 5.0))),
        _scipy(lambda low, high: stats.uniform(low, high - low)),
    ),
    _case(
        "von_mises_von_mises",
        kl.von_mises_von_mises,
        "von_mises",
        (((0.3, 2.0), (-1.0, 0.5)), ((3.0, 0.3), (-2.5, 6.0))),
        _scipy(lambda loc, concentration: stats.vonmises(concentration, loc=loc)),
    ),
    _case(
        "dirichlet_dirichlet",
        kl.dirichlet_dirichlet,
        "dirichlet",
        (
            ((np.array([1.5, 2.0, 0.8]),), (np.array([1.0, 1.0, 1.0]),)),
            ((np.array([4.0, 0.9, 2.5]),), (np.array([0.7, 3.0, 1.2]),)),
        ),
        _dirichlet(),
    ),
    _case(
        "multivariate_normal_multivariate_normal",
        kl.multivariate_normal_multivariate_normal,
        "multivariate_normal",
        (
            ((np.array([0.3, -1.0, 0.5]), _TRIL_P), (np.array([0.0, 0.2, 1.0]), _TRIL_Q)),
            ((np.array([1.0, 0.0, -2.0]), _TRIL_Q), (np.zeros(3), np.eye(3))),
        ),
        _mvn(),
    ),
    _case(
        "half_normal_half_normal",
        kl.half_normal_half_normal,
        "half_normal",
        (((1.2,), (0.7,)), ((0.5,), (3.0,))),
        _scipy(lambda scale: stats.halfnorm(scale=scale)),
    ),
    _case(
        "half_cauchy_half_cauchy",
        kl.half_cauchy_half_cauchy,
        "half_cauchy",
        (((1.2,), (0.7,)), ((0.5,), (3.0,))),
        _scipy(lambda scale: stats.halfcauchy(scale=scale)),
    ),
    _case(
        "inverse_gamma_inverse_gamma",
        kl.inverse_gamma_inverse_gamma,
        "inverse_gamma",
        (((2.5, 1.3), (1.5, 0.8)), ((3.0, 2.0), (4.0, 1.0))),
        _scipy(lambda concentration, scale: stats.invgamma(concentration, scale=scale)),
    ),
    _case(
        "chi2_chi2",
        kl.chi2_chi2,
        "chi2",
        (((3.0,), (1.5,)), ((1.0,), (6.0,))),
        _scipy(lambda df: stats.chi2(df)),
    ),
    _case(
        "pareto_pareto",
        kl.pareto_pareto,
        "pareto",
        # q's scale ≤ p's (strictly, so finite differences stay on the finite branch).
        (((2.5, 1.3), (1.5, 0.8)), ((0.8, 2.0), (3.0, 1.0))),
        _scipy(lambda concentration, scale: stats.pareto(concentration, scale=scale)),
    ),
    Case(
        "low_rank_normal_normal",
        kl.low_rank_normal_normal,
        "low_rank_normal",
        "normal",
        (
            (
                (np.array([0.3, -1.0, 0.5]), _FACTOR, np.array([0.6, 1.1, 0.4])),
                (np.array([0.0, 0.2, 1.0]), np.array([1.0, 2.0, 0.8])),
            ),
            ((np.zeros(3), -_FACTOR, np.ones(3)), (np.zeros(3), np.ones(3))),
        ),
        *_low_rank_vs_diagonal(),
    ),
]
CASE_IDS = [case.name for case in CASES]


def _stacked(case: Case, side: int) -> tuple[jax.Array, ...]:
    """The case's p (side 0) or q (side 1) parameters stacked over pairs: a batch of pairs."""
    columns = zip(*(pair[side] for pair in case.pairs), strict=True)
    return tuple(jnp.asarray(np.stack([np.asarray(v, np.float64) for v in c])) for c in columns)


def _reference(case: Case, p_params, q_params, seed: int) -> tuple[float, float]:
    """Monte-Carlo E_p[log p − log q] from scipy: (mean, standard error)."""
    rng = np.random.default_rng(seed)
    x = case.sample(p_params, MC_SAMPLES, rng)
    logpdf_q = case.logpdf_q or case.logpdf_p
    log_ratio = case.logpdf_p(x, p_params) - logpdf_q(x, q_params)
    return log_ratio.mean(), log_ratio.std(ddof=1) / np.sqrt(log_ratio.size)


# ---------------------------------------------------------------- closed form vs Monte Carlo
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_closed_form_matches_scipy_monte_carlo(case):
    # One call on the stacked pairs: also checks that the closed form is elementwise.
    closed = np.asarray(case.fn(*_stacked(case, 0), *_stacked(case, 1)))
    assert closed.shape == (len(case.pairs),)
    for i, (p_params, q_params) in enumerate(case.pairs):
        estimate, standard_error = _reference(case, p_params, q_params, seed=100 + i)
        tolerance = Z_THRESHOLD * standard_error + 1e-9 * (1 + abs(estimate))
        assert abs(closed[i] - estimate) <= tolerance, (
            f"{case.name}{p_params}‖{q_params}: closed {closed[i]:.6g} vs "
            f"MC {estimate:.6g} ± {standard_error:.2g}"
        )


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_kl_of_a_distribution_with_itself_is_zero(case):
    if case.p_family != case.q_family:  # low_rank_normal ‖ normal: p = q for a zero factor
        loc, _, diag = _stacked(case, 0)
        p_params = (loc, jnp.zeros_like(_stacked(case, 0)[1]), diag)
        np.testing.assert_allclose(np.asarray(case.fn(*p_params, loc, diag)), 0.0, atol=1e-12)
        return
    p_params = _stacked(case, 0)
    np.testing.assert_allclose(np.asarray(case.fn(*p_params, *p_params)), 0.0, atol=1e-12)


MATRIX_CASES = (kl.multivariate_normal_multivariate_normal, kl.low_rank_normal_normal)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_gradients_match_finite_differences(case):
    params = (*_stacked(case, 0), *_stacked(case, 1))
    if case.fn in MATRIX_CASES:
        # Forward-over-reverse through triangular solves and Cholesky costs seconds of eager
        # dispatch or compilation: the matrix cases check reverse mode (orders 1–2), jitted.
        fn, modes = jax.jit(case.fn), ("rev",)
    else:
        fn, modes = case.fn, ("fwd", "rev")  # eager: cheaper than compiling each derivative
    check_grads(fn, params, order=2, modes=modes, atol=1e-5, rtol=1e-5, eps=1e-6)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept_and_jit_vmap_agree(case, dtype):
    p, q = _stacked(case, 0), _stacked(case, 1)
    p, q = tuple(x.astype(dtype) for x in p), tuple(x.astype(dtype) for x in q)
    eager = case.fn(*p, *q)
    assert eager.dtype == dtype
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    # The function under jit and vmapped over the pairs (compiled: eager vmap compiles each
    # primitive), in one compiled program.
    jitted, mapped = jax.jit(lambda *ps: (case.fn(*ps), jax.vmap(case.fn)(*ps)))(*p, *q)
    np.testing.assert_allclose(np.asarray(jitted), eager, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(np.asarray(mapped), eager, rtol=rtol, atol=rtol)


# Wide parameter ranges (log-uniform when positive), chosen so that the true KL is finite in
# float64; within them every closed form must be finite, ≥ 0, with finite gradients.
EXTREME_RANGES = {
    "normal_normal": ((-1e3, 1e3), (1e-4, 1e4)),
    "lognormal_lognormal": ((-1e3, 1e3), (1e-4, 1e4)),
    "tanh_normal_tanh_normal": ((-1e3, 1e3), (1e-4, 1e4)),
    "laplace_laplace": ((-1e3, 1e3), (1e-4, 1e4)),
    "gumbel_gumbel": ((-10.0, 10.0), (0.1, 10.0)),
    "cauchy_cauchy": ((-1e3, 1e3), (1e-4, 1e4)),
    "exponential_exponential": ((1e-4, 1e4),),
    "gamma_gamma": ((1e-2, 1e3), (1e-3, 1e3)),
    "weibull_weibull": ((0.1, 10.0), (0.2, 5.0)),
    "beta_beta": ((1e-2, 1e3), (1e-2, 1e3)),
    "von_mises_von_mises": ((-10.0, 10.0), (1e-3, 1e3)),
    "half_normal_half_normal": ((1e-4, 1e4),),
    "half_cauchy_half_cauchy": ((1e-4, 1e4),),
    "inverse_gamma_inverse_gamma": ((1e-2, 1e3), (1e-3, 1e3)),
    "chi2_chi2": ((1e-2, 1e3),),
}


def _draw(rng, low, high, size):
    if low > 0:
        return np.exp(rng.uniform(np.log(low), np.log(high), size))
    return rng.uniform(low, high, size)


@pytest.mark.parametrize("name", sorted(EXTREME_RANGES))
def test_wide_parameters_give_finite_nonnegative_kl_and_gradients(name):
    fn = getattr(kl, name)
    rng = np.random.default_rng(7)
    ranges = EXTREME_RANGES[name]
    params = [jnp.asarray(_draw(rng, lo, hi, 2000)) for lo, hi in (*ranges, *ranges)]

    @jax.jit  # the values and their gradients in one compiled program, not op by op
    def values_and_grads(*ps):
        grads = jax.grad(lambda *ps: jnp.sum(fn(*ps)), argnums=tuple(range(len(ps))))(*ps)
        return fn(*ps), grads

    values, grads = values_and_grads(*params)
    values = np.asarray(values)
    assert np.all(np.isfinite(values)), name
    assert np.all(values >= -1e-9 * (1 + np.abs(values))), values.min()
    for i, g in enumerate(grads):
        assert np.all(np.isfinite(np.asarray(g))), f"{name}: non-finite d/d(param {i})"


# ---------------------------------------------------------------- direct formulas in numpy
def test_normal_normal_matches_the_textbook_formula():
    rng = np.random.default_rng(0)
    loc_p, loc_q = rng.normal(size=(2, 50)) * 3
    scale_p, scale_q = np.exp(rng.normal(size=(2, 50)))
    expected = (
        np.log(scale_q / scale_p) + (scale_p**2 + (loc_p - loc_q) ** 2) / (2 * scale_q**2) - 0.5
    )
    actual = np.asarray(jax.jit(kl.normal_normal)(loc_p, scale_p, loc_q, scale_q))
    np.testing.assert_allclose(actual, expected, rtol=1e-11, atol=1e-13)


def _random_tril(rng, shape, size):
    tril = np.tril(rng.normal(size=(*shape, size, size)), -1) * 0.5
    diagonal = np.exp(rng.normal(size=(*shape, size)) * 0.3)
    return tril + diagonal[..., None] * np.eye(size)


def test_multivariate_normal_matches_inverse_and_log_determinant_with_broadcasting():
    rng = np.random.default_rng(1)
    size = 4
    loc_p, tril_p = rng.normal(size=(2, 1, size)), _random_tril(rng, (2, 1), size)
    loc_q, tril_q = rng.normal(size=(3, size)), _random_tril(rng, (3,), size)
    # Compiled: one program instead of one per primitive of the solves and determinants.
    mvn_kl = jax.jit(kl.multivariate_normal_multivariate_normal)
    actual = np.asarray(mvn_kl(loc_p, tril_p, loc_q, tril_q))
    assert actual.shape == (2, 3)
    for i, j in np.ndindex(2, 3):
        cov_p = tril_p[i, 0] @ tril_p[i, 0].T
        cov_q = tril_q[j] @ tril_q[j].T
        precision_q = np.linalg.inv(cov_q)
        shift = loc_q[j] - loc_p[i, 0]
        expected = 0.5 * (
            np.trace(precision_q @ cov_p)
            + shift @ precision_q @ shift
            - size
            + np.linalg.slogdet(cov_q)[1]
            - np.linalg.slogdet(cov_p)[1]
        )
        np.testing.assert_allclose(actual[i, j], expected, rtol=1e-10)


def test_multivariate_normal_ignores_the_upper_triangle():
    rng = np.random.default_rng(2)
    tril_p, tril_q = _random_tril(rng, (), 3), _random_tril(rng, (), 3)
    junk = np.triu(rng.normal(size=(3, 3)), 1)
    loc = rng.normal(size=(2, 3))
    # One compiled program, called on the clean and the dirty factors.
    mvn_kl = jax.jit(kl.multivariate_normal_multivariate_normal)
    clean = mvn_kl(loc[0], tril_p, loc[1], tril_q)
    dirty = mvn_kl(loc[0], tril_p + junk, loc[1], tril_q - junk)
    np.testing.assert_allclose(np.asarray(dirty), np.asarray(clean), rtol=1e-13)


def test_low_rank_normal_matches_the_full_covariance_closed_form():
    rng = np.random.default_rng(3)
    size, rank = 5, 2
    loc_p, loc_q = rng.normal(size=(2, 3, size))
    factor = rng.normal(size=(3, size, rank))
    diag, scale_q = np.exp(rng.normal(size=(2, 3, size)) * 0.5)
    tril_p = np.linalg.cholesky(
        factor @ np.swapaxes(factor, -1, -2) + diag[..., None] ** 2 * np.eye(size)
    )
    tril_q = scale_q[..., None] * np.eye(size)

    @jax.jit  # both closed forms in one compiled program, not op by op
    def both(loc_p, tril_p, factor, diag, loc_q, tril_q, scale_q):
        return (
            kl.multivariate_normal_multivariate_normal(loc_p, tril_p, loc_q, tril_q),
            kl.low_rank_normal_normal(loc_p, factor, diag, loc_q, scale_q),
        )

    expected, actual = both(loc_p, tril_p, factor, diag, loc_q, tril_q, scale_q)
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=1e-10)


def test_exponential_is_gamma_with_concentration_one():
    rate_p, rate_q = np.array([0.3, 1.0, 7.0]), np.array([2.0, 1.0, 0.1])
    # Both closed forms in one compiled program, not op by op.
    exponential, gamma = jax.jit(
        lambda r_p, r_q: (kl.exponential_exponential(r_p, r_q), kl.gamma_gamma(1.0, r_p, 1.0, r_q))
    )(rate_p, rate_q)
    np.testing.assert_allclose(np.asarray(exponential), np.asarray(gamma), rtol=1e-12)


def test_chi2_and_inverse_gamma_are_gamma_kls():
    """χ²(k) is Gamma(k/2, rate ½); 1/InvGamma(a, s) is Gamma(a, rate s), and KL is invariant
    under the shared bijection 1/z."""
    df_p, df_q = np.array([0.5, 3.0, 40.0]), np.array([2.0, 3.0, 1.0])
    a_p, s_p, a_q, s_q = np.array([0.3, 2.0, 7.0]), np.array([1.0, 0.2, 5.0]), 1.5, 2.0

    @jax.jit  # the four closed forms in one compiled program, not op by op
    def closed_forms(df_p, df_q, a_p, s_p, a_q, s_q):
        return (
            kl.chi2_chi2(df_p, df_q),
            kl.gamma_gamma(df_p / 2, 0.5, df_q / 2, 0.5),
            kl.inverse_gamma_inverse_gamma(a_p, s_p, a_q, s_q),
            kl.gamma_gamma(a_p, s_p, a_q, s_q),
        )

    chi2, gamma_of_df, inverse_gamma, gamma = closed_forms(df_p, df_q, a_p, s_p, a_q, s_q)
    np.testing.assert_allclose(np.asarray(chi2), np.asarray(gamma_of_df), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(inverse_gamma), np.asarray(gamma), rtol=1e-12)


def test_pareto_with_a_larger_q_scale_is_infinite_with_zero_gradient():
    """q's support [s_q, ∞) misses p's mass on [s_p, s_q) when s_q > s_p: KL = +inf."""
    a_p, s_p = np.array([2.0, 2.0, 2.0]), np.array([1.0, 1.0, 1.0])
    a_q, s_q = np.array([3.0, 3.0, 3.0]), np.array([1.5, 1.0 + 1e-9, 1.0])
    values = np.asarray(kl.pareto_pareto(a_p, s_p, a_q, s_q))
    assert values[0] == np.inf and values[1] == np.inf
    assert np.isfinite(values[2])
    # Independent check of the infinity: scipy's q gives zero density to some of p's draws.
    x = stats.pareto(2.0, scale=1.0).rvs(1000, random_state=np.random.default_rng(0))
    assert np.isneginf(stats.pareto(3.0, scale=1.5).logpdf(x)).any()
    # Compiled: one program instead of one per primitive of the backward pass.
    grads = jax.jit(jax.grad(lambda *ps: jnp.sum(kl.pareto_pareto(*ps)[:2]), argnums=(0, 1, 2, 3)))(
        a_p, s_p, a_q, s_q
    )
    for g in grads:
        np.testing.assert_array_equal(np.asarray(g), 0.0)


def test_uniform_without_nested_supports_is_infinite_with_zero_gradient():
    low_p, high_p = np.array([-0.5, 0.2, 0.0]), np.array([0.5, 1.5, 1.0])
    low_q, high_q = np.array([0.0, 0.0, 0.0]), np.array([1.0, 1.0, 1.0])
    values = np.asarray(kl.uniform_uniform(low_p, high_p, low_q, high_q))
    assert values[0] == np.inf and values[1] == np.inf
    assert values[2] == 0.0
    # Independent check of the infinity: scipy's q gives zero density to some of p's draws.
    x = stats.uniform(-0.5, 1.0).rvs(1000, random_state=np.random.default_rng(0))
    assert np.isneginf(stats.uniform(0.0, 1.0).logpdf(x)).any()
    # Compiled: one program instead of one per primitive of the backward pass.
    grads = jax.jit(
        jax.grad(lambda *ps: jnp.sum(kl.uniform_uniform(*ps)[:2]), argnums=(0, 1, 2, 3))
    )(low_p, high_p, low_q, high_q)
    for g in grads:
        np.testing.assert_array_equal(np.asarray(g), 0.0)


# ---------------------------------------------------------------- Monte-Carlo fallback
def _renamed(module: types.ModuleType, name: str) -> types.ModuleType:
    """A copy of a family module under another name: no closed form is registered for it."""
    fake = types.ModuleType(name)
    for attribute in ("PARAMS", "EVENT_NDIMS", "sample", "log_prob"):
        setattr(fake, attribute, getattr(module, attribute))
    return fake


P_NORMAL, Q_NORMAL = (0.3, 1.2), (-0.5, 0.7)


def _per_sample_kl_and_grads(p, q, n=MC_SAMPLES, key_seed=21):
    """n single-draw estimates (parameters broadcast to (n,), so each draw has its own copy),
    and their per-draw gradients with respect to all four parameters."""
    params = [jnp.full((n,), v, jnp.float64) for v in (*P_NORMAL, *Q_NORMAL)]

    def total(*ps):
        estimates = kl.kl_divergence(
            p, ps[:2], q, ps[2:], key=jax.random.key(key_seed), num_samples=1
        )
        return jnp.sum(estimates), estimates

    grads, estimates = jax.jit(jax.grad(total, argnums=(0, 1, 2, 3), has_aux=True))(*params)
    return np.asarray(estimates), [np.asarray(g) for g in grads]


def test_fallback_estimate_and_its_pathwise_gradients_match_the_closed_form():
    fake = _renamed(normal, "tests.no_closed_form_normal")
    assert kl.closed_form(fake, normal) is None
    estimates, grads = _per_sample_kl_and_grads(fake, normal)
    assert estimates.shape == (MC_SAMPLES,)
    exact = float(kl.normal_normal(*P_NORMAL, *Q_NORMAL))
    exact_grads = jax.grad(kl.normal_normal, argnums=(0, 1, 2, 3))(*P_NORMAL, *Q_NORMAL)
    for name, values, reference in zip(
        ("value", "loc_p", "scale_p", "loc_q", "scale_q"),
        (estimates, *grads),
        (exact, *map(float, exact_grads)),
        strict=True,
    ):
        standard_error = values.std(ddof=1) / np.sqrt(values.size)
        assert abs(values.mean() - reference) <= Z_THRESHOLD * standard_error + 1e-12, (
            f"{name}: MC {values.mean():.6g} ± {standard_error:.2g} vs exact {reference:.6g}"
        )


def test_fallback_averages_num_samples_draws_and_is_jittable():
    fake = _renamed(normal, "tests.no_closed_form_normal")
    key = jax.random.key(3)
    with jax.debug_key_reuse(False):
        averaged = kl.kl_divergence(fake, P_NORMAL, normal, Q_NORMAL, key=key, num_samples=64)
        direct = kl.monte_carlo_kl(fake, P_NORMAL, normal, Q_NORMAL, key=key, num_samples=64)
        z = normal.sample(key, *P_NORMAL, sample_shape=(64,))
        jitted = jax.jit(
            lambda k, p: kl.kl_divergence(fake, p, normal, Q_NORMAL, key=k, num_samples=64)
        )(key, P_NORMAL)
    by_hand = np.mean(stats.norm(*P_NORMAL).logpdf(z) - stats.norm(*Q_NORMAL).logpdf(z))
    assert averaged.shape == ()
    np.testing.assert_allclose(np.asarray(averaged), by_hand, rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(direct), np.asarray(averaged))
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(averaged), rtol=1e-12)


def test_closed_form_is_used_when_registered_and_key_is_then_ignored():
    exact = kl.normal_normal(*P_NORMAL, *Q_NORMAL)
    assert kl.closed_form(normal, normal) is kl.normal_normal
    np.testing.assert_array_equal(kl.kl_divergence(normal, P_NORMAL, normal, Q_NORMAL), exact)
    with_key = kl.kl_divergence(
        normal, P_NORMAL, normal, Q_NORMAL, key=jax.random.key(0), num_samples=5
    )
    np.testing.assert_array_equal(with_key, exact)


def test_fallback_sums_the_lower_rank_log_density_over_event_axes():
    """A multivariate p (EVENT_NDIMS = 1) against independent normals q: q's log-densities are
    summed over the event axis, so the estimate matches the low-rank closed form."""
    loc, factor, diag = (np.array([0.3, -1.0, 0.5]), _FACTOR, np.array([0.6, 1.1, 0.4]))
    loc_q, scale_q = np.array([0.0, 0.2, 1.0]), np.array([1.0, 2.0, 0.8])
    tril = np.linalg.cholesky(factor @ factor.T + np.diag(diag**2))

    @functools.partial(jax.jit, static_argnames="sample_shape")  # one program, not op by op
    def sample(key, loc, tril, sample_shape=()):
        eps = jax.random.normal(key, (*sample_shape, *jnp.shape(loc)), jnp.float64)
        return loc + jnp.einsum("...ij,...j->...i", tril, eps)

    def log_prob(x, loc, tril):
        return jnp.asarray(stats.multivariate_normal(loc, tril @ tril.T).logpdf(np.asarray(x)))

    p = types.ModuleType("tests.fake_mvn")
    p.PARAMS, p.EVENT_NDIMS, p.sample, p.log_prob = ("loc", "scale_tril"), 1, sample, log_prob
    estimate = kl.kl_divergence(
        p, (loc, tril), normal, (loc_q, scale_q), key=jax.random.key(5), num_samples=MC_SAMPLES
    )
    assert estimate.shape == ()
    reference_mean, standard_error = _reference(
        CASES[CASE_IDS.index("low_rank_normal_normal")],
        (loc, factor, diag),
        (loc_q, scale_q),
        seed=0,
    )
    exact = float(jax.jit(kl.low_rank_normal_normal)(loc, factor, diag, loc_q, scale_q))
    assert abs(float(estimate) - exact) <= Z_THRESHOLD * standard_error, (estimate, exact)
    assert abs(reference_mean - exact) <= Z_THRESHOLD * standard_error


# ---------------------------------------------------------------- with the family modules
def _family(name: str) -> types.ModuleType:
    return importlib.import_module(f"reparam.{name}")  # a missing family is a failure, not a skip


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_closed_form_agrees_with_the_family_modules_monte_carlo(case):
    """Dispatch, and the parameter order of the families: the registered closed form vs
    monte_carlo_kl with the modules' own sample/log_prob (per-draw estimates, 5 SE)."""
    p, q = _family(case.p_family), _family(case.q_family)
    assert kl.closed_form(p, q) is case.fn
    n = 20_000  # enough to catch a swapped or misread parameter by many standard errors

    # One compiled program per case (the pairs share shapes), with the dispatched closed form:
    # cheaper than running the samplers and the closed form op by op (each primitive compiled).
    @jax.jit
    def monte_carlo_and_exact(key, p_params, q_params):
        # n copies of the parameters as a batch, one draw each: n independent estimates.
        p_batch = tuple(jnp.broadcast_to(v, (n, *v.shape)) for v in p_params)
        estimates = kl.monte_carlo_kl(p, p_batch, q, q_params, key=key, num_samples=1)
        return estimates, kl.kl_divergence(p, p_params, q, q_params)

    for i, (p_params, q_params) in enumerate(case.pairs):
        p_params = tuple(jnp.asarray(v, jnp.float64) for v in p_params)
        q_params = tuple(jnp.asarray(v, jnp.float64) for v in q_params)
        estimates, exact = monte_carlo_and_exact(jax.random.key(30 + i), p_params, q_params)
        estimates, exact = np.asarray(estimates), float(exact)
        assert estimates.shape == (n,)
        standard_error = estimates.std(ddof=1) / np.sqrt(estimates.size)
        assert abs(estimates.mean() - exact) <= Z_THRESHOLD * standard_error + 1e-9, (
            f"{case.name} pair {i}: exact {exact:.6g} vs MC {estimates.mean():.6g} "
            f"± {standard_error:.2g}"
        )


def test_fallback_normal_against_laplace_matches_quadrature():
    laplace = _family("laplace")
    assert kl.closed_form(normal, laplace) is None
    p_params, q_params = (0.3, 1.2), (-0.5, 0.7)
    estimate = kl.kl_divergence(
        normal, p_params, laplace, q_params, key=jax.random.key(6), num_samples=MC_SAMPLES
    )
    p_dist, q_dist = stats.norm(*p_params), stats.laplace(*q_params)
    # Finite limits: beyond ±40 p's mass is < 1e-300 and pdf·(−inf) would be NaN in float64.
    exact = integrate.quad(
        lambda x: p_dist.pdf(x) * (p_dist.logpdf(x) - q_dist.logpdf(x)), -40.0, 40.0, points=[-0.5]
    )[0]
    x = p_dist.rvs(MC_SAMPLES, random_state=np.random.default_rng(0))
    standard_error = (p_dist.logpdf(x) - q_dist.logpdf(x)).std() / np.sqrt(MC_SAMPLES)
    assert abs(float(estimate) - exact) <= Z_THRESHOLD * standard_error


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("fn", "args", "name"),
    [
        (kl.normal_normal, (0.0, 1.0, 0.0, -1.0), "scale_q"),
        (kl.normal_normal, (0.0, 0.0, 0.0, 1.0), "scale_p"),
        (kl.normal_normal, (np.nan, 1.0, 0.0, 1.0), "loc_p"),
        (kl.laplace_laplace, (0.0, 1.0, 0.0, -2.0), "scale_q"),
        (kl.exponential_exponential, (1.0, 0.0), "rate_q"),
        (kl.gamma_gamma, (-1.0, 1.0, 1.0, 1.0), "concentration_p"),
        (kl.weibull_weibull, (1.0, 1.0, 1.0, -1.0), "concentration_q"),
        (kl.beta_beta, (1.0, 1.0, 1.0, 0.0), "concentration0_q"),
        (kl.half_normal_half_normal, (1.0, 0.0), "scale_q"),
        (kl.half_cauchy_half_cauchy, (-1.0, 1.0), "scale_p"),
        (kl.inverse_gamma_inverse_gamma, (1.0, 1.0, 1.0, -1.0), "scale_q"),
        (kl.chi2_chi2, (0.0, 1.0), "df_p"),
        (kl.pareto_pareto, (1.0, 1.0, np.nan, 1.0), "concentration_q"),
        (kl.uniform_uniform, (1.0, 0.0, 0.0, 2.0), "low_p"),
        (kl.uniform_uniform, (0.0, 1.0, 3.0, 2.0), "low_q"),
        (kl.von_mises_von_mises, (0.0, -1.0, 0.0, 1.0), "concentration_p"),
        (kl.dirichlet_dirichlet, (np.ones(3), np.array([1.0, 0.0, 1.0])), "concentration_q"),
        (kl.dirichlet_dirichlet, (np.ones(3), np.ones(4)), "concentration_q"),
        (
            kl.multivariate_normal_multivariate_normal,
            (np.zeros(2), np.eye(2), np.zeros(2), np.diag([1.0, -1.0])),
            "scale_tril_q",
        ),
        (
            kl.multivariate_normal_multivariate_normal,
            (np.zeros(2), np.eye(2), np.zeros(3), np.eye(2)),
            "loc_q",
        ),
        (
            kl.multivariate_normal_multivariate_normal,
            (np.zeros(2), np.eye(3), np.zeros(2), np.eye(2)),
            "scale_tril_p",
        ),
        (
            kl.low_rank_normal_normal,
            (np.zeros(2), np.ones((2, 1)), np.ones(2), np.zeros(2), np.array([1.0, -1.0])),
            "scale_q",
        ),
        (
            kl.low_rank_normal_normal,
            (np.zeros(2), np.ones((3, 1)), np.ones(2), np.zeros(2), np.ones(2)),
            "cov_factor_p",
        ),
    ],
    ids=lambda value: value.__name__ if callable(value) else None,
)
def test_bad_parameters_raise_value_errors_naming_the_argument(fn, args, name):
    with pytest.raises(ValueError, match=rf"reparam\.kl\.{fn.__name__}: `{name}`"):
        fn(*args)


def test_non_broadcasting_and_non_numeric_parameters():
    with pytest.raises(ValueError, match="do not broadcast"):
        kl.normal_normal(np.zeros(2), 1.0, np.zeros(3), 1.0)
    with pytest.raises(TypeError, match="`loc_q`"):
        kl.normal_normal(0.0, 1.0, "zero", 1.0)


def test_checkify_path_catches_bad_values_inside_jit():
    fn = jax.jit(checks.checked(kl.normal_normal))
    err, _ = fn(0.0, 1.0, 0.0, -1.0)
    with pytest.raises(Exception, match="`scale_q`"):
        err.throw()
    err, value = fn(0.0, 1.0, 0.0, 1.0)
    err.throw()
    assert float(value) == 0.0


def test_dispatcher_refuses_bad_families_params_keys_and_sample_counts():
    fake = _renamed(normal, "tests.no_closed_form_normal")
    with pytest.raises(TypeError, match=r"no closed-form KL.*`key`"):
        kl.kl_divergence(fake, P_NORMAL, normal, Q_NORMAL)
    with pytest.raises(TypeError, match="`p` must be a family module"):
        kl.kl_divergence("normal", P_NORMAL, normal, Q_NORMAL)
    with pytest.raises(TypeError, match="`q` must be a family module"):
        kl.kl_divergence(normal, P_NORMAL, None, Q_NORMAL)
    with pytest.raises(TypeError, match="`q_params` must hold 2 parameters"):
        kl.kl_divergence(normal, P_NORMAL, normal, (0.0,))
    with pytest.raises(TypeError, match="`p_params` must be a tuple"):
        kl.kl_divergence(normal, 1.0, normal, Q_NORMAL)
    with pytest.raises(TypeError, match="`key`"):
        kl.monte_carlo_kl(fake, P_NORMAL, normal, Q_NORMAL, key=0, num_samples=2)
    for bad, error in ((0, ValueError), (2.5, TypeError), (True, TypeError)):
        with pytest.raises(error, match="`num_samples`"):
            kl.kl_divergence(
                fake, P_NORMAL, normal, Q_NORMAL, key=jax.random.key(0), num_samples=bad
            )
    with pytest.raises(ValueError, match="`scale`"):
        kl.kl_divergence(fake, P_NORMAL, normal, (0.0, -1.0), key=jax.random.key(0))


def test_every_registered_closed_form_is_public_and_named_after_its_pair():
    for (p_name, q_name), fn in kl.CLOSED_FORMS.items():
        p_short, q_short = (
            p_name.removeprefix("reparam.families."),
            q_name.removeprefix("reparam.families."),
        )
        assert fn.__name__ == f"{p_short}_{q_short}"
        assert fn.__name__ in kl.__all__
    assert set(kl.CLOSED_FORMS.values()) == {case.fn for case in CASES}


def test_family_modules_that_exist_are_importable_for_the_registry():
    """Guards against a typo in a registered module name (reparam.<name> must be importable once
    the file exists)."""
    for p_name, q_name in kl.CLOSED_FORMS:
        for module_name in (p_name, q_name):
            spec = importlib.util.find_spec(module_name)
            if spec is not None:
                assert callable(importlib.import_module(module_name).log_prob)
