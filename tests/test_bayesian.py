"""BayesianDense (reparam.nn.bayesian) and the BNN helpers (reparam.bnn).

The layer's three estimators are checked against what defines them: every estimator's output has
the marginal moments of x·W + b under q (mean xμ + μ_b, variance x²σ² + σ_b²); "bbb" correlates
the examples of a minibatch through the shared weights (covariance x₁x₂σ²) while "local" and
"flipout" do not; and all three have the same expected gradient — the closed-form gradient of
E_q[(xW + b − t)²], and each other's for a nonlinear loss — within 5 Monte-Carlo standard errors.
The KL term equals the closed form for the Gaussian prior, and its Monte-Carlo estimate (used for
the scale-mixture prior) averages to the closed form, and to scipy quadrature for the mixture.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from reparam.estimators import diagnostics
from reparam.families import kl as kl_lib
from reparam.models import bnn
from reparam.nn.bayesian import (
    ESTIMATORS,
    BayesianDense,
    BayesianMLP,
    mixture_log_prob,
    softplus_inverse,
)

X = jnp.array([[0.5, -1.0, 2.0], [1.5, 0.3, -0.7], [-0.2, 0.8, 0.1], [1.0, 1.0, 1.0]])
FEATURES = 2


def _params(key, init_scale=0.4, **kwargs):
    """Layer parameters with posterior scales of order 0.4 (so noise matters) and random means."""
    layer = BayesianDense(FEATURES, init_scale=init_scale, **kwargs)
    return layer, _init_and_spread(layer, key)


# One compiled program per layer (an equal layer, static, reuses it) instead of eager ops.
@functools.partial(jax.jit, static_argnums=0)
def _init_and_spread(layer, key):
    init_key, call_key, spread_key = jax.random.split(key, 3)
    params = layer.init(init_key, call_key, X)
    # Spread the scales around init_scale so that a wrong σ² term cannot hide.
    rho = params["params"]["kernel_rho"]
    params["params"]["kernel_rho"] = rho + 0.3 * jax.random.normal(spread_key, rho.shape)
    return params


@jax.jit  # one program, not an eager softplus per leaf
def _scales(params):
    p = params["params"]
    return jax.nn.softplus(p["kernel_rho"]), jax.nn.softplus(p["bias_rho"])


# ---------------------------------------------------------------- shapes and options
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_shapes_and_leading_axes(key, estimator):
    layer = BayesianDense(5, estimator=estimator)
    x = jnp.ones((2, 3, 4))
    params = jax.jit(layer.init)(key, jax.random.key(18), x)
    assert params["params"]["kernel_loc"].shape == (4, 5)
    assert params["params"]["bias_rho"].shape == (5,)
    y, kl = jax.jit(layer.apply)(params, jax.random.key(1), x)
    assert y.shape == (2, 3, 5) and kl.shape == ()
    np.testing.assert_allclose(
        jax.nn.softplus(params["params"]["kernel_rho"]), layer.init_scale, rtol=1e-6
    )


def test_float32_stays_float32(key):
    x = jnp.ones((3, 4), jnp.float32)
    layer = BayesianDense(2, estimator="flipout", prior="mixture")
    params = jax.jit(layer.init)(key, jax.random.key(19), x)
    params = jax.tree.map(lambda p: p.astype(jnp.float32), params)
    y, kl = jax.jit(layer.apply)(params, jax.random.key(2), x)
    assert y.dtype == jnp.float32 and kl.dtype == jnp.float32


def test_mean_weights_is_deterministic_dense(key):
    layer, params = _params(key)
    y, _ = jax.jit(lambda p, k: layer.apply(p, k, X, mean_weights=True))(params, jax.random.key(3))
    p = params["params"]
    np.testing.assert_allclose(y, X @ p["kernel_loc"] + p["bias_loc"], rtol=1e-12)


def test_bad_options_raise(key):
    with pytest.raises(ValueError, match="`estimator`"):
        BayesianDense(2, estimator="dropout").init(key, jax.random.key(1), X)
    with pytest.raises(ValueError, match="`kl_estimator` 'closed' needs prior 'gaussian'"):
        BayesianDense(2, prior="mixture", kl_estimator="closed").init(key, jax.random.key(1), X)
    with pytest.raises(ValueError, match="`mixture_weight`"):
        BayesianDense(2, prior="mixture", mixture_weight=1.0).init(key, jax.random.key(1), X)
    with pytest.raises(ValueError, match="`x` must be > 0"):
        softplus_inverse(0.0)


def test_softplus_inverse_roundtrip():
    for x in (1e-6, 1e-3, 0.5, 3.0, 30.0):
        assert math.isclose(float(jax.nn.softplus(softplus_inverse(x))), x, rel_tol=1e-10)


# ---------------------------------------------------------------- the KL term
def test_gaussian_kl_matches_closed_form(key):
    layer, params = _params(key, prior_scale=0.7)
    others = [BayesianDense(FEATURES, estimator=e, prior_scale=0.7) for e in ESTIMATORS]

    @jax.jit  # every KL below in one compiled program
    def kls(params):
        p = params["params"]
        library = [
            jnp.sum(kl_lib.normal_normal(p[f"{name}_loc"], scale, 0.0, 0.7))
            for name, scale in zip(("kernel", "bias"), _scales(params), strict=True)
        ]
        _, kl = layer.apply(params, jax.random.key(4), X)
        return kl, library, [other.apply(params, jax.random.key(9), X)[1] for other in others]

    kl, library, by_estimator = kls(params)
    p = params["params"]
    kernel_scale, bias_scale = _scales(params)
    # The textbook formula, written out (not through reparam.kl):
    # KL(N(μ, σ²) ‖ N(0, s²)) = log(s/σ) + (σ² + μ²)/(2s²) − ½.
    expected = 0.0
    for loc, scale, library_kl in (
        (p["kernel_loc"], kernel_scale, library[0]),
        (p["bias_loc"], bias_scale, library[1]),
    ):
        loc, scale = np.asarray(loc), np.asarray(scale)
        expected += np.sum(np.log(0.7 / scale) + (scale**2 + loc**2) / (2 * 0.7**2) - 0.5)
        # ...and the library's closed form agrees.
        np.testing.assert_allclose(
            library_kl,
            np.sum(np.log(0.7 / scale) + (scale**2 + loc**2) / (2 * 0.7**2) - 0.5),
            rtol=1e-12,
        )
    np.testing.assert_allclose(kl, expected, rtol=1e-12)
    # The KL does not depend on the key, nor on the estimator.
    for estimator, other_kl in zip(ESTIMATORS, by_estimator, strict=True):
        np.testing.assert_allclose(other_kl, kl, rtol=1e-12, err_msg=estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_monte_carlo_kl_averages_to_closed_form(key, estimator):
    layer, params = _params(key, prior_scale=0.7, estimator=estimator)
    mc_layer = layer.clone(kl_estimator="mc")
    closed = jax.jit(layer.apply)(params, jax.random.key(12), X)[1]
    estimate = lambda k: mc_layer.apply(params, k, X)[1]
    s = diagnostics.statistics(jax.random.key(5), estimate, 20_000)
    assert abs(float(s.mean) - float(closed)) < 5 * float(s.std_error), (s.mean, closed)


def test_mixture_kl_matches_quadrature(key):
    scales, weight = (1.0, math.exp(-2.0)), 0.3
    layer = BayesianDense(1, prior="mixture", mixture_scales=scales, mixture_weight=weight)
    x = jnp.ones((1, 2))
    params = jax.jit(layer.init)(key, jax.random.key(13), x)
    params["params"]["kernel_loc"] = jnp.array([[0.4], [-0.05]])
    params["params"]["kernel_rho"] = jnp.array([[softplus_inverse(0.3)], [softplus_inverse(0.05)]])
    params["params"]["bias_loc"] = jnp.array([1.2])
    params["params"]["bias_rho"] = jnp.array([softplus_inverse(0.8)])

    def prior_pdf(w):
        return weight * stats.norm.pdf(w, 0, scales[0]) + (1 - weight) * stats.norm.pdf(
            w, 0, scales[1]
        )

    expected = 0.0
    for loc, scale in ((0.4, 0.3), (-0.05, 0.05), (1.2, 0.8)):
        q = stats.norm(loc, scale)
        integrand = lambda w, q=q: q.pdf(w) * (q.logpdf(w) - np.log(prior_pdf(w)))
        expected += integrate.quad(integrand, loc - 12 * scale, loc + 12 * scale, limit=200)[0]
    estimate = lambda k: layer.apply(params, k, x)[1]
    s = diagnostics.statistics(jax.random.key(6), estimate, 20_000)
    assert abs(float(s.mean) - expected) < 5 * float(s.std_error), (float(s.mean), expected)


def test_mixture_log_prob_matches_scipy():
    w = np.linspace(-3, 3, 13)
    expected = np.log(0.25 * stats.norm.pdf(w, 0, 1.5) + 0.75 * stats.norm.pdf(w, 0, math.exp(-6)))

    @jax.jit  # both calls in one compiled program
    def run(w, far):
        return mixture_log_prob(w, (1.5, math.exp(-6)), 0.25), mixture_log_prob(
            far, (1.0, 1e-3), 0.5
        )

    value, far = run(jnp.asarray(w), jnp.asarray(1e3))
    np.testing.assert_allclose(value, expected, rtol=1e-10)
    # Far in the tails both components underflow separately, the logsumexp does not.
    assert np.isfinite(far)


# ---------------------------------------------------------------- the estimators' distributions
@functools.partial(jax.jit, static_argnums=(0, 2))  # one program per layer, shared by two tests
def _outputs(layer, params, num):
    keys = jax.random.split(jax.random.key(7), num)
    return jax.vmap(lambda k: layer.apply(params, k, X)[0])(keys)  # (num, B, F)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_output_moments_are_those_of_xW_plus_b(key, estimator):
    layer, params = _params(key, estimator=estimator)
    y = _outputs(layer, params, 40_000)
    p = params["params"]
    kernel_scale, bias_scale = _scales(params)
    mean = X @ p["kernel_loc"] + p["bias_loc"]
    variance = (X**2) @ kernel_scale**2 + bias_scale**2
    n = y.shape[0]
    se_mean = np.sqrt(variance / n)
    assert np.all(np.abs(y.mean(0) - mean) < 5 * se_mean)
    # Var of a sample variance of a normal: 2σ⁴/(n − 1).
    se_var = np.sqrt(2 * variance**2 / (n - 1))
    assert np.all(np.abs(y.var(0, ddof=1) - variance) < 5 * se_var)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_examples_correlated_only_for_bbb(key, estimator):
    layer, params = _params(key, estimator=estimator)
    y = np.asarray(_outputs(layer, params, 40_000))
    kernel_scale, bias_scale = _scales(params)
    # Covariance of two examples' first output unit: Σ_i x1_i x2_i σ_i² + σ_b² for shared weights.
    a, b = y[:, 0, 0], y[:, 1, 0]
    cov = np.mean((a - a.mean()) * (b - b.mean()))
    shared = float(X[0] * X[1] @ kernel_scale[:, 0] ** 2 + bias_scale[0] ** 2)
    se = np.std((a - a.mean()) * (b - b.mean())) / np.sqrt(len(a))
    expected = shared if estimator == "bbb" else 0.0
    assert abs(cov - expected) < 5 * se, (estimator, cov, expected)
    assert abs(shared) > 10 * se  # the two cases are distinguishable at this sample size


# ---------------------------------------------------------------- the estimators' gradients
def _gradient_stats(layer, params, loss, num=20_000, seed=8):
    def estimate(k, params):
        return jax.grad(lambda p: loss(layer.apply(p, k, X)[0]))(params)

    return diagnostics.statistics(jax.random.key(seed), estimate, num, params)


def _flat(tree):
    return np.concatenate([np.ravel(x) for x in jax.tree.leaves(tree)])


TARGET = jnp.array([[0.3, -0.2]])


def _expected_square_loss(params):
    """E_q Σ (xW + b − t)² in closed form: Σ (xμ + μ_b − t)² + x²σ² + σ_b²."""
    p = params["params"]
    mean = X @ p["kernel_loc"] + p["bias_loc"]
    variance = (X**2) @ jax.nn.softplus(p["kernel_rho"]) ** 2 + jax.nn.softplus(p["bias_rho"]) ** 2
    return jnp.sum((mean - TARGET) ** 2 + variance)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_expected_gradient_matches_closed_form(key, estimator):
    layer, params = _params(key, estimator=estimator)
    s = _gradient_stats(layer, params, lambda y: jnp.sum((y - TARGET) ** 2))
    exact = _flat(jax.grad(_expected_square_loss)(params))
    mean, se = _flat(s.mean), _flat(s.std_error)
    assert np.all(np.abs(mean - exact) < 5 * se + 1e-12), (estimator, mean - exact, se)


def test_estimators_share_the_expected_gradient_of_a_nonlinear_loss():
    # A loss whose expectation has no closed form: the three means must agree with each other.
    loss = lambda y: jnp.sum(jnp.tanh(2.0 * y) + jax.nn.softplus(y - TARGET) ** 2)
    results = {}
    for estimator in ESTIMATORS:
        # The same parameters for the three (a fresh key with the same seed each time).
        layer, params = _params(jax.random.key(20), estimator=estimator)
        s = _gradient_stats(layer, params, loss)
        results[estimator] = (_flat(s.mean), _flat(s.std_error), _flat(s.variance))
    for a, b in (("bbb", "local"), ("bbb", "flipout"), ("local", "flipout")):
        (ma, sa, _), (mb, sb, _) = results[a], results[b]
        assert np.all(np.abs(ma - mb) < 5 * np.hypot(sa, sb)), (a, b, ma - mb)
    # ...and the per-example noise of local and flipout lowers the variance of the summed loss.
    assert np.sum(results["local"][2]) < np.sum(results["bbb"][2])
    assert np.sum(results["flipout"][2]) < np.sum(results["bbb"][2])


# ---------------------------------------------------------------- the MLP and helpers
def test_mlp_jit_grad_and_kl_sum(key):
    models = [BayesianMLP((8, 6), 3, layer_kwargs=(("estimator", e),)) for e in ESTIMATORS]

    @jax.jit  # the three models' init and gradient, and the KL check, in one compiled program
    def run(key):
        init_key, *keys = jax.random.split(key, 5)
        all_grads = []
        for model, k in zip(models, keys, strict=False):
            params = model.init(init_key, jax.random.key(14), X)

            def loss(p, k, model=model):
                outputs, kl = model.apply(p, k, X)
                return jnp.sum(outputs**2) + kl

            all_grads.append(jax.grad(loss)(params, k))
        _, total = model.apply(params, keys[-1], X)
        expected = 0.0
        for layer in params["params"].values():
            for name in ("kernel", "bias"):
                scale = jax.nn.softplus(layer[f"{name}_rho"])
                expected += jnp.sum(kl_lib.normal_normal(layer[f"{name}_loc"], scale, 0.0, 1.0))
        return all_grads, params, total, expected

    all_grads, params, total, expected = run(key)
    for estimator, grads in zip(ESTIMATORS, all_grads, strict=True):
        assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads)), estimator
    assert sorted(params["params"]) == ["BayesianDense_0", "BayesianDense_1", "BayesianDense_2"]
    # The model's KL is the sum of the layers' closed forms (kernel and bias of each layer).
    np.testing.assert_allclose(total, expected, rtol=1e-12)


def test_expected_calibration_error_by_hand():
    # Confidences away from bin edges (ceil(c·M) is exact there).
    probs = jnp.array([[0.93, 0.07], [0.62, 0.38], [0.29, 0.71], [0.44, 0.56]])
    labels = jnp.array([0, 1, 1, 1])
    # 2 bins: (0, .5] empty; (.5, 1] all four, confidences .93 .62 .71 .56, correct 1 0 1 1.
    ece, ece10 = jax.jit(  # both in one compiled program
        lambda p, y: [bnn.expected_calibration_error(p, y, num_bins=b) for b in (2, 10)]
    )(probs, labels)
    np.testing.assert_allclose(ece, abs(3 - (0.93 + 0.62 + 0.71 + 0.56)) / 4, rtol=1e-12)
    # 10 bins: each example alone in its bin.
    np.testing.assert_allclose(ece10, (0.07 + 0.62 + 0.29 + 0.44) / 4, rtol=1e-12)
    metrics = bnn.classification_metrics(probs, labels)
    assert metrics["accuracy"] == 0.75
    np.testing.assert_allclose(
        metrics["nll"], -np.mean(np.log([0.93, 0.38, 0.71, 0.56])), rtol=1e-12
    )


def test_predictive_helpers(key):
    model = BayesianMLP((4,), 3, layer_kwargs=(("init_scale", 0.5),))
    params = jax.jit(model.init)(key, jax.random.key(16), X)
    samples = bnn.predictive_samples(model, params, jax.random.key(11), X, 7)
    assert samples.shape == (7, 4, 3)
    assert not np.allclose(samples[0], samples[1])  # independent posterior draws
    probs = bnn.predictive_probs(samples)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-12)
    elbo = jax.jit(bnn.classification_elbo_loss, static_argnums=(0, 5))
    loss, metrics = elbo(model, params, jax.random.key(17), X, jnp.array([0, 1, 2, 0]), 100)
    np.testing.assert_allclose(loss, metrics["nll"] + metrics["kl"] / 100, rtol=1e-12)
