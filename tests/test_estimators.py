"""Gradient estimators: unbiased against closed forms (5 standard errors, fixed keys), the IWAE
estimators' special properties (STL at the exact posterior, DReG's expectation), and bad input."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

from reparam import estimators, normal, weibull
from reparam.estimators import diagnostics

Z_THRESHOLD = 5.0  # |MC mean − exact| ≤ 5 standard errors; fixed keys, so deterministic
K = 4  # samples per estimate (≥ 2 for leave-one-out)
REPEATS = 20_000
LOC = jnp.array([0.3, 1.0, -0.7])  # includes the paper's μ = σ = 1
SCALE = jnp.array([1.2, 1.0, 0.5])
KAPPA = 1.0  # the k of the test functions

# The three test functions of Mohamed et al. (2020) and E_N(μ, σ²)[f] in closed form.
FUNCTIONS = {
    "quadratic": (
        lambda x: (x - KAPPA) ** 2,
        lambda mu, sigma: (mu - KAPPA) ** 2 + sigma**2,
    ),
    "gaussian": (
        lambda x: jnp.exp(-KAPPA * x**2),
        lambda mu, sigma: (
            jnp.exp(-KAPPA * mu**2 / (1 + 2 * KAPPA * sigma**2))
            / jnp.sqrt(1 + 2 * KAPPA * sigma**2)
        ),
    ),
    "cosine": (
        lambda x: jnp.cos(KAPPA * x),
        lambda mu, sigma: jnp.cos(KAPPA * mu) * jnp.exp(-(KAPPA**2) * sigma**2 / 2),
    ),
}


def exact_gradient(name: str, loc=LOC, scale=SCALE):
    expectation = FUNCTIONS[name][1]
    return jax.grad(lambda p: jnp.sum(expectation(*p)))((loc, scale))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_closed_forms_match_quadrature(name):
    f, expectation = FUNCTIONS[name]
    for mu, sigma in zip(np.asarray(LOC), np.asarray(SCALE), strict=True):
        density = lambda x: (
            math.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
        )
        reference, _ = integrate.quad(lambda x: float(f(x)) * density(x), -np.inf, np.inf)
        np.testing.assert_allclose(float(expectation(mu, sigma)), reference, rtol=1e-8)


# All three functions at once, one per row of a (3 functions, 3 parameter sets) batch: one
# compilation per estimator instead of three.
NAMES = tuple(FUNCTIONS)
LOC3, SCALE3 = jnp.broadcast_to(LOC, (3, 3)), jnp.broadcast_to(SCALE, (3, 3))


def all_three(x):
    """x (..., 3, 3) -> row i through the i-th test function."""
    return jnp.stack([FUNCTIONS[name][0](x[..., i, :]) for i, name in enumerate(NAMES)], axis=-2)


@functools.cache  # shared by the tests that compare with it
def exact_gradients():
    return tuple(jnp.stack(g) for g in zip(*(exact_gradient(name) for name in NAMES), strict=True))


def _learned_control_variate(z):
    # Deliberately not optimal: any c(z) keeps LAX unbiased.
    return 0.4 * z + 0.2 * jnp.sin(z)


@functools.cache
def _ema_baseline():
    """A moving average after a few steps, from keys independent of the estimates'. Computed
    once, in one compiled program, rather than traced into every estimator that uses it."""

    def run():
        average = jnp.zeros((3, 3))
        for step in range(5):
            z = normal.sample(jax.random.key(1000 + step), LOC3, SCALE3, sample_shape=(8,))
            average = estimators.ema(average, all_three(z), decay=0.5)
        return average

    # Compiled ahead of time and called: a concrete array even when first called in a trace.
    return jax.jit(run).lower().compile()()


NORMAL_ESTIMATORS = {
    "pathwise": lambda k, p: estimators.pathwise(k, all_three, normal, p, K),
    "score_function": lambda k, p: estimators.score_function(k, all_three, normal, p, K),
    "score_constant": lambda k, p: estimators.score_function(
        k, all_three, normal, p, K, baseline=jnp.array([1.5, 0.2, -0.3])
    ),
    "score_ema": lambda k, p: estimators.score_function(
        k, all_three, normal, p, K, baseline=_ema_baseline()
    ),
    "score_leave_one_out": lambda k, p: estimators.score_function(
        k, all_three, normal, p, K, baseline="leave_one_out"
    ),
    "score_learned": lambda k, p: estimators.score_function(
        k, all_three, normal, p, K, baseline=_learned_control_variate
    ),
    "measure_valued": lambda k, p: estimators.measure_valued(k, all_three, *p, K),
    "measure_valued_uncoupled": lambda k, p: estimators.measure_valued(
        k, all_three, *p, K, coupled=False
    ),
}


def assert_unbiased(stats, exact, names, what=""):
    """|mean − exact| ≤ 5 standard errors elementwise, and a nonzero variance."""
    for which, mean, error, reference in zip(
        names, stats.mean, stats.std_error, exact, strict=True
    ):
        mean, error, reference = np.asarray(mean), np.asarray(error), np.asarray(reference)
        assert mean.shape == reference.shape, (what, which, mean.shape)
        assert np.all(error > 0), f"{what} ∇{which}: zero variance is suspicious here"
        np.testing.assert_array_less(
            np.abs(mean - reference),
            Z_THRESHOLD * error + 1e-9,
            err_msg=f"{what} ∇{which} (rows: {NAMES}): MC {mean} ± {error} vs exact {reference}",
        )


@pytest.mark.parametrize("estimator", NORMAL_ESTIMATORS)
def test_normal_estimators_are_unbiased_for_the_three_functions(estimator):
    stats = diagnostics.gradient_statistics(
        jax.random.key(1), NORMAL_ESTIMATORS[estimator], (LOC3, SCALE3), REPEATS
    )
    assert_unbiased(stats, exact_gradients(), ("loc", "scale"), estimator)


def test_surrogate_values_are_monte_carlo_estimates_of_the_objective():
    # Many samples: the value converges to E f (the DiCE-style value, not a zero-mean loss).
    f, expectation = FUNCTIONS["quadratic"]
    value = estimators.score_function(
        jax.random.key(2), f, normal, (LOC, SCALE), 200_000, baseline=1.0
    )
    np.testing.assert_allclose(np.asarray(value), np.asarray(expectation(LOC, SCALE)), rtol=0.02)


@pytest.mark.parametrize("estimator", ["pathwise", "score_function"])
def test_estimators_work_for_another_family(estimator):
    """∇ E_Weibull(λ, c)[z] against the gradient of weibull.mean (λ Γ(1 + 1/c))."""
    params = (jnp.array(1.5), jnp.array(2.5))
    make = getattr(estimators, estimator)
    stats = diagnostics.gradient_statistics(
        jax.random.key(3), lambda k, p: make(k, lambda z: z, weibull, p, K), params, REPEATS
    )
    exact = jax.grad(lambda p: weibull.mean(*p))(params)
    for mean, error, reference in zip(stats.mean, stats.std_error, exact, strict=True):
        assert abs(float(mean) - float(reference)) <= Z_THRESHOLD * float(error)


def test_score_function_sums_the_log_prob_over_axes_f_reduces():
    """A VAE-like shape: latents (B, d), one value per example (B,); ∇ as for independent f's."""
    loc = jnp.array([[0.3, 1.0], [-0.7, 0.2]])
    scale = jnp.array([[1.2, 1.0], [0.5, 0.8]])
    f = lambda z: jnp.sum((z - KAPPA) ** 2, axis=-1)
    stats = diagnostics.gradient_statistics(
        jax.random.key(4),
        lambda k, p: estimators.score_function(k, f, normal, p, K, baseline="leave_one_out"),
        (loc, scale),
        REPEATS,
    )
    exact = (2 * (loc - KAPPA), 2 * scale)
    for mean, error, reference in zip(stats.mean, stats.std_error, exact, strict=True):
        np.testing.assert_array_less(np.abs(mean - reference), Z_THRESHOLD * error)
    assert estimators.score_function(jax.random.key(5), f, normal, (loc, scale), K).shape == (2,)


