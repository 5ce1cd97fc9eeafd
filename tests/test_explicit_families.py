"""Family-specific checks for the explicit-transform univariate families.

The generic contract (tests/test_families.py) covers identity, local and global gradients,
scipy agreement and hypothesis extremes. Here: the transforms at the very ends of each noise
distribution's range over the full parameter range 1e-8..1e8 (never NaN; finite wherever the
distribution itself is representable), `cdf` against scipy including tails and off-support
points, `sample_and_log_prob` against `sample` + `log_prob`, and log_prob's support edges.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special, stats

from reparam import cauchy, exponential, kumaraswamy, lognormal, uniform, weibull
from tests.specs import all_specs

SPECS = {spec.name: spec for spec in all_specs()}
NAMES = [
    "laplace",
    "logistic",
    "gumbel",
    "cauchy",
    "lognormal",
    "exponential",
    "uniform",
    "weibull",
    "kumaraswamy",
]
POSITIVE = (1e-8, 1e-4, 1.0, 1e4, 1e8)
LOC = (-1e6, 0.0, 1e6)
# Where the distribution itself spans more than the float range (exp(scale·ε) with scale = 1e8,
# ε^(1/k) with k = 1e-8), samples may saturate at 0 or ±inf; everywhere else they are finite.
MAY_SATURATE = {"lognormal", "weibull"}


def _uniform_edges(dtype) -> np.ndarray:
    """u at the ends of jax.random.uniform's range, [tiny or eps, 1 − eps], and a few inside."""
    finfo = np.finfo(dtype)
    return np.array([finfo.tiny, finfo.eps, 1e-3, 0.5, 1 - 1e-3, 1 - finfo.eps], dtype)


def _edge_noise(name: str, dtype) -> np.ndarray:
    """The extreme ε each family's noise() can return, from the samplers' formulas in numpy."""
    u = _uniform_edges(dtype)
    above_eps = u[1:]  # laplace, cauchy and normal samplers start at eps, not tiny
    with np.errstate(divide="ignore"):
        eps = {
            "laplace": np.concatenate([np.log(above_eps), -np.log(above_eps), [0.0]]),
            "logistic": np.log(u) - np.log1p(-u),
            "gumbel": -np.log(-np.log(u)),
            "cauchy": np.tan(np.pi * (above_eps - 0.5)),
            "lognormal": np.concatenate([special.ndtri(above_eps), [-9.0, 9.0]]),
            "exponential": np.concatenate([-np.log1p(-u), [0.0]]),
            "uniform": np.concatenate([u, [0.0]]),
            "weibull": -np.log1p(-u),
            "kumaraswamy": u,
        }[name]
    return eps.astype(dtype)


def _parameter_grid(name: str, dtype) -> np.ndarray:
    """(P, n_params) parameter combinations spanning the in-range extremes."""
    if name == "exponential":
        grid = [(rate,) for rate in POSITIVE]
    elif name == "uniform":
        grid = [(low, low + width) for low in LOC for width in POSITIVE]
    elif name in ("weibull", "kumaraswamy"):
        grid = list(itertools.product(POSITIVE, POSITIVE))
    elif name == "lognormal":
        # loc is log z's location: beyond ±log(max float) even the median exp(loc) overflows.
        bound = 0.4 * np.log(np.finfo(dtype).max)
        grid = list(itertools.product((-bound, 0.0, bound), POSITIVE))
    else:
        grid = list(itertools.product(LOC, POSITIVE))
    grid = np.array(grid, dtype)
    if name == "uniform":  # in float32 a width of 1e-8 vanishes next to |low| = 1e6
        grid = grid[grid[:, 0] < grid[:, 1]]
    return grid


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
def test_transform_at_noise_edges_never_nan_over_the_full_parameter_range(name, dtype):
    module = SPECS[name].module
    eps = _edge_noise(name, dtype)
    grid = _parameter_grid(name, dtype)
    # Every (parameter, ε) pair is its own element, so the gradient of the sum is per-element.
    params = tuple(
        jnp.asarray(np.repeat(grid[:, i : i + 1], eps.size, 1)) for i in range(grid.shape[1])
    )
    eps = jnp.broadcast_to(jnp.asarray(eps), params[0].shape)

    # The value and its pullback as one compiled program (eager: every op of the transform and
    # of its transpose was compiled on its own at this case's shapes).
    @jax.jit
    def value_and_grads(eps, *params):
        z, pullback = jax.vjp(lambda *ps: module.transform(eps, *ps), *params)
        return z, pullback(jnp.ones_like(z))

    z, grads = value_and_grads(eps, *params)
    assert z.dtype == dtype
    named = [("z", z), *((f"d/d{n}", g) for n, g in zip(module.PARAMS, grads, strict=True))]
    for what, value in named:
        value = np.asarray(value)
        bad = np.argwhere(np.isnan(value) if name in MAY_SATURATE else ~np.isfinite(value))
        assert bad.size == 0, (
            f"{what} = {value[tuple(bad[0])]} at params {grid[bad[0][0]]}, ε = {eps[tuple(bad[0])]}"
        )


