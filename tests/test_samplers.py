"""Statistical tests of the private samplers: families/_gamma_sampler.py (log-space gamma, used by
gamma, beta, dirichlet, student_t) and reparam/families/_von_mises_sampler.py (Best–Fisher).

Distribution: KS against scipy at concentrations from 1e-3 to 1e6 (gamma, compared in log space:
P(log G ≤ t) = P(α, e^t), with P(α, x) ≈ x^α/Γ(α + 1) where e^t underflows) and κ from 1e-3 to
1e4 (von Mises); mean and variance at N = 10^6 within 5 standard errors (of log G, whose cumulants
are polygammas, and of G itself; of cos ω and sin ω for von Mises); the rejection driver's rare
paths (overflowing lists, refills) on a toy proposal; no NaN/inf over hypothesis-drawn
concentrations in float32 and float64; same key → same bits, under jit and under vmap.
Few compiled programs: each test feeds arrays of concentrations to one jitted function.
"""

from __future__ import annotations

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from scipy import special, stats

from reparam.families._gamma_sampler import batched_rejection, log_gamma
from reparam.families._von_mises_sampler import best_fisher

Z = 5.0  # standard errors
KS_P = 1e-4  # fixed keys: a deterministic test; a correct sampler fails it with probability 1e-4
N_MOMENTS = 1_000_000
N_KS = 100_000

GAMMA_CONCENTRATIONS = (1e-3, 0.1, 1.0, 1e3, 1e6)
VON_MISES_CONCENTRATIONS = (1e-3, 0.5, 3.0, 100.0, 1e4)


def _draw(sampler, key, concentrations, n, dtype):
    """sampler(key, κ) for κ broadcast to (len(concentrations), n), in one compiled call."""
    kappa = jnp.broadcast_to(jnp.asarray(concentrations, dtype)[:, None], (len(concentrations), n))
    return np.asarray(jax.jit(sampler)(key, kappa), np.float64)


def log_gamma_cdf(a: float, t: np.ndarray) -> np.ndarray:
    """P(log G ≤ t) for G ~ Gamma(a, 1), float64, also where e^t underflows."""
    with np.errstate(under="ignore"):
        small = t < -30  # P(a, x) = x^a/Γ(a + 1) (1 − a x/(a + 1) + …): error ≈ e^-30 relative
        return np.where(
            small,
            np.exp(a * np.minimum(t, -30) - special.gammaln(a + 1)),
            special.gammainc(a, np.exp(np.maximum(t, -30))),
        )


# float64 (the suite's dtype) gets N_MOMENTS draws per concentration; float32 N_KS (enough for
# the KS tests and 5-standard-error moments at that N; keeps the file's runtime small).
DTYPES = [(np.float64, N_MOMENTS), (np.float32, N_KS)]


@pytest.fixture(scope="module", params=DTYPES, ids=["float64", "float32"])
def gamma_draws(request):
    dtype, n = request.param
    return dtype, _draw(log_gamma, jax.random.key(101), GAMMA_CONCENTRATIONS, n, dtype)


@pytest.fixture(scope="module", params=DTYPES, ids=["float64", "float32"])
def von_mises_draws(request):
    dtype, n = request.param
    return dtype, _draw(best_fisher, jax.random.key(102), VON_MISES_CONCENTRATIONS, n, dtype)


def test_gamma_ks_in_log_space(gamma_draws):
    dtype, log_g = gamma_draws
    for row, a in enumerate(GAMMA_CONCENTRATIONS):
        a = float(dtype(a))
        p = stats.kstest(log_g[row, :N_KS], lambda t, a=a: log_gamma_cdf(a, t)).pvalue
        assert p > KS_P, f"a={a}: KS p-value {p:.2g}"


def test_gamma_moments(gamma_draws):
    """E[log G] = ψ(a), Var[log G] = ψ'(a) (cumulants κ_n = ψ^(n−1)(a)); E[G] = Var[G] = a."""
    dtype, log_g = gamma_draws
    n = log_g.shape[1]
    for row, a in enumerate(GAMMA_CONCENTRATIONS):
        a = float(dtype(a))
        x = log_g[row]
        k2, k4 = special.polygamma(1, a), special.polygamma(3, a)
        mean_se, var_se = np.sqrt(k2 / n), np.sqrt((k4 + 2 * k2**2) / n)
        assert abs(x.mean() - special.digamma(a)) < Z * mean_se, f"a={a}: E[log G]"
        assert abs(x.var() - k2) < Z * var_se, f"a={a}: Var[log G]"
        if a >= 0.1:  # G itself (below, most draws underflow)
            g = np.exp(x)
            # Gamma: central moments μ2 = a, μ4 = 3a² + 6a.
            assert abs(g.mean() - a) < Z * np.sqrt(a / n), f"a={a}: E[G]"
            assert abs(g.var() - a) < Z * np.sqrt((2 * a**2 + 6 * a) / n), f"a={a}: Var[G]"