def test_baselines_reduce_variance_on_the_quadratic():
    """One compiled run of the three score-function variants (a pytree of estimates)."""
    names = ("score_function", "score_leave_one_out", "score_ema")

    def estimate(key, params):
        keys = jax.random.split(key, len(names))
        return {
            name: jax.grad(lambda p, k=k, name=name: jnp.sum(NORMAL_ESTIMATORS[name](k, p)))(params)
            for name, k in zip(names, keys, strict=True)
        }

    variance = diagnostics.statistics(jax.random.key(6), estimate, 4_000, (LOC3, SCALE3)).variance
    for name in names[1:]:
        for i in range(2):  # row 0: (x − k)², whose mean is far from 0
            assert np.all(variance[name][i][0] < variance["score_function"][i][0]), (name, i)


def test_measure_valued_gradient_function_and_surrogate_agree():
    f = FUNCTIONS["cosine"][0]
    key = jax.random.key(7)
    with jax.debug_key_reuse(False):  # the same key on purpose: the same draws
        grad_loc, grad_scale, value = estimators.measure_valued_normal_grad(key, f, LOC, SCALE, 16)
        surrogate = lambda p: jnp.sum(estimators.measure_valued(key, f, *p, 16))
        g_loc, g_scale = jax.grad(surrogate)((LOC, SCALE))
        same_value = estimators.measure_valued(key, f, LOC, SCALE, 16)
        # A scalar loc shared by the batch gets the sum, like any broadcast parameter.
        g_shared = jax.grad(lambda m: jnp.sum(estimators.measure_valued(key, f, m, SCALE, 16)))(0.3)
        g_each, _, _ = estimators.measure_valued_normal_grad(key, f, jnp.full(3, 0.3), SCALE, 16)
    np.testing.assert_array_equal(np.asarray(g_loc), np.asarray(grad_loc))
    np.testing.assert_array_equal(np.asarray(g_scale), np.asarray(grad_scale))
    np.testing.assert_array_equal(np.asarray(same_value), np.asarray(value))
    np.testing.assert_allclose(float(g_shared), float(jnp.sum(g_each)), rtol=1e-12)


