"""multivariate_normal_mixture: the layers the generic harness cannot run for it.

The spec (tests/specs/multivariate_normal_mixture.py) runs identity, check_grads on log_prob,
dtypes, jit/vmap/grad, bad parameters and hypothesis extremes in tests/test_families.py. Here:
log_prob vs scipy.stats.multivariate_normal; moments in closed form and of samples; KS of
marginals and a projection (1-D normal mixtures); the implicit Jacobian per draw against
−J_z⁻¹ J_θ from central differences of the conditional CDFs (the Rosenblatt map, written
independently with Schur complements), and its second derivative against the inverse Rosenblatt
map (root finding); Monte-Carlo gradients of E[f(z)] for f = z, z zᵀ and exp(−|z|²) with
respect to every entry of every parameter against the exact gradient of closed forms within 5
standard errors; d = 1 against normal_mixture; switched-off components; float32 extremes; shape
errors.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize, stats
from scipy.special import logsumexp, softmax

from reparam import multivariate_normal_mixture as mixture
from reparam import normal_mixture
from tests.specs import normal_mixture as normal_mixture_spec
from tests.specs.multivariate_normal_mixture import LOCS, LOGITS, SCALE_TRILS

PARAMS = (LOGITS, LOCS, SCALE_TRILS)  # a batch of 3 mixtures, K = 2 components in d = 3
NAMES = mixture.PARAMS
Z_THRESHOLD = 5.0
MC_SAMPLES = 100_000


def _jparams(params=PARAMS, dtype=jnp.float64):
    return tuple(jnp.asarray(p, dtype) for p in params)


def _row(b):
    return tuple(p[b] for p in PARAMS)


# ------------------------------------------------------------------ numpy/scipy reference
def _covariances(scale_trils):
    tril = np.tril(scale_trils)
    return tril @ np.swapaxes(tril, -1, -2)


def reference_log_prob(x, logits, locs, scale_trils):
    """log Σₖ wₖ N(x; locsₖ, Σₖ) for one mixture, from scipy's densities."""
    sigmas = _covariances(scale_trils)
    log_w = logits - logsumexp(logits)
    components = [
        log_w[k] + stats.multivariate_normal(locs[k], sigmas[k]).logpdf(x)
        for k in range(len(logits))
    ]
    return logsumexp(np.stack(components), axis=0)


def reference_moments(logits, locs, scale_trils):
    """(mean, covariance) of one mixture: Σ w μ and Σ w (Σₖ + μₖμₖᵀ) − mean meanᵀ."""
    w = softmax(logits)
    mean = w @ locs
    second = np.einsum("k,kij->ij", w, _covariances(scale_trils) + locs[:, :, None] * locs[:, None])
    return mean, second - np.outer(mean, mean)


def conditional_cdf(j, z, logits, locs, scale_trils):
    """F_j(z_j | z_<j) for draws z (n, ≥ j + 1) of one mixture: the conditional of component k by
    the Schur complement of Σₖ (not the Cholesky shortcut the library uses), its weight
    ∝ wₖ N(z_<j; μₖ,<j, Σₖ,<j<j)."""
    n = z.shape[0]
    log_weights, cdfs = [], []
    for mu, sigma, log_w in zip(
        locs, _covariances(scale_trils), np.log(softmax(logits)), strict=True
    ):
        if j == 0:
            log_marginal, mean, var = np.zeros(n), np.full(n, mu[0]), sigma[0, 0]
        else:
            earlier, cross = sigma[:j, :j], sigma[j, :j]
            log_marginal = np.reshape(
                stats.multivariate_normal(mu[:j], earlier).logpdf(z[:, :j]), n
            )
            coefficients = np.linalg.solve(earlier, cross)
            mean = mu[j] + (z[:, :j] - mu[:j]) @ coefficients
            var = sigma[j, j] - cross @ coefficients
        log_weights.append(log_w + log_marginal)
        cdfs.append(stats.norm.cdf(z[:, j], mean, np.sqrt(var)))
    return np.sum(softmax(np.stack(log_weights), axis=0) * np.stack(cdfs), axis=0)