def test_gamma_small_concentrations_underflow_in_linear_space_but_not_in_log_space(gamma_draws):
    dtype, log_g = gamma_draws
    assert np.all(np.isfinite(log_g))
    tiny = np.log(np.finfo(dtype).tiny)
    # a = 1e-3: P(log G < log tiny) ≈ tiny^a, 0.49 in float64 and 0.92 in float32.
    assert np.mean(log_g[0] < tiny) > 0.4


def test_von_mises_ks(von_mises_draws):
    dtype, omega = von_mises_draws
    assert np.all(np.abs(omega) <= dtype(np.pi))  # float32(π) > π
    for row, kappa in enumerate(VON_MISES_CONCENTRATIONS):
        kappa = float(dtype(kappa))
        p = stats.kstest(omega[row, :N_KS], stats.vonmises(kappa).cdf).pvalue
        assert p > KS_P, f"kappa={kappa}: KS p-value {p:.2g}"


def test_von_mises_moments(von_mises_draws):
    """E[cos ω] = I₁/I₀, E[cos² ω] = (1 + I₂/I₀)/2, E[sin ω] = 0, E[sin² ω] = (1 − I₂/I₀)/2."""
    dtype, omega = von_mises_draws
    n = omega.shape[1]
    for row, kappa in enumerate(VON_MISES_CONCENTRATIONS):
        kappa = float(dtype(kappa))
        r1 = special.ive(1, kappa) / special.ive(0, kappa)
        r2 = special.ive(2, kappa) / special.ive(0, kappa)
        cos, sin = np.cos(omega[row]), np.sin(omega[row])
        checks = {
            "E[cos]": (cos, r1),
            "E[cos²]": (cos**2, (1 + r2) / 2),
            "E[sin]": (sin, 0.0),
            "E[sin²]": (sin**2, (1 - r2) / 2),
        }
        for name, (values, expected) in checks.items():
            se = values.std() / np.sqrt(n)
            # float32: sin(ω) of ω rounded to float32 is off by ≈ 1e-7 relative; allow for it.
            slack = 4 * np.finfo(dtype).eps * abs(expected) if dtype == np.float32 else 0.0
            assert abs(values.mean() - expected) < Z * se + slack + 1e-15, (
                f"kappa={kappa}: {name} {values.mean():.8g} vs {expected:.8g} (se {se:.2g})"
            )


# ---------------------------------------------------------------- the rejection driver's rare paths
def _toy_draw(key, m):
    key_value, key_accept = jax.random.split(key)
    return jax.random.uniform(key_value, (m,)), jax.random.uniform(key_accept, (m,))


def _toy_test(noise, params):
    """Propose v ~ U(0, 1), accept with probability v^k: accepted v ~ Beta(k + 1, 1)."""
    value, u = noise
    (power,) = params
    return value, u < value**power


@pytest.mark.parametrize("declared_rate", [0.55, 0.01], ids=["sized", "overflowing"])
def test_batched_rejection_is_exact_when_lists_overflow(declared_rate):
    """Power 1 rejects half the proposals. Declared as 1 %, the compacted list (4096 slots for
    ~10^4 pending) overflows and the final while loop refills from the whole array; the
    distribution must not change."""
    n = 20_000
    power = jnp.ones((n,))
    fn = jax.jit(
        lambda key, p: batched_rejection(key, _toy_draw, _toy_test, (p,), declared_rate, p.dtype)
    )
    values = np.asarray(fn(jax.random.key(103), power))
    assert stats.kstest(values, stats.beta(2, 1).cdf).pvalue > KS_P