def test_learned_control_variate_is_differentiable_in_its_parameters():
    """∇φ mean_r Σ ĝ_r² from `estimate_and_variance_gradient` equals finite differences of the
    same fixed-key average: the control variate's parameters are not cut off by stop_gradient."""
    f = FUNCTIONS["cosine"][0]
    keys = lambda: jax.random.split(jax.random.key(8), 256)  # the same keys, fresh each use

    def surrogate_for(key):
        return lambda p, phi: estimators.score_function(
            key, f, normal, p, K, baseline=lambda z: phi[0] * z + phi[1] * z**2
        )

    def mean_squared(phi):
        def one(key):
            g = jax.grad(lambda p: jnp.sum(surrogate_for(key)(p, phi)))((LOC, SCALE))
            return sum(jnp.sum(x**2) for x in g)

        return jnp.mean(jax.vmap(one)(keys()))

    step = 1e-5

    @jax.jit  # the gradients and the four finite-difference points in one compiled program
    def gradients_and_differences(phi):
        grads = jax.vmap(
            lambda key: estimators.estimate_and_variance_gradient(
                surrogate_for(key), (LOC, SCALE), phi
            )[1]
        )(keys())
        fds = []
        for i in range(2):
            e = jnp.zeros(2).at[i].set(step)
            fds.append((mean_squared(phi + e) - mean_squared(phi - e)) / (2 * step))
        return grads, fds

    grads, fds = gradients_and_differences(jnp.array([0.3, -0.1]))
    for i in range(2):
        np.testing.assert_allclose(float(jnp.mean(grads[:, i])), float(fds[i]), rtol=1e-6)
    assert abs(float(jnp.mean(grads[:, 0]))) > 1e-3


# ---------------------------------------------------------------- IWAE: standard, STL, DReG
SIGMA_X = 0.7
X = jnp.array([0.5, -1.0, 2.0])


def conjugate_log_joint(prior_loc=0.0):
    """z ~ N(prior_loc, 1), x | z ~ N(z, σ²), one latent dimension per example."""

    def log_joint(z):
        return jnp.sum(
            normal.log_prob(z, prior_loc, 1.0) + normal.log_prob(X[:, None], z, SIGMA_X), axis=-1
        )

    return log_joint


def exact_posterior(prior_loc=0.0):
    precision = 1 + 1 / SIGMA_X**2
    loc = (prior_loc + X / SIGMA_X**2) / precision
    return loc[:, None], jnp.full((3, 1), 1 / math.sqrt(precision))


def test_standard_iwae_gradient_is_the_gradient_of_the_bound():
    key = jax.random.key(9)
    loc, scale = exact_posterior()
    loc, scale = loc + 0.3, scale * 1.4
    num_samples = 5

    def bound(params):
        prior_loc, loc, scale = params
        eps = normal.noise(key, (num_samples, *loc.shape), loc.dtype)
        z = loc + scale * eps
        log_q = jnp.sum(-0.5 * eps**2 - jnp.log(scale) - 0.5 * math.log(2 * math.pi), axis=-1)
        log_w = conjugate_log_joint(prior_loc)(z) - log_q
        return jax.scipy.special.logsumexp(log_w, axis=0) - math.log(num_samples)

    def surrogate(params):
        prior_loc, loc, scale = params
        return estimators.iwae_surrogate(
            key, conjugate_log_joint(prior_loc), loc, scale, num_samples
        )

    @jax.jit  # the values and both gradients in one compiled program, not op by op
    def values_and_gradients(params):
        value, reported = surrogate(params)
        expected = jax.grad(lambda p: jnp.sum(bound(p)))(params)
        got = jax.grad(lambda p: jnp.sum(surrogate(p)[0]))(params)
        return value, reported, bound(params), expected, got

    params = (jnp.array(0.2), loc, scale)
    with jax.debug_key_reuse(False):
        value, reported, by_hand, expected, got = values_and_gradients(params)
    np.testing.assert_allclose(np.asarray(value), np.asarray(by_hand), rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(value), np.asarray(reported))
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-12)