def rosenblatt(z, *params):
    """u = (F_1(z_1), F_2(z_2 | z_1), …) for draws z (n, d); uniform on [0, 1]^d if z is drawn."""
    return np.stack([conditional_cdf(j, z, *params) for j in range(z.shape[-1])], axis=-1)


def inverse_rosenblatt(u, *params):
    """z with rosenblatt(z) = u for one u (d,): coordinate by coordinate, by root finding."""
    z = np.zeros((1, u.size))
    for j in range(u.size):

        def residual(value, j=j):
            z[0, j] = value
            return conditional_cdf(j, z, *params)[0] - u[j]

        z[0, j] = optimize.brentq(residual, -60.0, 60.0, xtol=1e-14, rtol=1e-15)
    return z[0]


def reference_mixture_cdf(x, weights, locs, scales):
    return np.sum(weights * stats.norm.cdf(np.asarray(x)[..., None], locs, scales), axis=-1)


# ------------------------------------------------------------------ noise and identity
def test_noise_is_normals_then_a_uniform_and_transform_checks_its_size():
    eps = np.asarray(mixture.noise(jax.random.key(50), (20_000, 3), jnp.float64))
    assert stats.kstest(eps[:, 0], stats.norm.cdf).pvalue > 1e-4
    assert stats.kstest(eps[:, 1], stats.norm.cdf).pvalue > 1e-4
    assert stats.kstest(eps[:, 2], stats.uniform.cdf).pvalue > 1e-4
    with pytest.raises(ValueError, match="d \\+ 1"):
        mixture.noise(jax.random.key(50), (5, 1))
    assert mixture.noise_shape((2,), *PARAMS) == (2, 3, 4)
    with pytest.raises(ValueError, match="`eps` must have shape"):
        mixture.transform(np.zeros((3, 3)), *PARAMS)  # d + 1 = 4 needed


# ------------------------------------------------------------------ distribution
def test_log_prob_matches_scipy_and_sample_and_log_prob_reuses_the_draw():
    params = _jparams()
    with jax.debug_key_reuse(False):
        z, log_p = mixture.sample_and_log_prob(jax.random.key(51), *params, sample_shape=(6,))
        np.testing.assert_array_equal(
            np.asarray(z), np.asarray(mixture.sample(jax.random.key(51), *params, (6,)))
        )
    far = LOCS[:, 0] + np.array([30.0, -25.0, 40.0])  # deep in every component's tail
    x = np.concatenate([np.asarray(z), far[None]])  # (7, 3, 3)
    got = np.asarray(mixture.log_prob(x, *params))
    np.testing.assert_allclose(got[:-1], np.asarray(log_p), rtol=1e-12)
    for b in range(3):
        np.testing.assert_allclose(got[:, b], reference_log_prob(x[:, b], *_row(b)), rtol=1e-10)


@pytest.fixture(scope="module")
def draws() -> np.ndarray:
    return np.asarray(mixture.sample(jax.random.key(52), *_jparams(), sample_shape=(20_000,)))


