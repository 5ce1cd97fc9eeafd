"""reparam.models.bernoulli_vae: each estimator against the exact gradient by enumeration.

The tiny problem: B = 3 examples, D = 3 Bernoulli latents (8 codes per example, so the ELBO, the
2-sample bound and log p(x) are exact sums), a learned prior and a fixed nonlinear "decoder"
with a parameter w that also accepts relaxed codes. The unbiased estimators' mean gradient, for
the encoder's logits, the prior's logits and the decoder's w at once, must match the exact one
within 5 standard errors (one jitted program of 2000 estimates each); the biased ones are
finite and shaped, and their bias is printed (`-s`).
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import logsumexp

from reparam.models import bernoulli_vae

B, D = 3, 3
REPEATS = 2000


def _problem():
    rng = np.random.default_rng(0)
    logits = jnp.asarray(rng.normal(size=(B, D)))
    prior = jnp.asarray(rng.normal(size=(D,)))
    w = jnp.asarray(rng.normal(size=(B, D)))
    v = jnp.asarray(rng.normal(size=(D,)))

    def log_likelihood(w):  # b (K, B, D) -> (K, B); nonlinear, finite for relaxed b
        return lambda b: jnp.sum(w * b, axis=-1) + 2.0 * jnp.sin(b @ v) - 3.0

    return (logits, prior, w), log_likelihood


CODES = jnp.asarray(list(itertools.product([0.0, 1.0], repeat=D)))  # (8, D)


def _log_joint_and_q(params, log_likelihood):
    """log p(x, b) and log q(b|x) of every code: each (8, B)."""
    logits, prior, w = params
    codes = jnp.broadcast_to(CODES[:, None], (len(CODES), B, D))
    log_prior = jnp.sum(bernoulli_vae.bernoulli_log_prob(codes, prior), -1)
    log_q = jnp.sum(bernoulli_vae.bernoulli_log_prob(codes, logits), -1)
    return log_likelihood(w)(codes) + log_prior, log_q


def _exact_elbo(params, log_likelihood):
    log_joint, log_q = _log_joint_and_q(params, log_likelihood)
    return jnp.sum(jnp.exp(log_q) * (log_joint - log_q), axis=0)  # (B,)


def _exact_two_sample_bound(params, log_likelihood):
    """E over two independent codes of log ½(w₁ + w₂), by enumerating the 64 pairs: (B,)."""
    log_joint, log_q = _log_joint_and_q(params, log_likelihood)
    log_w = log_joint - log_q
    pair = jnp.logaddexp(log_w[:, None], log_w[None, :]) - jnp.log(2.0)
    return jnp.sum(jnp.exp(log_q[:, None] + log_q[None, :]) * pair, axis=(0, 1))


def _residual(psi, z):
    return jnp.sum(psi * jnp.tanh(z), axis=-1)  # (K, B)


def _cv_params(estimator):
    params = bernoulli_vae.rebar_params(eta=0.7, temperature=0.6)
    if estimator == "relax":
        params["residual"] = jnp.asarray(np.random.default_rng(1).normal(size=(D,)))
    return params


def _surrogate(key, params, log_likelihood, estimator, **options):
    logits, prior, w = params
    return bernoulli_vae.elbo(
        key,
        logits,
        log_likelihood(w),
        prior,
        estimator=estimator,
        signal=log_likelihood(jax.lax.stop_gradient(w)),
        cv_params=_cv_params(estimator) if estimator in ("rebar", "relax") else None,
        residual=_residual,
        **options,
    )


def _estimates(estimator, num_samples, **options):
    """REPEATS gradient estimates of Σ_B surrogate for (logits, prior, w), and the values."""
    params, log_likelihood = _problem()

    def one(key):
        def total(p):
            surrogate, objective = _surrogate(
                key, p, log_likelihood, estimator, num_samples=num_samples, **options
            )
            return jnp.sum(surrogate), (surrogate, objective)

        return jax.grad(total, has_aux=True)(params)

    keys = jax.random.split(jax.random.key(1), REPEATS)
    grads, (surrogates, objectives) = jax.jit(jax.vmap(one))(keys)
    return params, log_likelihood, grads, surrogates, objectives


@pytest.mark.parametrize(
    "estimator,num_samples",
    [
        ("disarm", 1),
        ("arm", 1),
        ("reinforce_loo", 2),
        ("rebar", 1),
        ("relax", 1),
        ("vimco", 2),
    ],
)
def test_unbiased_estimators_match_the_exact_gradient(estimator, num_samples):
    params, log_likelihood, grads, surrogates, objectives = _estimates(estimator, num_samples)
    target = _exact_two_sample_bound if estimator == "vimco" else _exact_elbo
    exact = jax.grad(lambda p: jnp.sum(target(p, log_likelihood)))(params)
    for name, estimate, truth in zip(("logits", "prior", "w"), grads, exact, strict=True):
        estimate = np.asarray(estimate)
        assert estimate.shape == (REPEATS, *np.shape(truth)) and np.all(np.isfinite(estimate))
        stderr = estimate.std(0) / np.sqrt(REPEATS)
        error = np.abs(estimate.mean(0) - np.asarray(truth))
        assert np.all(error < 5 * stderr + 1e-9), f"{estimator}: {name} off by {error / stderr} SE"
    # The value: an unbiased estimate of the ELBO (of the 2-sample bound for VIMCO).
    np.testing.assert_allclose(surrogates, objectives, rtol=1e-12)
    stderr = np.asarray(objectives).std(0) / np.sqrt(REPEATS)
    error = np.abs(np.asarray(objectives).mean(0) - np.asarray(target(params, log_likelihood)))
    assert np.all(error < 5 * stderr)


@pytest.mark.parametrize("estimator", bernoulli_vae.BIASED)
def test_biased_estimators_are_finite_and_shaped_and_their_bias_is_reported(estimator):
    params, log_likelihood, grads, _, objectives = _estimates(estimator, 1, temperature=0.5)
    exact = jax.grad(lambda p: jnp.sum(_exact_elbo(p, log_likelihood)))(params)
    for name, estimate, truth in zip(("logits", "prior", "w"), grads, exact, strict=True):
        estimate = np.asarray(estimate)
        assert estimate.shape == (REPEATS, *np.shape(truth)) and np.all(np.isfinite(estimate))
        bias = estimate.mean(0) - np.asarray(truth)
        print(f"{estimator} (τ = 0.5) bias for {name}: {np.round(bias, 3).tolist()}")
    # The objective (hard code + closed-form entropy) is still an unbiased ELBO estimate.
    stderr = np.asarray(objectives).std(0) / np.sqrt(REPEATS)
    error = np.abs(np.asarray(objectives).mean(0) - np.asarray(_exact_elbo(params, log_likelihood)))
    assert np.all(error < 5 * stderr)


def test_the_variance_gradient_reaches_the_control_variate_parameters():
    params, log_likelihood = _problem()
    phi = _cv_params("relax")

    def loss(phi):
        logits, prior, w = params
        surrogate, _ = bernoulli_vae.elbo(
            jax.random.key(3),
            logits,
            log_likelihood(w),
            prior,
            estimator="relax",
            cv_params=phi,
            residual=_residual,
        )
        return -jnp.mean(surrogate)

    grads = jax.jit(jax.grad(loss))(phi)
    for leaf in jax.tree_util.tree_leaves(grads):
        assert np.all(np.isfinite(leaf)) and np.any(leaf != 0)


def test_gradient_variance_of_a_known_estimator_and_disarm_below_arm():
    # ∇θ (θ · ε) = ε ~ N(0, I): the variance is 1 per element.
    def noisy(key, theta):
        return jnp.sum(theta * jax.random.normal(key, theta.shape))

    result = jax.jit(
        lambda k: bernoulli_vae.gradient_variance(k, noisy, jnp.zeros(50), 400, batch_size=100)
    )(jax.random.key(0))
    assert int(result["elements"]) == 50
    assert abs(float(result["mean"]) - 1) < 0.05  # SE of the mean of 50 variances: ~0.01
    np.testing.assert_allclose(result["total"], 50 * result["mean"], rtol=1e-12)

    # DisARM never has more variance than ARM for one pair (Dong et al. 2020).
    params, log_likelihood = _problem()

    def variance(estimator):
        def loss(key, logits):
            surrogate, _ = _surrogate(key, (logits, *params[1:]), log_likelihood, estimator)
            return -jnp.mean(surrogate)

        return bernoulli_vae.gradient_variance(jax.random.key(5), loss, params[0], 2000)["mean"]

    disarm, arm = jax.jit(lambda: (variance("disarm"), variance("arm")))()
    assert float(disarm) < float(arm)


def test_is_estimate_is_above_the_elbo_and_converges():
    params, log_likelihood = _problem()
    logits, prior, w = params
    log_joint, log_q = _log_joint_and_q(params, log_likelihood)
    exact_log_px = logsumexp(log_joint, axis=0)
    log_px = bernoulli_vae.importance_sampled_log_likelihood(
        jax.random.key(8),
        np.zeros((B, 1)),  # the toy decoder ignores x; the encoder returns the fixed logits
        lambda x: (logits, prior),
        lambda x, b: log_likelihood(w)(b),
        num_samples=2000,
        chunk_size=300,  # 7 chunks, the last one masked
        batch_size=B,
    )
    # Delta-method standard error of log mean_k w_k from the exact moments of w = p(x, b)/q(b).
    q, weights = jnp.exp(log_q), jnp.exp(log_joint - log_q)
    relative_variance = jnp.sum(q * weights**2, 0) / jnp.sum(q * weights, 0) ** 2 - 1
    np.testing.assert_array_less(
        np.abs(log_px - exact_log_px), 5 * np.sqrt(relative_variance / 2000)
    )
    elbo = bernoulli_vae.discrete_elbo(jax.random.key(9), logits, log_likelihood(w), prior, 20000)
    assert np.all(np.asarray(elbo) < log_px)
    np.testing.assert_allclose(elbo, _exact_elbo(params, log_likelihood), atol=0.05)


def test_bad_arguments():
    (logits, prior, w), log_likelihood = _problem()
    f, key = log_likelihood(w), jax.random.key(0)
    with pytest.raises(ValueError, match=r"`estimator` must be one of .*disarm"):
        bernoulli_vae.elbo(key, logits, f, prior, estimator="reinforce")
    with pytest.raises(ValueError, match=r"`logits` must have shape \(B, D\)"):
        bernoulli_vae.elbo(key, logits[0], f, prior, estimator="disarm")
    with pytest.raises(ValueError, match="`prior_logits` must broadcast"):
        bernoulli_vae.elbo(key, logits, f, jnp.zeros(5), estimator="disarm")
    for estimator in ("reinforce_loo", "vimco"):
        with pytest.raises(ValueError, match="`num_samples` must be >= 2"):
            bernoulli_vae.elbo(key, logits, f, prior, estimator=estimator, num_samples=1)
    with pytest.raises(ValueError, match="cv_params"):
        bernoulli_vae.elbo(key, logits, f, prior, estimator="rebar")
    with pytest.raises(ValueError, match="needs `residual`"):
        bernoulli_vae.elbo(
            key, logits, f, prior, estimator="relax", cv_params=bernoulli_vae.rebar_params()
        )
    with pytest.raises(ValueError, match="`temperature` must be > 0"):
        bernoulli_vae.elbo(key, logits, f, prior, estimator="straight_through", temperature=0.0)
    with pytest.raises(ValueError, match=r"to shape \(K, B\)"):
        bernoulli_vae.elbo(key, logits, lambda b: b.sum(), prior, estimator="disarm")
    with pytest.raises(ValueError, match="`temperature` must be > 0"):
        bernoulli_vae.rebar_params(temperature=0.0)