def test_one_sample_standard_is_the_elbo_with_a_monte_carlo_kl():
    loc, scale = exact_posterior()
    loc = loc - 0.5

    @jax.jit  # the estimator and the ELBO by hand in one compiled program, not op by op
    def value_and_elbo(key, loc, scale):
        value, _ = estimators.iwae_surrogate(key, conjugate_log_joint(), loc, scale, 1)
        z = normal.sample(key, loc, scale, sample_shape=(1,))
        return value, conjugate_log_joint()(z) - jnp.sum(normal.log_prob(z, loc, scale), axis=-1)

    with jax.debug_key_reuse(False):
        value, elbo = value_and_elbo(jax.random.key(10), loc, scale)
    np.testing.assert_allclose(np.asarray(value), np.asarray(elbo[0]), rtol=1e-12)


@pytest.mark.parametrize("num_samples", [1, 7])
def test_stl_and_dreg_encoder_gradients_vanish_at_the_exact_posterior(num_samples):
    """log w = log p(x) for every z when q is the posterior, so the path term is exactly zero;
    the standard estimator keeps its score term, which is not."""

    @jax.jit  # the three estimators' gradients in one compiled program, not op by op
    def all_grads(params):
        def grads(gradient):
            return jax.grad(
                lambda p: jnp.sum(
                    estimators.iwae_surrogate(
                        jax.random.key(11),
                        conjugate_log_joint(),
                        *p,
                        num_samples,
                        gradient=gradient,
                    )[0]
                )
            )(params)

        return {gradient: grads(gradient) for gradient in ("stl", "dreg", "standard")}

    grads = all_grads(exact_posterior())
    for gradient in ("stl", "dreg"):
        for g in grads[gradient]:
            np.testing.assert_allclose(np.asarray(g), 0.0, atol=1e-12, err_msg=gradient)
    assert np.abs(np.asarray(grads["standard"][1])).max() > 1e-2


@functools.cache
def _iwae_gradients(gradient, num_samples):
    """ĝ away from the posterior for REPEATS keys (the same keys and parameters for every
    estimator: paired). Cached: the standard estimator's K = 1 gradients serve two cases."""
    loc, scale = exact_posterior()
    params = (jnp.array(0.2), loc + 0.4, scale * 1.5)

    def estimate(key, params):
        prior_loc, loc, scale = params
        return jax.grad(
            lambda p: jnp.sum(
                estimators.iwae_surrogate(
                    key, conjugate_log_joint(p[0]), p[1], p[2], num_samples, gradient=gradient
                )[0]
            )
        )((prior_loc, loc, scale))

    keys = jax.random.split(jax.random.key(12), REPEATS)
    return jax.jit(jax.vmap(lambda k: estimate(k, params)))(keys)


@pytest.mark.parametrize(("gradient", "num_samples"), [("dreg", 5), ("dreg", 1), ("stl", 1)])
def test_expectation_equals_the_standard_iwae_gradient(gradient, num_samples):
    """Paired over the same keys: mean(ĝ − ĝ_standard) within 5 standard errors of 0, for the
    encoder (loc, scale) and the decoder (prior_loc, through the closure). STL is only unbiased
    for K = 1 (Tucker et al. 2018), so it is tested there."""
    other = _iwae_gradients(gradient, num_samples)
    standard = _iwae_gradients("standard", num_samples)
    for name, a, b in zip(("prior_loc", "loc", "scale"), other, standard, strict=True):
        diff = np.asarray(a - b)
        mean, error = diff.mean(axis=0), diff.std(axis=0, ddof=1) / math.sqrt(diff.shape[0])
        np.testing.assert_array_less(np.abs(mean), Z_THRESHOLD * error + 1e-12, err_msg=name)
        # ... and it is a different estimator (for the encoder), with lower variance.
        if name != "prior_loc":
            assert np.all(np.asarray(a).var(axis=0) < np.asarray(b).var(axis=0)), name
    if gradient == "dreg":  # the decoder term of DReG is the standard one, sample by sample
        np.testing.assert_allclose(np.asarray(other[0]), np.asarray(standard[0]), rtol=1e-10)