@pytest.mark.parametrize("name", sorted(MAY_SATURATE))
def test_saturating_families_are_finite_where_the_distribution_is(name):
    """The complement of the test above: the saturation is the distribution's, not ours."""
    module = SPECS[name].module
    params = {"lognormal": (0.0, 1e8), "weibull": (1.0, 1e-8)}[name]
    z = np.asarray(module.transform(jnp.asarray([0.5, 2.0]), *params))
    # exp(±1e8·ε) and 0.5^(1e8), 2^(1e8) are far outside float64: the exact answers round to 0/inf.
    if name == "lognormal":
        assert np.all(np.isinf(z))
    else:
        np.testing.assert_array_equal(z, [0.0, np.inf])


# ---------------------------------------------------------------- cdf
def _cdf_points(dist) -> np.ndarray:
    quantiles = dist.ppf(np.array([1e-12, 1e-6, 0.01, 0.3, 0.5, 0.7, 0.99, 1 - 1e-6]))
    low, high = dist.support()
    off_support = [x for x in (low - 1.0, high + 1.0) if np.isfinite(x)]
    return np.concatenate([quantiles, off_support])


def _reference_cdf(dist, x: float) -> float:
    """∫ pdf by quadrature from the nearer end of the support, keeping relative precision in the
    lower tail where scipy's own formulas cancel (0.5 + atan(x)/π for the Cauchy)."""
    low, high = dist.support()
    if x <= low:
        return 0.0
    if x >= high:
        return 1.0
    options = {"epsabs": 0.0, "epsrel": 1e-12, "limit": 500}
    below = x <= dist.median()
    end = low if below else high
    if np.isfinite(end):
        mass = integrate.quad(dist.pdf, *sorted((end, x)), **options)[0]
    else:
        # y = x ∓ s·(1/v − 1), v ∈ (0, 1]: the scale s = |x − median| matches the tail's width,
        # which quad's own mapping of an infinite interval (scale 1) misses for x = −3e11.
        s = max(abs(x - dist.median()), 1.0)
        sign = -1.0 if below else 1.0

        def integrand(v):
            with np.errstate(over="ignore", divide="ignore"):
                return dist.pdf(x + sign * s * (1.0 / v - 1.0)) * s / v**2

        mass = integrate.quad(integrand, 0.0, 1.0, **options)[0]
    return mass if below else 1.0 - mass


@pytest.mark.parametrize("name", NAMES)
def test_cdf_matches_quadrature_in_both_tails_and_off_support(name):
    spec = SPECS[name]
    batch = np.broadcast_shapes(*(np.shape(p) for p in spec.params))
    # One program for every parameter set (arguments, not constants; eager: op by op).
    cdf = jax.jit(spec.module.cdf)
    for index in np.ndindex(batch):
        params = tuple(float(np.broadcast_to(p, batch)[index]) for p in spec.params)
        dist = spec.scipy_dist(*params)
        x = _cdf_points(dist)
        ours = np.asarray(cdf(x, *params))
        reference = np.array([_reference_cdf(dist, xi) for xi in x])
        # Relative, so that the lower tail (1e-12) is compared digit for digit, not to 0.
        np.testing.assert_allclose(ours, reference, rtol=1e-8, atol=0.0, err_msg=f"{params}")


