"""relaxed_categorical and relaxed_bernoulli beyond the generic layers.

relaxed_categorical has no scipy distribution, so its density and gradients are checked here:
the pathwise gradient against the score-function estimator E[f(z) ∇θ log p(z)] built on the
Concrete log_prob (two unbiased estimators, paired, 5 standard errors); the density integrates
to 1 for K = 2 and equals the binary Concrete with the logit difference; log-ratios of
coordinates are logistic (KS) and argmax frequencies are softmax(logits) (Gumbel-max). Both
families: straight-through semantics, float32 extremes (hypothesis), sample_and_log_prob.
"""

from __future__ import annotations

import functools

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis.extra import numpy as hnp
from scipy import integrate, special, stats

from reparam import relaxed_bernoulli, relaxed_categorical
from tests.specs import relaxed_bernoulli as bernoulli_spec
from tests.specs import relaxed_categorical as categorical_spec

Z_THRESHOLD = 5.0

# ---------------------------------------------------------------- relaxed_categorical gradients
LOGITS = np.array([0.5, -0.3, 1.0])
WEIGHTS = np.array([1.0, -2.0, 0.5])
CENTER = np.array([0.2, 0.3, 0.5])
FUNCTIONS = {
    "linear": lambda z: z @ WEIGHTS,
    "square": lambda z: jnp.sum(z**2, axis=-1),
    "gauss": lambda z: jnp.exp(-jnp.sum((z - CENTER) ** 2, axis=-1)),
    "cos": lambda z: jnp.cos(3.0 * z @ WEIGHTS),
}


@functools.cache
def _estimators(f_name):
    """Per-sample pathwise and score-function gradients for one f, jitted once and shared by
    both temperatures (an array argument; a jit per test compiled it once per temperature)."""
    f = FUNCTIONS[f_name]

    @jax.jit
    def estimators(logits, temperature):
        def pathwise_total(lg, t):
            z = relaxed_categorical.sample(jax.random.key(40), lg, t)
            return jnp.sum(f(z)), z

        pathwise, z = jax.grad(pathwise_total, argnums=(0, 1), has_aux=True)(logits, temperature)
        baseline = jnp.mean(f(relaxed_categorical.sample(jax.random.key(41), logits, temperature)))
        weight = jax.lax.stop_gradient(f(z) - baseline)

        def score_total(lg, t):
            return jnp.sum(weight * relaxed_categorical.log_prob(jax.lax.stop_gradient(z), lg, t))

        return pathwise, jax.grad(score_total, argnums=(0, 1))(logits, temperature)

    return estimators


@pytest.mark.parametrize("temperature", [0.7, 2.0])
@pytest.mark.parametrize("f_name", list(FUNCTIONS))
def test_pathwise_gradient_matches_score_function_estimator(f_name, temperature):
    """Per sample n (parameters broadcast to (N, ...) so z_n sees its own copy θ_n):

    pathwise  ∂f(z(ε_n, θ))/∂θ,    score  (f(z_n) − b) ∂ log p(z_n; θ)/∂θ,

    both unbiased for ∂E[f]/∂θ (b, the mean of f over independent draws, only lowers variance).
    They use the same z_n, so their difference has a paired standard error.
    """
    n = 200_000
    estimators = _estimators(f_name)
    pathwise, score = estimators(
        jnp.broadcast_to(jnp.asarray(LOGITS), (n, LOGITS.size)), jnp.full((n,), temperature)
    )
    for name, path_n, score_n in zip(("logits", "temperature"), pathwise, score, strict=True):
        path_n, score_n = np.asarray(path_n), np.asarray(score_n)
        difference = path_n - score_n
        standard_error = difference.std(axis=0, ddof=1) / np.sqrt(n)
        gap = np.abs(difference.mean(axis=0))
        assert np.all(gap <= Z_THRESHOLD * standard_error + 1e-12), (
            f"d/d{name}: pathwise {path_n.mean(axis=0)} vs score {score_n.mean(axis=0)}, "
            f"paired SE {standard_error}"
        )


# ---------------------------------------------------------------- relaxed_categorical density
# Module-level jits taking the temperature as an argument: one program serves every temperature
# (a closure over the Python temperature was compiled once per parametrization, and the eager
# log_probs op by op).
@jax.jit
def _log_density_in_logit_space(y, logits, temperature):
    # x = (σ(y), σ(−y)): both coordinates exact, also where σ(y) rounds to 1.
    x = jnp.stack([jax.nn.sigmoid(y), jax.nn.sigmoid(-y)], axis=-1)
    log_jacobian = -jax.nn.softplus(-y) - jax.nn.softplus(y)  # log dx/dy = log σ(y)σ(−y)
    return relaxed_categorical.log_prob(x, logits, temperature) + log_jacobian