def test_dreg_is_unbiased_for_a_nonconjugate_decoder():
    """A decoder x | z ~ N(tanh(a z), σ²): DReG and standard agree in expectation in `a`, `loc`
    and `scale`, beyond the linear-Gaussian case."""
    x = jnp.array([0.4, -0.6])
    loc, scale = jnp.array([[0.2, -0.1], [0.5, 0.3]]), jnp.array([[0.8, 1.1], [0.6, 0.9]])

    def estimate(key, params, gradient):
        def total(p):
            a, loc, scale = p
            log_joint = lambda z: jnp.sum(
                normal.log_prob(z, 0.0, 1.0)
                + normal.log_prob(x[:, None], jnp.tanh(a * z), SIGMA_X),
                axis=-1,
            )
            return jnp.sum(
                estimators.iwae_surrogate(key, log_joint, loc, scale, 4, gradient=gradient)[0]
            )

        return jax.grad(total)(params)

    keys = lambda: jax.random.split(jax.random.key(13), REPEATS)  # paired: the same keys

    @jax.jit  # both estimators in one compiled program
    def both(params):
        dreg = jax.vmap(lambda k: estimate(k, params, "dreg"))(keys())
        return dreg, jax.vmap(lambda k: estimate(k, params, "standard"))(keys())

    dreg, standard = both((jnp.array(1.3), loc, scale))
    for a, b in zip(dreg, standard, strict=True):
        diff = np.asarray(a - b)
        mean, error = diff.mean(axis=0), diff.std(axis=0, ddof=1) / math.sqrt(diff.shape[0])
        np.testing.assert_array_less(np.abs(mean), Z_THRESHOLD * error + 1e-12)


# ---------------------------------------------------------------- discrete latents
LOGITS = jnp.array([-1.0, 0.3, 2.0])
LOGITS3 = jnp.broadcast_to(LOGITS, (3, 3))  # a row per test function, applied to b ∈ {0, 1}
CATEGORY_VALUES = jnp.array([-1.0, 0.5, 2.0])  # f(one-hot b) = f(b · values)
CATEGORICAL_LOGITS = jnp.broadcast_to(jnp.array([[0.2, -0.5, 1.0], [1.5, 0.0, -2.0]]), (3, 2, 3))


def bernoulli_exact():
    p = jax.nn.sigmoid(LOGITS3)
    return p * (1 - p) * (all_three(jnp.ones((3, 3))) - all_three(jnp.zeros((3, 3))))


def categorical_f(b):
    return all_three(jnp.sum(b * CATEGORY_VALUES, axis=-1))


def categorical_exact():
    theta = jax.nn.softmax(CATEGORICAL_LOGITS, axis=-1)
    # values[i, :, c] = f_i(CATEGORY_VALUES[c])
    values = jnp.stack([FUNCTIONS[name][0](CATEGORY_VALUES) for name in NAMES])[:, None, :]
    return theta * (values - jnp.sum(theta * values, axis=-1, keepdims=True))


DISCRETE_ESTIMATORS = {
    "bernoulli_score_function": lambda k, lg: estimators.relax(
        k, all_three, lg, K, lambda z: jnp.zeros_like(z)
    ),
    "bernoulli_relax": lambda k, lg: estimators.relax(
        k, all_three, lg, K, lambda z: 0.5 * jnp.tanh(z) + 0.3
    ),
    "bernoulli_rebar": lambda k, lg: estimators.rebar(k, all_three, lg, K, temperature=0.5),
    "categorical_relax": lambda k, lg: estimators.relax(
        k,
        categorical_f,
        lg,
        K,
        lambda z: 0.3 * jnp.sum(jnp.tanh(z), axis=-1),
        distribution="categorical",
    ),
    "categorical_rebar": lambda k, lg: estimators.rebar(
        k, categorical_f, lg, K, temperature=0.7, eta=0.8, distribution="categorical"
    ),
}


@pytest.mark.parametrize("estimator", DISCRETE_ESTIMATORS)
def test_discrete_estimators_are_unbiased_for_the_three_functions(estimator):
    categorical = estimator.startswith("categorical")
    logits = CATEGORICAL_LOGITS if categorical else LOGITS3
    exact = categorical_exact() if categorical else bernoulli_exact()
    stats = diagnostics.gradient_statistics(
        jax.random.key(14), DISCRETE_ESTIMATORS[estimator], logits, REPEATS
    )
    stats = stats._replace(mean=(stats.mean,), std_error=(stats.std_error,))
    assert_unbiased(stats, (exact,), ("logits",), estimator)