def test_batched_rejection_gives_nan_instead_of_looping_when_a_test_never_accepts():
    """Power NaN never accepts (u < NaN is false): those elements come back NaN after the capped
    final loop, the others exact; without the cap the call would never return."""
    power = jnp.where(jnp.arange(6000) % 1000 == 0, jnp.nan, 1.0)
    fn = jax.jit(lambda key, p: batched_rejection(key, _toy_draw, _toy_test, (p,), 0.55, p.dtype))
    values = np.asarray(fn(jax.random.key(107), power))
    assert np.array_equal(np.isnan(values), np.isnan(np.asarray(power)))
    assert stats.kstest(values[~np.isnan(values)], stats.beta(2, 1).cdf).pvalue > KS_P


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_concentrations_up_to_the_largest_float_are_drawn(dtype):
    """α, κ near the largest float: 9d, 3d (Marsaglia–Tsang) and 2κ (Best–Fisher) overflowed,
    a NaN acceptance test that looped forever. log G ≈ log α and |ω| ≈ 1/√κ now."""
    largest = np.finfo(dtype).max
    concentration = jnp.asarray([largest, largest / 2, largest / 100, 1e30], dtype)
    log_g = np.asarray(jax.jit(log_gamma)(jax.random.key(108), concentration), np.float64)
    np.testing.assert_allclose(log_g, np.log(np.asarray(concentration, np.float64)), rtol=1e-6)
    shape = (4, 2000)
    kappa = jnp.broadcast_to(concentration[:, None], shape)
    omega = np.asarray(jax.jit(best_fisher)(jax.random.key(109), kappa), np.float64)
    scaled = omega * np.sqrt(np.asarray(concentration, np.float64))[:, None]
    # √(2n) ≈ 63: the standard error of a sample standard deviation of n normals is 1/√(2n).
    np.testing.assert_allclose(scaled.std(axis=1), 1.0, atol=Z / np.sqrt(2 * shape[1]))


# ---------------------------------------------------------------- extremes: never NaN or inf
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_nan_or_inf_for_hypothesis_concentrations(dtype):
    """log G and ω finite for concentrations from 1e-30 to 1e30 (float32: 1e-37 to 1e37 is the
    normal range; stay inside it); one compiled program per sampler, fed 8 at a time."""
    shape = (512, 8)
    gamma_fn = jax.jit(lambda key, a: log_gamma(key, jnp.broadcast_to(a, shape)))
    vm_fn = jax.jit(lambda key, k: best_fisher(key, jnp.broadcast_to(k, shape)))
    exponent = st.floats(-30.0, 30.0, allow_nan=False)

    @settings(max_examples=20, deadline=None)
    @given(st.lists(exponent, min_size=8, max_size=8), st.integers(0, 2**31 - 1))
    def check(exponents, seed):
        concentration = jnp.asarray(10.0 ** np.asarray(exponents), dtype)
        key_gamma, key_vm = jax.random.split(jax.random.key(seed))
        log_g = np.asarray(gamma_fn(key_gamma, concentration))
        omega = np.asarray(vm_fn(key_vm, concentration))
        assert np.all(np.isfinite(log_g)), exponents
        assert np.all(np.isfinite(omega)) and np.all(np.abs(omega) <= dtype(np.pi)), exponents

    check()


def test_bad_concentrations_give_nan_or_limits_never_a_hang():
    concentration = jnp.array([jnp.inf, jnp.nan, 0.0, -1.0, 2.0])
    log_g = np.asarray(jax.jit(log_gamma)(jax.random.key(104), concentration))
    np.testing.assert_array_equal(log_g[:4], [np.inf, np.nan, -np.inf, np.nan])
    assert np.isfinite(log_g[4])
    omega = np.asarray(jax.jit(best_fisher)(jax.random.key(105), concentration))
    assert np.all(np.isnan(omega[:4])) and np.isfinite(omega[4])


# ---------------------------------------------------------------- determinism
@pytest.mark.parametrize("sampler", [log_gamma, best_fisher], ids=["gamma", "von_mises"])
def test_same_key_same_bits_under_jit_and_vmap(sampler):
    """Repeated jitted calls agree bit for bit, and vmap over keys equals a loop over keys, for an
    array large enough (10^4) to take the compacted-list path and then the final while loop."""
    keys = jax.random.split(jax.random.key(106), 3)
    concentration = jnp.concatenate([jnp.full((5_000,), 0.5), jnp.full((5_000,), 4.0)])
    fn = jax.jit(sampler)
    batched = jax.jit(jax.vmap(sampler, (0, None)))
    with jax.debug_key_reuse(False):
        first = np.asarray(fn(keys[0], concentration))
        np.testing.assert_array_equal(first, np.asarray(fn(keys[0], concentration)))
        looped = np.stack([np.asarray(fn(k, concentration)) for k in keys])
        np.testing.assert_array_equal(np.asarray(batched(keys, concentration)), looped)
    assert not np.array_equal(looped[0], looped[1])