@jax.jit
def _two_category_and_binary_log_probs(x, logits, temperature):
    return (
        relaxed_categorical.log_prob(jnp.stack([x, 1 - x], -1), logits, temperature),
        relaxed_bernoulli.log_prob(x, logits[0] - logits[1], temperature),
    )


@pytest.mark.parametrize("temperature", [0.4, 1.0, 2.5])
def test_two_category_density_integrates_to_one_and_is_the_binary_concrete(temperature):
    logits = jnp.asarray([0.3, -0.8])

    def log_density_in_logit_space(y):
        return _log_density_in_logit_space(y, logits, temperature)

    # y = (a₁ − a₂ + L)/λ has logistic tails ∝ e^(−λ|y|): beyond ±(60/λ + 10) the mass is
    # < e^(−60), and σ(∓y) has not yet underflowed to the boundary of the simplex.
    limit = 60 / temperature + 10
    total, _ = integrate.quad(
        lambda y: float(np.exp(log_density_in_logit_space(y))),
        -limit,
        limit,
        epsabs=1e-12,
        epsrel=1e-10,
        limit=200,
    )
    assert abs(total - 1.0) < 1e-8

    x = np.linspace(0.01, 0.99, 33)
    two_category, binary = map(
        np.asarray, _two_category_and_binary_log_probs(x, logits, temperature)
    )
    np.testing.assert_allclose(two_category, binary, rtol=1e-11, atol=1e-11)
    # And the binary Concrete against Maddison et al.'s closed form (the spec's scipy class).
    np.testing.assert_allclose(
        binary,
        bernoulli_spec.bin_concrete(1.1, temperature).logpdf(x),
        rtol=1e-11,
        atol=1e-11,
    )


@jax.jit
def _three_category_mass(y1, y2, logits, temperature):
    """Σ p(z(y)) z₁z₂z₃ over the grid; one program for both temperatures (eager: op by op)."""
    log_z = jax.nn.log_softmax(jnp.stack([y1, y2, jnp.zeros_like(y1)], axis=-1), axis=-1)
    log_density = relaxed_categorical.log_prob(jnp.exp(log_z), logits, temperature) + jnp.sum(
        log_z, axis=-1
    )
    return jnp.sum(jnp.exp(log_density))


@pytest.mark.parametrize("temperature", [0.5, 1.5])
def test_three_category_density_integrates_to_one(temperature):
    """∫ p over the 2-simplex, in coordinates y ∈ R² with z = softmax(y₁, y₂, 0) (Jacobian
    z₁z₂z₃), by the trapezoid rule: the integrand is smooth with e^(−λ|y|) tails, so the rule
    converges geometrically; the score-function test above cannot see the normalizing constant."""
    logits = jnp.asarray([0.4, -0.6, 1.1])
    half_width = 60 / temperature + 10
    y = np.linspace(-half_width, half_width, 801)
    y1, y2 = np.meshgrid(y, y, indexing="ij")
    total = float(_three_category_mass(y1, y2, logits, temperature)) * (y[1] - y[0]) ** 2
    assert abs(total - 1.0) < 1e-8


def test_log_ratios_are_logistic_and_argmax_is_categorical():
    """log z_k − log z_K = ((a_k + g_k) − (a_K + g_K))/λ ~ Logistic((a_k − a_K)/λ, 1/λ), and
    argmax z = argmax(a + g) ~ Categorical(softmax(a)) (Gumbel-max); fixed keys."""
    logits, temperature = categorical_spec.LOGITS, categorical_spec.TEMPERATURE
    n = 20_000
    z = np.asarray(relaxed_categorical.sample(jax.random.key(42), logits, temperature, (n,)))
    log_z = np.log(z)
    for b in range(logits.shape[0]):
        lam = temperature[b]
        for k in range(logits.shape[1] - 1):
            reference = stats.logistic((logits[b, k] - logits[b, -1]) / lam, 1 / lam).cdf
            ratio = log_z[:, b, k] - log_z[:, b, -1]
            assert stats.kstest(ratio, reference).pvalue > 1e-4, (b, k)
        frequency = np.bincount(z[:, b].argmax(-1), minlength=logits.shape[1]) / n
        p = special.softmax(logits[b])
        assert np.all(np.abs(frequency - p) <= Z_THRESHOLD * np.sqrt(p * (1 - p) / n)), b


# ---------------------------------------------------------------- straight-through (both)
RELAXED = [
    pytest.param(relaxed_categorical, categorical_spec.SPECS[0].params, id="categorical"),
    pytest.param(relaxed_bernoulli, bernoulli_spec.SPECS[0].params, id="bernoulli"),
]