def test_learning_rebar_eta_and_temperature_lowers_its_variance():
    """A few Adam steps on ∇φ ĝ² (estimate_and_variance_gradient) from η = 1, λ = 0.5 lower
    REBAR's variance on Tucker et al.'s toy problem f(b) = (b − 0.45)²."""
    import optax

    f = lambda b: (b - 0.45) ** 2

    def surrogate(key, logits, phi):
        return estimators.rebar(key, f, logits, 1, eta=phi[0], temperature=jnp.exp(phi[1]))

    optimizer = optax.adam(0.05)

    @jax.jit
    def step(phi, state, key):
        keys = jax.random.split(key, 64)
        grads = jax.vmap(
            lambda k: estimators.estimate_and_variance_gradient(
                lambda lg, p: surrogate(k, lg, p), LOGITS, phi
            )[1]
        )(keys)
        updates, state = optimizer.update(jnp.mean(grads, axis=0), state)
        return optax.apply_updates(phi, updates), state

    def total_variance(phi):
        stats = diagnostics.gradient_statistics(
            jax.random.key(16), lambda k, lg: surrogate(k, lg, phi), LOGITS, 4_000
        )
        return float(jnp.sum(stats.variance))

    phi = jnp.array([1.0, math.log(0.5)])
    state = optimizer.init(phi)
    before = total_variance(phi)
    for i in range(60):
        phi, state = step(phi, state, jax.random.fold_in(jax.random.key(17), i))
    assert total_variance(phi) < 0.9 * before


def test_gumbel_softmax_is_pathwise_through_the_relaxed_family_and_straight_through_is_hard():
    from reparam import relaxed_categorical

    logits, temperature = CATEGORICAL_LOGITS[0], 0.5
    f = lambda x: jnp.sum(x * CATEGORY_VALUES, axis=-1) ** 2
    key = jax.random.key(18)
    with jax.debug_key_reuse(False):
        soft = jax.grad(lambda lg: jnp.sum(estimators.gumbel_softmax(key, f, lg, temperature, K)))(
            logits
        )
        reference = jax.grad(
            lambda lg: jnp.sum(
                jnp.mean(f(relaxed_categorical.sample(key, lg, temperature, sample_shape=(K,))), 0)
            )
        )(logits)
        np.testing.assert_array_equal(np.asarray(soft), np.asarray(reference))
        seen = []
        value = estimators.gumbel_softmax(
            key, lambda b: seen.append(b) or f(b), logits, temperature, K, straight_through=True
        )
    hard = np.asarray(seen[0])
    assert set(np.unique(hard)) == {0.0, 1.0} and np.all(hard.sum(-1) == 1)
    np.testing.assert_array_equal(np.asarray(value), np.asarray(f(hard)).mean(0))


def _binary_concrete_expectation(f, logit: float, temperature: float) -> float:
    """E[f(y)] under the binary Concrete density (Maddison et al. 2017, eq. 8), by quadrature:
    p(y) = λ α y^(−λ−1) (1−y)^(−λ−1) / (α y^(−λ) + (1−y)^(−λ))², α = exp(logit)."""
    alpha, lam = math.exp(logit), temperature

    def density(y):
        return (
            lam
            * alpha
            * y ** (-lam - 1)
            * (1 - y) ** (-lam - 1)
            / (alpha * y ** (-lam) + (1 - y) ** (-lam)) ** 2
        )

    return integrate.quad(lambda y: f(y) * density(y), 0, 1, epsabs=1e-13, epsrel=1e-12)[0]


@pytest.mark.parametrize("distribution", ["categorical", "bernoulli"])
def test_gumbel_softmax_is_unbiased_for_the_relaxed_objective(distribution):
    """E_Concrete[(y − 0.3)²] by quadrature over y ∈ (0, 1) (the first coordinate of a
    two-category Concrete is a binary Concrete with the logit difference); its logit-gradient by
    central differences vs the MC mean of the Gumbel-softmax estimate (5 standard errors)."""
    temperature, logit = 0.8, 0.7
    if distribution == "categorical":
        logits, f = jnp.array([0.3, -0.4]), lambda x: (x[..., 0] - 0.3) ** 2
    else:
        logits, f = jnp.array(logit), lambda y: (y - 0.3) ** 2
    g = lambda y: (y - 0.3) ** 2
    step = 1e-4
    reference = (
        _binary_concrete_expectation(g, logit + step, temperature)
        - _binary_concrete_expectation(g, logit - step, temperature)
    ) / (2 * step)
    stats = diagnostics.gradient_statistics(
        jax.random.key(19),
        lambda k, lg: estimators.gumbel_softmax(
            k, f, lg, temperature, K, distribution=distribution
        ),
        logits,
        REPEATS,
    )
    mean, error = np.ravel(stats.mean)[0], np.ravel(stats.std_error)[0]
    assert abs(mean - reference) <= Z_THRESHOLD * error + 1e-6, (mean, error, reference)


def test_straight_through_bernoulli_is_hard_forward():
    seen = []
    estimators.gumbel_softmax(
        jax.random.key(20),
        lambda b: seen.append(b) or b,
        LOGITS,
        0.5,
        K,
        distribution="bernoulli",
        straight_through=True,
    )
    assert set(np.unique(np.asarray(seen[0]))) <= {0.0, 1.0}


