"""normal_mixture: the generic layers that need the component axis, re-done here.

The spec (tests/specs/normal_mixture.py) opts out of the generic identity / check_grads-on-
transform layer (transform's JVP is the implicit gradient, not the derivative at fixed ε), the
scalar-parameter MC-gradient layer, and the scipy layers (scipy has no vectorized mixture). Here:
1 identity, 2 local derivatives (pathwise in ε, implicit Jacobian vs CDF finite differences, second
order vs the inverse CDF), 3 MC gradients for every element of every parameter vs quadrature,
4 log_prob / cdf / moments / KS vs a numpy+scipy reference, 5 extremes in float32.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy import optimize, stats
from scipy.special import logsumexp, softmax

from reparam import normal_mixture
from tests.specs import TEST_FUNCTIONS
from tests.specs.normal_mixture import LOCS, LOGITS, SCALES, expectation

PARAMS = (LOGITS, LOCS, SCALES)  # a batch of 3 mixtures, K = 3
# One 2-component mixture for the Monte-Carlo layer (per element of each parameter vector).
MC_PARAMS = (np.array([0.3, -0.4]), np.array([-1.0, 1.5]), np.array([0.6, 1.2]))
MC_SAMPLES = 200_000


# ------------------------------------------------------------------ numpy/scipy reference
def reference_log_prob(x, logits, locs, scales):
    x = np.asarray(x)[..., None]
    log_w = logits - logsumexp(logits, axis=-1, keepdims=True)
    return logsumexp(log_w + stats.norm.logpdf(x, locs, scales), axis=-1)


def reference_cdf(x, logits, locs, scales):
    return np.sum(
        softmax(logits, axis=-1) * stats.norm.cdf(np.asarray(x)[..., None], locs, scales), -1
    )


def reference_inverse_cdf(u, logits, locs, scales):
    bound = np.max(np.abs(locs)) + 40 * np.max(scales)
    root = lambda z: reference_cdf(z, logits, locs, scales) - u
    return optimize.brentq(root, -bound, bound, xtol=1e-14, rtol=1e-15)


def _with(params, index, value):
    params = list(params)
    params[index] = value
    return tuple(params)


# ------------------------------------------------------------------ layer 1: identity
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sample_is_transform_of_noise_bit_for_bit(dtype):
    params = tuple(jnp.asarray(p, dtype) for p in PARAMS)
    key = jax.random.key(30)
    event = normal_mixture.noise_event_shape(*params)
    assert event == (4,)
    with jax.debug_key_reuse(False):
        z = normal_mixture.sample(key, *params, sample_shape=(4,))
        eps = normal_mixture.noise(key, (4, 3, *event), dtype)
    assert z.shape == (4, 3) and z.dtype == dtype and eps.dtype == dtype
    np.testing.assert_array_equal(np.asarray(normal_mixture.transform(eps, *params)), np.asarray(z))


def test_noise_is_gumbels_then_a_normal():
    eps = np.asarray(normal_mixture.noise(jax.random.key(31), (50_000, 3), jnp.float64))
    assert stats.kstest(eps[:, 0], stats.gumbel_r.cdf).pvalue > 1e-4
    assert stats.kstest(eps[:, 1], stats.gumbel_r.cdf).pvalue > 1e-4
    assert stats.kstest(eps[:, 2], stats.norm.cdf).pvalue > 1e-4
    with pytest.raises(ValueError, match="K \\+ 1"):
        normal_mixture.noise(jax.random.key(31), (5, 1))


def test_transform_rejects_noise_of_the_wrong_size():
    eps = normal_mixture.noise(jax.random.key(32), (3, 3))  # K + 1 = 3, but K = 3 needs 4
    with pytest.raises(ValueError, match="`eps`"):
        normal_mixture.transform(eps, *PARAMS)


# ------------------------------------------------------------------ layer 2: local derivatives
def test_derivative_in_the_normal_noise_is_pathwise():
    """At fixed parameters ε ↦ z is loc_k* + scale_k*·n: check_grads applies in n."""
    eps = normal_mixture.noise(jax.random.key(33), (5, 3, 4), jnp.float64)
    gumbels = eps[..., :-1]
    transform_of_normal = jax.jit(
        lambda n: normal_mixture.transform(jnp.concatenate([gumbels, n[..., None]], -1), *PARAMS)
    )
    check_grads(transform_of_normal, (eps[..., -1],), order=1, modes=("fwd", "rev"), eps=1e-6)


@jax.jit
def _draw_and_jacobians(params):
    """16 draws of one mixture and their Jacobians in every parameter. Jitted, the parameters
    passed as arguments: one program for every row and parametrization (op by op, jacfwd
    compiled dozens of small programs per parameter)."""
    draw = lambda ps: normal_mixture.sample(jax.random.key(34), *ps, sample_shape=(16,))
    return draw(params), jax.jacfwd(draw)(params)


@pytest.mark.parametrize("index", [0, 1, 2], ids=["logits", "locs", "scales"])
def test_implicit_jacobian_matches_cdf_finite_differences(index):
    """dz/dθⱼ = −(∂F/∂θⱼ)/p(z) for every component j, F by central differences (numpy)."""
    n = 16
    for row in range(3):
        params = tuple(p[row] for p in PARAMS)
        with jax.debug_key_reuse(False):
            z, jacobians = _draw_and_jacobians(tuple(jnp.asarray(p) for p in params))
        z = np.asarray(z)
        jacobian = np.asarray(jacobians[index])  # (n, K)
        assert z.shape == (n,) and jacobian.shape == (n, 3)
        pdf = np.exp(reference_log_prob(z, *params))
        reference = np.empty_like(jacobian)
        step = 1e-6
        for j in range(3):
            up, down = params[index].copy(), params[index].copy()
            up[j] += step
            down[j] -= step
            d_cdf = reference_cdf(z, *_with(params, index, up)) - reference_cdf(
                z, *_with(params, index, down)
            )
            reference[:, j] = -d_cdf / (2 * step) / pdf
        np.testing.assert_allclose(
            jacobian, reference, rtol=1e-5, atol=1e-6 * np.abs(reference).max(), err_msg=f"{row}"
        )


@jax.jit
def _draw_and_second_derivative(params, directions):
    """4 draws z(t) at t = 0 and d²z/dt², every parameter moved along its direction. Jitted, the
    directions passed as arguments (zero but for the parameter under test): one program for
    the three parametrizations (op by op, the nested jvp compiled dozens of small programs)."""

    def draw(t):
        moved = tuple(p + t * v for p, v in zip(params, directions, strict=True))
        return normal_mixture.sample(jax.random.key(35), *moved, (4,))

    first = lambda t: jax.jvp(draw, (t,), (jnp.ones_like(t),))[1]
    zero = jnp.zeros((), params[0].dtype)
    return draw(zero), jax.jvp(first, (zero,), (jnp.ones_like(zero),))[1]


@pytest.mark.parametrize("index", [0, 1, 2], ids=["logits", "locs", "scales"])
def test_second_derivative_follows_the_inverse_cdf(index):
    """d²z/dθ² at fixed u = F(z) against second differences of F⁻¹(u; θ) (root finding)."""
    params = tuple(p[0] for p in PARAMS)
    n = 4
    direction = jnp.asarray([1.0, -0.5, 0.25])  # a direction through all three components
    directions = _with([jnp.zeros(3)] * 3, index, direction)  # only parameter `index` moves
    with jax.debug_key_reuse(False):
        z, second = _draw_and_second_derivative(tuple(jnp.asarray(p) for p in params), directions)
    z, second = np.asarray(z), np.asarray(second)
    assert z.shape == second.shape == (n,)
    step = 1e-3
    moved = lambda t: _with(params, index, params[index] + t * np.asarray(direction))
    for value, d2 in zip(z, second, strict=True):
        u = reference_cdf(value, *params)
        up = reference_inverse_cdf(u, *moved(step))
        down = reference_inverse_cdf(u, *moved(-step))
        np.testing.assert_allclose(d2, (up - 2 * value + down) / step**2, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------ layer 3: global MC gradients
@functools.cache
def _per_sample_gradients() -> dict[str, tuple[np.ndarray, ...]]:
    """∂f(z_n)/∂θ for every element of every parameter: params broadcast to (N, K), row n → z_n.

    For all four f at once: the Jacobian of (Σ_n f(z_n))_f, one row per f (jacrev: the reverse
    pass of each f's sum), in one program that draws the samples once (one program per f drew
    them four times and compiled the sampler four times).
    """
    names = list(TEST_FUNCTIONS)

    @jax.jit
    def grads(params):
        def totals(ps):
            z = normal_mixture.sample(jax.random.key(36), *ps)
            return jnp.stack([jnp.sum(TEST_FUNCTIONS[name](z)) for name in names])

        return jax.jacrev(totals)(params)  # each (len(names), N, K)

    batched = tuple(jnp.broadcast_to(jnp.asarray(p), (MC_SAMPLES, p.size)) for p in MC_PARAMS)
    jacobians = [np.asarray(g) for g in grads(batched)]
    return {name: tuple(g[row] for g in jacobians) for row, name in enumerate(names)}


@pytest.mark.parametrize("f_name", list(TEST_FUNCTIONS))
@pytest.mark.parametrize("element", [0, 1])
@pytest.mark.parametrize("index", [0, 1, 2], ids=["logits", "locs", "scales"])
def test_monte_carlo_gradient_matches_quadrature(index, element, f_name):
    per_sample = _per_sample_gradients()[f_name][index][:, element]
    assert np.all(np.isfinite(per_sample)), "non-finite per-sample gradient"
    estimate = per_sample.mean()
    standard_error = per_sample.std(ddof=1) / np.sqrt(per_sample.size)
    value = MC_PARAMS[index][element]
    step = 1e-4 * max(1.0, abs(value))
    up, down = MC_PARAMS[index].copy(), MC_PARAMS[index].copy()
    up[element] += step
    down[element] -= step
    f = TEST_FUNCTIONS[f_name]
    reference = (
        expectation(f, _with(MC_PARAMS, index, up)) - expectation(f, _with(MC_PARAMS, index, down))
    ) / (2 * step)
    tolerance = 5.0 * standard_error + 1e-6 * (1 + abs(reference))
    assert abs(estimate - reference) <= tolerance, (
        f"MC {estimate:.6g} ± {standard_error:.2g} vs quadrature {reference:.6g}"
    )


# ------------------------------------------------------------------ layer 4: distribution
def test_log_prob_and_cdf_match_the_reference():
    with jax.debug_key_reuse(False):
        x = np.asarray(normal_mixture.sample(jax.random.key(37), *PARAMS, sample_shape=(7,)))
    x = np.concatenate([x, np.full((1, 3), 60.0), np.full((1, 3), -45.0)])  # and far tails
    np.testing.assert_allclose(
        np.asarray(normal_mixture.log_prob(x, *PARAMS)), reference_log_prob(x, *PARAMS), rtol=1e-12
    )
    np.testing.assert_allclose(
        np.asarray(normal_mixture.cdf(x, *PARAMS)),
        reference_cdf(x, *PARAMS),
        rtol=1e-12,
        atol=1e-15,
    )


def test_samples_follow_the_mixture_cdf():
    z = np.asarray(normal_mixture.sample(jax.random.key(38), *PARAMS, sample_shape=(20_000,)))
    for row in range(3):
        params = tuple(p[row] for p in PARAMS)
        p_value = stats.kstest(z[:, row], lambda x: reference_cdf(x, *params)).pvalue
        assert p_value > 1e-4, f"KS p={p_value:.2g} for mixture {row}"


def test_mean_and_variance_match_quadrature():
    mean = np.asarray(normal_mixture.mean(*PARAMS))
    variance = np.asarray(normal_mixture.variance(*PARAMS))
    for row in range(3):
        params = tuple(p[row] for p in PARAMS)
        first = expectation(TEST_FUNCTIONS["z"], params)
        second = expectation(TEST_FUNCTIONS["z2"], params)
        np.testing.assert_allclose(mean[row], first, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(variance[row], second - first**2, rtol=1e-9)


# ------------------------------------------------------------------ shapes of the component axis
def test_size_one_component_axes_broadcast():
    key = jax.random.key(39)
    logits, locs = np.array([0.5, -0.5, 1.0]), np.array([-2.0, 0.0, 2.0])
    with jax.debug_key_reuse(False):
        shared = normal_mixture.sample(key, logits, locs, np.array([0.7]), (6,))
        spelled = normal_mixture.sample(key, logits, locs, np.full(3, 0.7), (6,))
        np.testing.assert_array_equal(np.asarray(shared), np.asarray(spelled))
        # One logit for all components means equal weights.
        equal = normal_mixture.log_prob(0.3, np.array([4.0]), locs, 1.0 + 0 * locs)
        np.testing.assert_allclose(
            np.asarray(equal), reference_log_prob(0.3, np.zeros(3), locs, np.ones(3)), rtol=1e-12
        )
    with pytest.raises(ValueError, match="do not broadcast"):
        normal_mixture.sample(key, np.zeros(2), np.zeros(3), np.ones(3))


def test_batch_shape_excludes_the_component_axis():
    logits = np.zeros((4, 1, 3))
    locs = np.zeros((5, 3))
    z = normal_mixture.sample(jax.random.key(40), logits, locs, 1.0 + locs, sample_shape=(2,))
    assert z.shape == (2, 4, 5)
    assert normal_mixture.log_prob(z, logits, locs, 1.0 + locs).shape == (2, 4, 5)
    assert normal_mixture.mean(logits, locs, 1.0 + locs).shape == (4, 5)


def test_switched_off_component_is_never_drawn_and_gradients_stay_finite():
    logits, locs, scales = np.array([0.0, -np.inf]), np.array([0.0, 100.0]), np.ones(2)

    @jax.jit  # one program (op by op, the gradient compiled dozens of small ones)
    def sample_and_grads(ps):
        total = lambda ps: jnp.sum(normal_mixture.sample(jax.random.key(41), *ps, (1000,)))
        return normal_mixture.sample(jax.random.key(41), *ps, (1000,)), jax.grad(total)(ps)

    with jax.debug_key_reuse(False):
        z, grads = sample_and_grads(tuple(jnp.asarray(p) for p in (logits, locs, scales)))
    assert np.all(np.asarray(z) < 50)
    assert all(np.all(np.isfinite(np.asarray(g))) for g in grads)


# ------------------------------------------------------------------ layer 5: float32 extremes
def test_float32_extremes_give_finite_samples_and_gradients():
    params = (
        np.array([[-20.0, 0.0, 20.0], [0.0, 0.0, 0.0]], np.float32),
        np.array([[-1e4, 0.0, 1e4], [0.0, 1e-3, -1e-3]], np.float32),
        np.array([[1e-4, 1.0, 1e4], [1e-3, 1e3, 1.0]], np.float32),
    )

    @jax.jit
    def sample_and_grads(ps):
        total = lambda ps: jnp.sum(normal_mixture.sample(jax.random.key(42), *ps, (512,)))
        return normal_mixture.sample(jax.random.key(42), *ps, (512,)), jax.grad(total)(ps)

    with jax.debug_key_reuse(False):
        z, grads = sample_and_grads(tuple(jnp.asarray(p) for p in params))
    assert z.dtype == jnp.float32
    for leaf in (z, *grads):
        assert np.all(np.isfinite(np.asarray(leaf)))