# ---------------------------------------------------------------- sample_and_log_prob
@pytest.mark.parametrize("name", NAMES)
def test_sample_and_log_prob_is_sample_and_its_log_prob(name):
    spec = SPECS[name]
    params = tuple(jnp.asarray(p) for p in spec.params)
    key = jax.random.key(20)
    with jax.debug_key_reuse(False):
        z, lp = spec.module.sample_and_log_prob(key, *params, sample_shape=(50,))
        z_alone = spec.module.sample(key, *params, sample_shape=(50,))
    np.testing.assert_array_equal(np.asarray(z), np.asarray(z_alone))
    assert lp.shape == z.shape == (50, *spec.batch_shape)
    np.testing.assert_allclose(
        np.asarray(lp), np.asarray(spec.module.log_prob(z, *params)), rtol=1e-9, atol=1e-9
    )


# ---------------------------------------------------------------- support edges of log_prob
OFF_SUPPORT = {
    "lognormal": ((0.0, 1.0), (-1.0, 0.0)),
    "exponential": ((2.0,), (-1e-3, -5.0)),
    "uniform": ((0.0, 1.0), (-1e-9, 1.5)),
    "weibull": ((1.0, 2.0), (-1e-3, -5.0)),
    "kumaraswamy": ((2.0, 3.0), (-0.5, 1.5)),
}


@pytest.mark.parametrize("name", sorted(OFF_SUPPORT))
def test_log_prob_off_support_is_minus_inf_with_zero_not_nan_gradients(name):
    module = SPECS[name].module
    params, xs = OFF_SUPPORT[name]
    params = tuple(jnp.asarray(p) for p in params)
    x = jnp.asarray(xs)
    # Value and gradient as one compiled program (eager: op by op, forward and backward).
    log_p, grads = jax.jit(
        lambda ps: (
            module.log_prob(x, *ps),
            jax.grad(lambda ps: jnp.sum(module.log_prob(x, *ps)))(ps),
        )
    )(params)
    assert np.all(np.asarray(log_p) == -np.inf)
    for g in grads:
        np.testing.assert_array_equal(np.asarray(g), 0.0)


@pytest.mark.parametrize(
    ("module", "params", "x", "expected"),
    [
        # Density limits at the ends of the support, as scipy's pdf gives them.
        (weibull, (2.0, 0.5), 0.0, np.inf),
        (weibull, (2.0, 1.0), 0.0, np.log(0.5)),
        (weibull, (2.0, 3.0), 0.0, -np.inf),
        (kumaraswamy, (0.5, 2.0), 0.0, np.inf),
        (kumaraswamy, (1.0, 2.0), 0.0, np.log(2.0)),
        (kumaraswamy, (3.0, 2.0), 0.0, -np.inf),
        (kumaraswamy, (3.0, 0.5), 1.0, np.inf),
        (kumaraswamy, (3.0, 1.0), 1.0, np.log(3.0)),
        (kumaraswamy, (3.0, 2.0), 1.0, -np.inf),
        (exponential, (2.0,), 0.0, np.log(2.0)),
        (uniform, (-1.0, 3.0), 3.0, -np.log(4.0)),
        (lognormal, (0.0, 1.0), 0.0, -np.inf),
    ],
)
def test_log_prob_at_the_ends_of_the_support(module, params, x, expected):
    np.testing.assert_allclose(float(module.log_prob(x, *params)), expected, rtol=1e-12)


def test_kumaraswamy_reference_density_is_the_textbook_one():
    """Guards the spec's scipy subclass: Kumaraswamy(1, b) = Beta(1, b), (a, 1) = Beta(a, 1)."""
    x = np.linspace(0.05, 0.95, 7)
    reference = SPECS["kumaraswamy"].scipy_dist
    np.testing.assert_allclose(reference(1.0, 2.5).pdf(x), stats.beta(1.0, 2.5).pdf(x), rtol=1e-12)
    np.testing.assert_allclose(reference(3.0, 1.0).cdf(x), stats.beta(3.0, 1.0).cdf(x), rtol=1e-12)


def test_cauchy_has_no_mean_or_variance():
    assert not hasattr(cauchy, "mean") and not hasattr(cauchy, "variance")