@pytest.mark.parametrize(("module", "params"), RELAXED)
@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_straight_through_is_exactly_hard_forward_and_relaxed_backward(module, params, jit):
    params = tuple(jnp.asarray(p) for p in params)
    shape = (50,)

    def draw(ps, straight_through):
        return module.sample(jax.random.key(43), *ps, shape, straight_through=straight_through)

    with jax.debug_key_reuse(False):
        soft = np.asarray(draw(params, False))
        weights = np.cos(np.arange(soft.size)).reshape(soft.shape)
        run = jax.jit(draw, static_argnums=1) if jit else draw
        hard = np.asarray(run(params, True))
        eps = module.noise(jax.random.key(43), soft.shape, jnp.float64)
        np.testing.assert_array_equal(
            hard, np.asarray(module.transform(eps, *params, straight_through=True))
        )

        def weighted(ps, straight_through):
            return jnp.sum(weights * draw(ps, straight_through))

        grad = jax.jit(jax.grad(weighted), static_argnums=1) if jit else jax.grad(weighted)
        hard_grads, soft_grads = grad(params, True), grad(params, False)

    assert set(np.unique(hard)) <= {0.0, 1.0}
    if module is relaxed_categorical:
        np.testing.assert_array_equal(hard.sum(-1), 1.0)
        np.testing.assert_array_equal(hard.argmax(-1), soft.argmax(-1))
    else:
        np.testing.assert_array_equal(hard, (soft > 0.5).astype(hard.dtype))
    for g_hard, g_soft in zip(hard_grads, soft_grads, strict=True):
        assert np.any(np.asarray(g_soft) != 0)
        np.testing.assert_allclose(np.asarray(g_hard), np.asarray(g_soft), rtol=1e-12, atol=0)


# ---------------------------------------------------------------- float32 extremes (both)
LOG_TEMPERATURES = st.floats(float(np.log(1e-3)), float(np.log(1e3)))  # cast after exp
LOGIT_VALUES = st.floats(-50.0, 50.0, width=32)


@functools.cache
def _sample_grads_and_log_prob(module, straight_through):
    """One compiled function per (family, straight_through), reused by every example."""

    @jax.jit
    def run(logits, temperature):
        def weighted(lg, t):
            z = module.sample(jax.random.key(44), lg, t, (8,), straight_through=straight_through)
            return jnp.sum(jnp.cos(jnp.arange(z.size, dtype=z.dtype)).reshape(z.shape) * z), z

        grads, z = jax.grad(weighted, argnums=(0, 1), has_aux=True)(logits, temperature)

        def log_p(lg, t):
            return jnp.sum(module.sample_and_log_prob(jax.random.key(45), lg, t, (8,))[1])

        value, log_p_grads = jax.value_and_grad(log_p, argnums=(0, 1))(logits, temperature)
        return z, grads, value, log_p_grads

    return run


@given(
    logits=hnp.arrays(np.float32, (4, 5), elements=LOGIT_VALUES),
    log_temperature=hnp.arrays(np.float64, (4,), elements=LOG_TEMPERATURES),
    straight_through=st.booleans(),
)
def test_categorical_float32_extremes_are_finite(logits, log_temperature, straight_through):
    temperature = np.exp(log_temperature).astype(np.float32)
    run = _sample_grads_and_log_prob(relaxed_categorical, straight_through)
    z, grads, log_p, log_p_grads = run(logits, temperature)
    assert z.dtype == jnp.float32
    for value in (z, *grads, log_p, *log_p_grads):
        assert np.all(np.isfinite(np.asarray(value))), (logits, temperature)


@given(
    logits=hnp.arrays(np.float32, (6,), elements=LOGIT_VALUES),
    log_temperature=hnp.arrays(np.float64, (6,), elements=LOG_TEMPERATURES),
    straight_through=st.booleans(),
)
def test_bernoulli_float32_extremes_are_finite(logits, log_temperature, straight_through):
    temperature = np.exp(log_temperature).astype(np.float32)
    run = _sample_grads_and_log_prob(relaxed_bernoulli, straight_through)
    z, grads, log_p, log_p_grads = run(logits, temperature)
    assert z.dtype == jnp.float32
    for value in (z, *grads, log_p, *log_p_grads):
        assert np.all(np.isfinite(np.asarray(value))), (logits, temperature)