# ---------------------------------------------------------------- bad input
def _all_calls(f=lambda z: z, num_samples=K):
    key = jax.random.key(0)
    return {
        "pathwise": lambda: estimators.pathwise(key, f, normal, (LOC, SCALE), num_samples),
        "score_function": lambda: estimators.score_function(
            key, f, normal, (LOC, SCALE), num_samples
        ),
        "measure_valued": lambda: estimators.measure_valued(key, f, LOC, SCALE, num_samples),
        "relax": lambda: estimators.relax(key, f, LOGITS, num_samples, lambda z: z),
        "rebar": lambda: estimators.rebar(key, f, LOGITS, num_samples),
        "gumbel_softmax": lambda: estimators.gumbel_softmax(
            key, f, CATEGORICAL_LOGITS, 0.5, num_samples
        ),
    }


@pytest.mark.parametrize("estimator", list(_all_calls()))
def test_non_callable_f_is_a_type_error_naming_f(estimator):
    with pytest.raises(TypeError, match="`f` must be callable"):
        _all_calls(f=3.0)[estimator]()


@pytest.mark.parametrize("estimator", list(_all_calls()))
def test_f_with_the_wrong_number_of_samples_is_a_value_error_naming_f(estimator):
    with pytest.raises(ValueError, match=r"`f` must return one value per sample.*num_samples=4"):
        _all_calls(f=lambda z: z[:2])[estimator]()


@pytest.mark.parametrize("estimator", list(_all_calls()))
@pytest.mark.parametrize(
    ("num_samples", "error"), [(0, ValueError), (2.0, TypeError), (True, TypeError)]
)
def test_bad_num_samples_names_the_argument(estimator, num_samples, error):
    with pytest.raises(error, match="`num_samples`"):
        _all_calls(num_samples=num_samples)[estimator]()


def test_leave_one_out_needs_two_samples():
    with pytest.raises(ValueError, match=r"`num_samples` must be >= 2 for the leave-one-out"):
        estimators.score_function(
            jax.random.key(0), lambda z: z, normal, (LOC, SCALE), 1, baseline="leave_one_out"
        )


def test_bad_baselines_name_the_argument():
    call = lambda baseline: estimators.score_function(
        jax.random.key(0), lambda z: z, normal, (LOC, SCALE), K, baseline=baseline
    )
    with pytest.raises(ValueError, match="`baseline` must be one of"):
        call("moving_average")
    with pytest.raises(ValueError, match="`baseline` must broadcast"):
        call(jnp.zeros(5))
    with pytest.raises(ValueError, match="`baseline` must broadcast"):
        call(jnp.zeros((K, 3)))  # per-sample baselines would depend on the samples
    with pytest.raises(ValueError, match="`baseline` must return one value per sample"):
        call(lambda z: z[0])
    with pytest.raises(ValueError, match="`decay`"):
        estimators.ema(0.0, jnp.ones((2, 3)), decay=1.0)


def test_bad_family_params_and_f_shapes():
    with pytest.raises(TypeError, match="`family`"):
        estimators.score_function(jax.random.key(0), lambda z: z, object(), (LOC, SCALE), K)
    with pytest.raises(TypeError, match="`params` must be a tuple"):
        estimators.pathwise(jax.random.key(0), lambda z: z, normal, LOC, K)
    with pytest.raises(ValueError, match=r"`f` must return shape .* prefix of the batch"):
        estimators.score_function(jax.random.key(0), lambda z: z[..., :2], normal, (LOC, SCALE), K)
    with pytest.raises(ValueError, match="`f` must act elementwise"):
        estimators.measure_valued(jax.random.key(0), lambda x: jnp.sum(x, -1), LOC, SCALE, K)
    with pytest.raises(ValueError, match="`scale` must be > 0"):
        estimators.measure_valued(jax.random.key(0), lambda x: x, LOC, -SCALE, K)
    with pytest.raises(TypeError, match="`key`"):
        estimators.pathwise(0, lambda z: z, normal, (LOC, SCALE), K)
    with pytest.raises(TypeError, match="`control_variate` must be callable"):
        estimators.relax(jax.random.key(0), lambda b: b, LOGITS, K, None)
    with pytest.raises(ValueError, match="`distribution` must be one of"):
        estimators.rebar(jax.random.key(0), lambda b: b, LOGITS, K, distribution="poisson")