def test_moments_match_closed_forms_and_samples(draws):
    # One program for the three moments (op by op they compiled ~40 small ones).
    moments = jax.jit(
        lambda ps: (mixture.mean(*ps), mixture.covariance(*ps), mixture.variance(*ps))
    )
    mean, covariance, variance = (np.asarray(m) for m in moments(_jparams()))
    np.testing.assert_allclose(variance, np.diagonal(covariance, axis1=-2, axis2=-1))
    n = draws.shape[0]
    for b in range(3):
        reference_mean, reference_covariance = reference_moments(*_row(b))
        np.testing.assert_allclose(mean[b], reference_mean, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(covariance[b], reference_covariance, rtol=1e-12, atol=1e-14)
        # Sample mean and covariance within 5 standard errors (per entry, from the draws).
        z = draws[:, b]
        centred = z - reference_mean
        products = centred[:, :, None] * centred[:, None, :]
        error = np.abs(z.mean(0) - reference_mean) / (z.std(0, ddof=1) / np.sqrt(n))
        assert np.all(error < Z_THRESHOLD), (b, error)
        error = np.abs(products.mean(0) - reference_covariance) / (
            products.std(0, ddof=1) / np.sqrt(n)
        )
        assert np.all(error < Z_THRESHOLD), (b, error)


def test_marginals_and_a_projection_follow_the_mixture_cdf(draws):
    """KS with fixed keys, p > 1e-4: z_i and uᵀz are 1-D normal mixtures with the same weights."""
    u = np.array([1.0, -0.7, 0.4])  # mixes coordinates: sensitive to the correlations
    for b in range(3):
        logits, locs, scale_trils = _row(b)
        weights, sigmas = softmax(logits), _covariances(scale_trils)
        for i in range(3):
            marginal = lambda x: reference_mixture_cdf(
                x, weights, locs[:, i], np.sqrt(sigmas[:, i, i])
            )
            assert stats.kstest(draws[:, b, i], marginal).pvalue > 1e-4, (b, i)
        scales = np.sqrt(np.einsum("i,kij,j->k", u, sigmas, u))
        projected = lambda x: reference_mixture_cdf(x, weights, locs @ u, scales)
        assert stats.kstest(draws[:, b] @ u, projected).pvalue > 1e-4, b


# ------------------------------------------------------------------ implicit Jacobian
def test_implicit_jacobian_matches_conditional_cdf_finite_differences():
    """dz/dθ = −J_z⁻¹ J_θ per draw, J_z = ∂u/∂z and J_θ = ∂u/∂θ of the Rosenblatt map u(z; θ)
    by central differences, for every entry of every parameter of the three mixtures (the
    upper triangles of scale_trils are not read: exactly zero)."""
    n, step = 8, 1e-6
    draw = lambda ps: mixture.sample(jax.random.key(53), *ps, sample_shape=(n,))
    # One program for the draws and their Jacobians (the eager draw compiled its own pieces).
    draws_and_jacobians = jax.jit(lambda ps: (draw(ps), jax.jacfwd(draw)(ps)))
    with jax.debug_key_reuse(False):
        z, jacobians = draws_and_jacobians(_jparams())  # (n, 3, d); (n, 3, d) + param shape
    z = np.asarray(z)
    for b in range(3):
        params = _row(b)
        z_b = z[:, b]
        d = z_b.shape[-1]
        j_z = np.empty((n, d, d))
        for i in range(d):
            up, down = z_b.copy(), z_b.copy()
            up[:, i] += step
            down[:, i] -= step
            j_z[:, :, i] = (rosenblatt(up, *params) - rosenblatt(down, *params)) / (2 * step)
        for index, name in enumerate(NAMES):
            got = np.asarray(jacobians[index])[:, b, :, b]  # (n, d) + this mixture's shape
            reference = np.zeros_like(got)
            entries = np.ndindex(params[index].shape)
            for entry in entries:
                if index == 2 and entry[-1] > entry[-2]:
                    continue  # above the diagonal: reference 0
                up, down = [p.copy() for p in params], [p.copy() for p in params]
                up[index][entry] += step
                down[index][entry] -= step
                j_theta = (rosenblatt(z_b, *up) - rosenblatt(z_b, *down)) / (2 * step)
                reference[(slice(None), slice(None), *entry)] = -np.linalg.solve(
                    j_z, j_theta[..., None]
                )[..., 0]
            np.testing.assert_allclose(
                got, reference, rtol=1e-5, atol=1e-6 * np.abs(reference).max(), err_msg=name
            )
            if index == 2:
                upper = np.triu(np.ones((d, d), bool), k=1)
                np.testing.assert_array_equal(got[..., upper], 0.0)


def test_second_derivative_follows_the_inverse_rosenblatt_map():
    """d²z/dt² along one direction through every parameter entry, at fixed u = rosenblatt(z),
    against second differences of the inverse Rosenblatt map (root finding per coordinate)."""
    params = _row(0)
    directions = (
        np.array([1.0, -0.5]),
        np.array([[0.3, -0.2, 0.5], [-0.4, 0.1, 0.2]]),
        np.tril(np.array([[[0.2, 0, 0], [0.3, -0.1, 0], [0.1, 0.2, 0.3]]] * 2))
        * [[[1.0]], [[-0.5]]],
    )
    n = 4

    def draw(t):
        moved = tuple(jnp.asarray(p) + t * v for p, v in zip(params, directions, strict=True))
        return mixture.sample(jax.random.key(60), *moved, sample_shape=(n,))

    first = lambda t: jax.jvp(draw, (t,), (jnp.ones_like(t),))[1]
    # One program for the draws and their second derivative (the eager draw compiled its own).
    draw_and_second = jax.jit(lambda t: (draw(t), jax.jvp(first, (t,), (jnp.ones_like(t),))[1]))
    with jax.debug_key_reuse(False):
        z, second = (np.asarray(a) for a in draw_and_second(jnp.zeros(())))
    step = 1e-3
    moved = lambda t: tuple(p + t * v for p, v in zip(params, directions, strict=True))
    u = rosenblatt(z, *params)
    for row in range(n):
        up = inverse_rosenblatt(u[row], *moved(step))
        down = inverse_rosenblatt(u[row], *moved(-step))
        reference = (up - 2 * z[row] + down) / step**2
        np.testing.assert_allclose(second[row], reference, rtol=1e-4, atol=1e-5, err_msg=f"{row}")


# ------------------------------------------------------------------ global MC gradients
def _statistics(z):
    """(..., d) -> (..., d + d(d+1)/2 + 1): z_i, z_i z_j for i ≤ j, and exp(−|z|²)."""
    i, j = np.triu_indices(z.shape[-1])
    gauss = jnp.exp(-jnp.sum(z**2, axis=-1, keepdims=True))
    return jnp.concatenate([z, z[..., i] * z[..., j], gauss], axis=-1)


def _closed_form_statistics(logits, locs, scale_trils):
    """E of `_statistics` for one mixture, in closed form (jax, to differentiate exactly):
    E[z] = Σ w μ, E[z zᵀ] = Σ w (Σₖ + μμᵀ), and per component
    E[exp(−|z|²)] = det(I + 2Σ)^(−1/2) exp(−μᵀ(2Σ + I)⁻¹μ)."""
    w = jax.nn.softmax(logits)
    tril = jnp.tril(scale_trils)
    sigmas = tril @ jnp.swapaxes(tril, -1, -2)
    d = locs.shape[-1]
    i, j = np.triu_indices(d)
    first = w @ locs
    second = jnp.einsum("k,kij->ij", w, sigmas + locs[:, :, None] * locs[:, None, :])[i, j]
    widened = jnp.eye(d) + 2 * sigmas
    quadratic = jnp.einsum("ki,ki->k", locs, jnp.linalg.solve(widened, locs[..., None])[..., 0])
    gauss = w @ (jnp.linalg.det(widened) ** -0.5 * jnp.exp(-quadratic))
    return jnp.concatenate([first, second, gauss[None]])


def test_monte_carlo_gradients_match_closed_forms():
    """Per-sample ∂f(z_n)/∂θ for every entry of every parameter (mixture 0 of the spec): each
    parameter is broadcast to (N, ...) so draw n sees its own copy, and the Jacobian of
    Σ_n f(z_n) with respect to the copies holds the per-sample gradients."""
    theta = _jparams(_row(0))

    @jax.jit  # the copies are made inside: no eager broadcast per parameter shape
    def per_sample(theta):
        copies = tuple(jnp.broadcast_to(p, (MC_SAMPLES, *p.shape)) for p in theta)
        total = lambda ps: jnp.sum(_statistics(mixture.sample(jax.random.key(54), *ps)), axis=0)
        return jax.jacrev(total)(copies)

    jacobians = per_sample(theta)  # each (m, N) + param shape
    # Jitted: op by op, the Jacobian of the closed forms compiles about a hundred small programs.
    references = jax.jit(jax.jacrev(_closed_form_statistics, argnums=(0, 1, 2)))(*theta)
    for name, jacobian, reference in zip(NAMES, jacobians, references, strict=True):
        jacobian = np.asarray(jacobian)
        assert np.all(np.isfinite(jacobian)), name
        estimate = jacobian.mean(axis=1)
        standard_error = jacobian.std(axis=1, ddof=1) / np.sqrt(MC_SAMPLES)
        reference = np.asarray(reference)
        tolerance = Z_THRESHOLD * standard_error + 1e-9 * (1 + np.abs(reference))
        worst = np.max(np.abs(estimate - reference) / tolerance)
        assert worst <= 1.0, f"d/d{name}: MC {estimate} ± {standard_error} vs {reference}"


# ------------------------------------------------------------------ d = 1 is normal_mixture
def test_one_dimension_agrees_with_normal_mixture():
    """Same densities and moments; the same draw gets the same implicit gradient. normal_mixture
    picks the component with Gumbels, this family with a uniform: ε = (n, u) is built with u in
    the middle of the bin of normal_mixture's component, so both draw the same z."""
    logits, locs, scales = (
        normal_mixture_spec.LOGITS,
        normal_mixture_spec.LOCS,
        (normal_mixture_spec.SCALES),
    )
    lifted = (logits, locs[..., None], scales[..., None, None])
    x = np.linspace(-4.0, 5.0, 7)[:, None] + np.zeros((1, 3))

    @jax.jit  # one program for both families' densities and moments (op by op: ~30 programs)
    def densities_and_moments(x, params, lifted):
        return (
            (mixture.log_prob(x[..., None], *lifted), normal_mixture.log_prob(x, *params)),
            (mixture.mean(*lifted)[..., 0], normal_mixture.mean(*params)),
            (mixture.variance(*lifted)[..., 0], normal_mixture.variance(*params)),
        )

    for many, one in densities_and_moments(x, (logits, locs, scales), lifted):
        np.testing.assert_allclose(np.asarray(many), np.asarray(one), rtol=1e-12)
    eps = np.asarray(normal_mixture.noise(jax.random.key(55), (16, 3, 4), jnp.float64))
    chosen = np.argmax(logits + eps[..., :3], axis=-1)  # (16, 3)
    weights = softmax(logits, axis=-1)
    middle = np.cumsum(weights, axis=-1) - weights / 2
    u = np.take_along_axis(np.broadcast_to(middle, (16, 3, 3)), chosen[..., None], axis=-1)
    lifted_eps = np.concatenate([eps[..., 3:], u], axis=-1)  # (16, 3, 2)

    @jax.jit  # one program for both draws and both Jacobians
    def draws_and_jacobians(eps, params, lifted_eps, lifted):
        derivative_1d = jax.jacfwd(normal_mixture.transform, argnums=(1, 2, 3))
        derivative_nd = jax.jacfwd(mixture.transform, argnums=(1, 2, 3))
        return (
            normal_mixture.transform(eps, *params),
            mixture.transform(lifted_eps, *lifted)[..., 0],
            derivative_1d(eps, *params),
            derivative_nd(lifted_eps, *lifted),
        )

    z, z_lifted, jacobians, lifted_jacobians = draws_and_jacobians(
        eps, (logits, locs, scales), lifted_eps, lifted
    )
    np.testing.assert_allclose(np.asarray(z_lifted), np.asarray(z), rtol=1e-15)
    for name, one, many in zip(NAMES, jacobians, lifted_jacobians, strict=True):
        np.testing.assert_allclose(
            np.reshape(np.asarray(many), np.shape(one)),
            np.asarray(one),
            rtol=1e-10,
            atol=1e-13,
            err_msg=name,
        )


# ------------------------------------------------------------------ shapes and components
def test_switched_off_component_is_never_drawn_and_gradients_stay_finite():
    """Component 1 sits at 100 with logit −inf (row 0) or −1e4 (row 1): never drawn."""
    logits = np.array([[0.0, -np.inf], [0.0, -1e4]])
    locs = np.broadcast_to(np.array([[0.0, 0.0, 0.0], [100.0, 100.0, 100.0]]), (2, 2, 3))
    scale_trils = np.broadcast_to(SCALE_TRILS[0], (2, 2, 3, 3))
    params = _jparams((logits, locs, scale_trils))

    @jax.jit
    def sample_and_grads(ps):
        total = lambda ps: jnp.sum(mixture.sample(jax.random.key(56), *ps, (1000,)))
        return mixture.sample(jax.random.key(56), *ps, (1000,)), jax.grad(total)(ps)

    with jax.debug_key_reuse(False):
        z, grads = sample_and_grads(params)
    assert np.all(np.asarray(z) < 50)
    for name, grad in zip(NAMES, grads, strict=True):
        assert np.all(np.isfinite(np.asarray(grad))), name
    # Nothing was drawn from component 1, and its density is 0 where the draws are.
    np.testing.assert_array_equal(np.asarray(grads[1])[:, 1], 0.0)


def test_size_one_component_axes_and_batch_shapes_broadcast():
    key = jax.random.key(57)
    shared = SCALE_TRILS[0, :1]  # (1, 3, 3): one scale_tril for both components
    with jax.debug_key_reuse(False):
        a = mixture.sample(key, LOGITS[0], LOCS[0], shared, (5,))
        b = mixture.sample(key, LOGITS[0], LOCS[0], np.repeat(shared, 2, axis=0), (5,))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # One logit for all components means equal weights.
    np.testing.assert_allclose(
        np.asarray(mixture.log_prob(np.ones(3), np.array([4.0]), LOCS[0], SCALE_TRILS[0])),
        reference_log_prob(np.ones(3), np.zeros(2), LOCS[0], SCALE_TRILS[0]),
        rtol=1e-12,
    )
    logits = np.zeros((4, 1, 2))  # batch (4, 1) with the spec's batch (3,)
    z = mixture.sample(jax.random.key(58), logits, LOCS, SCALE_TRILS, sample_shape=(2,))
    assert z.shape == (2, 4, 3, 3)
    assert mixture.log_prob(z, logits, LOCS, SCALE_TRILS).shape == (2, 4, 3)
    assert mixture.mean(logits, LOCS, SCALE_TRILS).shape == (4, 3, 3)
    assert mixture.covariance(logits, LOCS, SCALE_TRILS).shape == (4, 3, 3, 3)


def test_float32_extremes_give_finite_samples_and_gradients():
    logits = np.array([[-20.0, 20.0], [0.0, 0.0]], np.float32)
    locs = np.array([[[-1e4, 0.0, 1e4], [1e4, 1.0, -1e4]], [[0.0, 1e-3, 0.0], [0.0, 0.0, -1e-3]]])
    diagonal = np.array([[[1e-4, 1.0, 1e3], [1e3, 1e-3, 1.0]], [[1e-3, 1e3, 1.0], [1.0, 1.0, 1e2]]])
    scale_trils = diagonal[..., None] * np.eye(3) + np.tril(np.full((3, 3), 0.5), k=-1)
    params = _jparams((logits, locs, scale_trils), jnp.float32)

    @jax.jit
    def sample_and_grads(ps):
        total = lambda ps: jnp.sum(mixture.sample(jax.random.key(59), *ps, (256,)))
        return mixture.sample(jax.random.key(59), *ps, (256,)), jax.grad(total)(ps)

    with jax.debug_key_reuse(False):
        z, grads = sample_and_grads(params)
    assert z.dtype == jnp.float32
    for leaf in (z, *grads):
        assert np.all(np.isfinite(np.asarray(leaf)))


@pytest.mark.parametrize(
    ("call", "name", "says"),
    [
        pytest.param(
            lambda: mixture.sample(jax.random.key(0), LOGITS, LOCS, SCALE_TRILS[..., :2]),
            "scale_trils",
            r"\(\.\.\., K, 3, 3\).*got shape \(3, 2, 3, 2\)",
            id="not-square",
        ),
        pytest.param(
            lambda: mixture.log_prob(np.zeros(3), np.zeros(3), LOCS, SCALE_TRILS),
            "logits",
            r"`logits` 3, `locs` 2, `scale_trils` 2",
            id="components",
        ),
        pytest.param(
            lambda: mixture.log_prob(np.zeros((3, 2)), *PARAMS),
            "x",
            r"\(\.\.\., 3\).*got shape \(3, 2\)",
            id="x",
        ),
        pytest.param(
            lambda: mixture.mean(LOGITS, LOCS[..., 0], SCALE_TRILS),
            "scale_trils",
            r"\(\.\.\., K, 2, 2\)",
            id="locs-without-event-axis",
        ),
    ],
)
def test_shape_errors_name_the_argument(call, name, says):
    with pytest.raises(ValueError, match=says) as info:
        call()
    assert str(info.value).startswith("reparam.multivariate_normal_mixture.")
    assert f"`{name}`" in str(info.value)