# ---------------------------------------------------------------- sample_and_log_prob (both)
@pytest.mark.parametrize(("module", "params"), RELAXED)
def test_sample_and_log_prob_is_sample_plus_log_prob_with_gradients(module, params):
    params = tuple(jnp.asarray(p) for p in params)

    # One compiled program per family (eager, each op of the chain and of both gradients was
    # compiled on its own); sample and sample_and_log_prob are still separate computations in it.
    @jax.jit
    def draws(params):
        z, log_p = module.sample_and_log_prob(jax.random.key(46), *params, (5,))
        z_alone = module.sample(jax.random.key(46), *params, (5,))

        def fused(ps):
            return jnp.sum(module.sample_and_log_prob(jax.random.key(47), *ps, (5,))[1])

        def separate(ps):
            return jnp.sum(module.log_prob(module.sample(jax.random.key(47), *ps, (5,)), *ps))

        return (
            z,
            log_p,
            z_alone,
            module.log_prob(z, *params),
            jax.grad(fused)(params),
            jax.grad(separate)(params),
        )

    with jax.debug_key_reuse(False):
        z, log_p, z_alone, log_p_again, grads_fused, grads_separate = jax.tree_util.tree_map(
            np.asarray, draws(params)
        )
    np.testing.assert_array_equal(z, z_alone)
    np.testing.assert_allclose(log_p, log_p_again, rtol=1e-9, atol=1e-9)
    for g_fused, g_separate in zip(grads_fused, grads_separate, strict=True):
        np.testing.assert_allclose(g_fused, g_separate, rtol=1e-7, atol=1e-9)


def test_sample_and_log_prob_is_exact_at_low_temperature_in_float32():
    """At λ = 0.02 coordinates of z underflow to 0 (or round to 1) in float32, so log_prob(z) is
    not finite; sample_and_log_prob still matches eq. 7 evaluated in float64 from the same noise."""
    lam = 0.02
    logits = np.array([0.5, -1.0, 2.0, 0.0], np.float32)
    # Each draw and its noise as one compiled program (eager: op by op, in float32 as well).
    with jax.debug_key_reuse(False):
        z, log_p, gumbel = jax.jit(
            lambda key: (
                *relaxed_categorical.sample_and_log_prob(key, logits, np.float32(lam), (200,)),
                relaxed_categorical.noise(key, (200, 4), jnp.float32),
            )
        )(jax.random.key(48))
    gumbel = np.asarray(gumbel, np.float64)
    assert np.any(np.asarray(z) == 0.0)
    log_x = special.log_softmax((logits + gumbel) / lam, axis=-1)
    k = logits.size
    reference = (  # Maddison et al. (2017), eq. 7, in float64
        special.gammaln(k)
        + (k - 1) * np.log(lam)
        + np.sum(logits - (lam + 1) * log_x, axis=-1)
        - k * special.logsumexp(logits - lam * log_x, axis=-1)
    )
    np.testing.assert_allclose(np.asarray(log_p), reference, rtol=1e-4)

    with jax.debug_key_reuse(False):
        z, log_p, noise = jax.jit(
            lambda key: (
                *relaxed_bernoulli.sample_and_log_prob(
                    key, np.float32(0.3), np.float32(lam), (200,)
                ),
                relaxed_bernoulli.noise(key, (200,), jnp.float32),
            )
        )(jax.random.key(49))
    noise = np.asarray(noise, np.float64)
    assert np.any(np.asarray(z) == 1.0) and np.any(np.asarray(z) == 0.0)
    y = (0.3 + noise) / lam
    log_x, log1m_x = -np.logaddexp(0, -y), -np.logaddexp(0, y)
    reference = (  # the binary closed form (the spec's), written with log x and log(1 − x)
        np.log(lam)
        + 0.3
        - (lam + 1) * (log_x + log1m_x)
        - 2 * np.logaddexp(0.3 - lam * log_x, -lam * log1m_x)
    )
    np.testing.assert_allclose(np.asarray(log_p), reference, rtol=1e-4)


# ---------------------------------------------------------------- errors
def test_categorical_shape_errors_name_the_argument():
    logits, temperature = categorical_spec.LOGITS, categorical_spec.TEMPERATURE
    with pytest.raises(ValueError, match=r"`x` must have shape \(\.\.\., 4\)"):
        relaxed_categorical.log_prob(np.full((3, 3), 1 / 3), logits, temperature)
    with pytest.raises(ValueError, match=r"`eps` must have shape \(\.\.\., 4\)"):
        relaxed_categorical.transform(np.zeros((3, 5)), logits, temperature)
    with pytest.raises(ValueError, match="do not broadcast"):
        relaxed_categorical.sample(jax.random.key(0), logits, np.ones(2))
    with pytest.raises(ValueError, match="`logits` must have at least 1"):
        relaxed_categorical.sample(jax.random.key(0), 0.0, 1.0)
    with pytest.raises(ValueError, match="`temperature` must be > 0"):
        relaxed_bernoulli.sample(jax.random.key(0), 0.0, np.array([1.0, 0.0]))