def test_iwae_bad_input_names_the_argument():
    loc, scale = exact_posterior()
    log_joint = conjugate_log_joint()
    with pytest.raises(ValueError, match="`gradient` must be one of"):
        estimators.iwae_surrogate(jax.random.key(0), log_joint, loc, scale, 3, gradient="vimco")
    with pytest.raises(ValueError, match="`num_samples` must be >= 1"):
        estimators.iwae_surrogate(jax.random.key(0), log_joint, loc, scale, 0)
    with pytest.raises(TypeError, match="`num_samples`"):
        estimators.iwae_surrogate(jax.random.key(0), log_joint, loc, scale, 3.0)
    with pytest.raises(TypeError, match="`log_joint` must be callable"):
        estimators.iwae_surrogate(jax.random.key(0), None, loc, scale, 3)
    with pytest.raises(ValueError, match="`log_joint` must map z"):
        estimators.iwae_surrogate(jax.random.key(0), lambda z: z, loc, scale, 3)
    with pytest.raises(ValueError, match="`log_joint` must return one value per sample"):
        estimators.iwae_surrogate(jax.random.key(0), lambda z: log_joint(z)[:1], loc, scale, 3)
    with pytest.raises(ValueError, match="`scale` must be > 0"):
        estimators.iwae_surrogate(jax.random.key(0), log_joint, loc, -scale, 3)
    with pytest.raises(ValueError, match="trailing latent axis"):
        estimators.iwae_surrogate(jax.random.key(0), log_joint, 0.0, 1.0, 3)
    with pytest.raises(ValueError, match="do not broadcast"):
        estimators.iwae_surrogate(
            jax.random.key(0), log_joint, jnp.zeros((3, 2)), jnp.ones((2, 3)), 3
        )
    with pytest.raises(TypeError, match="`key`"):
        estimators.iwae_surrogate(jnp.ones(2), log_joint, loc, scale, 3)


def test_estimators_run_under_jit_and_vmap():
    """jit and vmap change nothing: the batched, compiled estimates equal the eager ones key by
    key (a transformation that dropped a term or mixed keys across the batch would differ)."""
    f = FUNCTIONS["cosine"][0]

    def grad(p, k):
        return jax.grad(
            lambda p: jnp.sum(
                estimators.score_function(k, f, normal, p, K, baseline="leave_one_out")
            )
        )(p)

    keys = jax.random.split(jax.random.key(20), 3)
    batched = jax.jit(jax.vmap(grad, in_axes=(None, 0)))((LOC, SCALE), keys)
    assert batched[0].shape == (3, 3)
    with jax.debug_key_reuse(False):  # the same keys again, on purpose: eager vs compiled
        for i in range(3):
            eager = grad((LOC, SCALE), keys[i])
            for got, want in zip((batched[0][i], batched[1][i]), eager, strict=True):
                np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)

    def iwae(k):
        return estimators.iwae_surrogate(
            k, conjugate_log_joint(), *exact_posterior(), 4, gradient="dreg"
        )

    surrogate, bound = jax.jit(iwae)(jax.random.key(21))
    eager_surrogate, eager_bound = iwae(jax.random.key(21))
    assert surrogate.shape == bound.shape == (3,)
    np.testing.assert_allclose(surrogate, eager_surrogate, rtol=1e-10)
    np.testing.assert_allclose(bound, eager_bound, rtol=1e-10)


@pytest.mark.parametrize("distribution", ["bernoulli", "categorical"])
def test_relax_draws_conditional_sample_agrees_with_b_and_has_the_marginal_of_z(distribution):
    # z̃ ~ p(z | b) with b ~ p(b) is again a draw of z: H(z̃) must equal b, and z̃'s moments must
    # match z's. A z̃ drawn from the wrong conditional (e.g. not truncated below the maximum)
    # fails one or the other.
    logits = jnp.array([[1.5, -0.5, 0.0], [-2.0, 3.0, 0.5]])
    n = 40_000
    z, b, z_tilde, log_prob = estimators.relax_draws(
        jax.random.key(30), logits, n, distribution=distribution
    )
    assert z.shape == z_tilde.shape == b.shape == (n, *logits.shape)
    if distribution == "categorical":
        hard = jax.nn.one_hot(jnp.argmax(z_tilde, -1), logits.shape[-1])
        assert log_prob.shape == (n, 2)
    else:
        hard = (z_tilde > 0).astype(b.dtype)
        assert log_prob.shape == (n, *logits.shape)
    np.testing.assert_array_equal(np.asarray(hard), np.asarray(b))
    for statistic in (lambda x: x, lambda x: x**2):
        a, c = np.asarray(statistic(z)), np.asarray(statistic(z_tilde))
        stderr = np.sqrt(a.var(0) / n + c.var(0) / n)
        assert np.all(np.abs(a.mean(0) - c.mean(0)) < 5 * stderr)
    with pytest.raises(ValueError, match="`distribution`"):
        estimators.relax_draws(jax.random.key(0), logits, 2, distribution="poisson")
