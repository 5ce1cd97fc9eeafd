"""reparam.vi and reparam.bijectors: exact posteriors, STL at the optimum, bijections, bad input.

The conjugate model: θ ~ N(0, I₃), y_i ~ N(a_iᵀθ, s²) for 20 rows a_i, whose posterior is
N(m, P) with P = (I + AᵀA/s²)⁻¹, m = P Aᵀy/s². A full-rank Gaussian q contains it, so every
estimator's optimum is q = p exactly; STL's gradient is then zero draw by draw.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reparam import vi
from reparam.vi import bijectors

# ------------------------------------------------------------------------------------------
# The conjugate Gaussian model

_RNG = np.random.default_rng(0)
A = _RNG.normal(size=(20, 3))
NOISE = 0.5
Y = A @ np.array([1.0, -2.0, 0.5]) + NOISE * _RNG.normal(size=20)
PRECISION = np.eye(3) + A.T @ A / NOISE**2
COV = np.linalg.inv(PRECISION)
MEAN = COV @ A.T @ Y / NOISE**2
SD = np.sqrt(np.diag(COV))


def gaussian_log_joint(params):
    theta = params["theta"]
    return -0.5 * jnp.sum(theta**2) - 0.5 * jnp.sum((Y - A @ theta) ** 2) / NOISE**2


INIT = {"theta": np.zeros(3)}
STEPS = 4000
# Decay the step size to 0: with Adam's normalized steps a constant rate keeps q wandering at
# the rate's scale even when the gradients vanish.
OPTIMIZER = optax.adam(optax.cosine_decay_schedule(3e-2, STEPS))


def _draw_moments(result, key, n):
    draws = np.asarray(result.posterior.sample(key, n)["theta"])
    return draws, draws.mean(0), np.cov(draws.T)


def _assert_moments_within_mc_error(draws, mean, cov, exact_mean, exact_cov, sigmas=5.0):
    """Sample moments of n draws vs the exact ones, to `sigmas` Monte-Carlo standard errors:
    se(mean_i) = √(Σ_ii / n), se(cov_ij) = √((Σ_ii Σ_jj + Σ_ij²) / n) for Gaussian draws."""
    n = draws.shape[0]
    var = np.diag(exact_cov)
    se_mean = np.sqrt(var / n)
    np.testing.assert_array_less(np.abs(mean - exact_mean), sigmas * se_mean)
    if exact_cov is not None:
        se_cov = np.sqrt((np.outer(var, var) + exact_cov**2) / n)
        np.testing.assert_array_less(np.abs(cov - exact_cov), sigmas * se_cov)


SEEDS = 6


def _fits(seeds=SEEDS, **kwargs):
    """Independent fits (different keys, one compilation): their spread measures the fit's
    own Monte-Carlo error, from which the tolerances below are derived."""
    kwargs = dict(optimizer=OPTIMIZER, num_steps=STEPS, stop_at_convergence=False) | kwargs
    return [
        vi.fit(jax.random.key(100 + i), gaussian_log_joint, INIT, **kwargs) for i in range(seeds)
    ]


def _assert_within_fit_error(estimates, exact, scale, floor=1e-4, sigmas=5.0):
    """The mean over independent fits vs `exact`, to `sigmas` standard errors of that mean
    (from the fits' spread), plus `floor` · scale for the optimizer's deterministic residual."""
    estimates = np.asarray(estimates)
    se = estimates.std(0, ddof=1) / np.sqrt(len(estimates))
    np.testing.assert_array_less(np.abs(estimates.mean(0) - exact), sigmas * se + floor * scale)


@pytest.mark.parametrize(
    "gradient, bound, num_samples",
    [("stl", "elbo", 1), ("standard", "elbo", 4), ("dreg", "iwae", 4)],
)
def test_full_rank_fit_matches_the_exact_posterior(gradient, bound, num_samples):
    results = _fits(family="full_rank", num_samples=num_samples, bound=bound, gradient=gradient)
    for result in results:
        assert result.status in ("converged", "max_steps")
        assert result.trace.shape == (STEPS,) and np.isfinite(result.trace).all()
    gaussians = [r.posterior.gaussian() for r in results]
    locs = np.array([g[0] for g in gaussians])
    covs = np.array([g[1] for g in gaussians])
    _assert_within_fit_error(locs, MEAN, SD)
    _assert_within_fit_error(covs, COV, np.outer(SD, SD))
    # And not by luck of a wide spread: every fit is close in absolute terms.
    np.testing.assert_allclose(locs, np.broadcast_to(MEAN, locs.shape), atol=0.1 * SD.min())
    # Draws of θ from `sample` have q's moments, to the draws' Monte-Carlo error.
    draws, mean, cov = _draw_moments(results[0], jax.random.key(2), 40_000)
    _assert_moments_within_mc_error(draws, mean, cov, *gaussians[0])


def test_stl_fit_lands_on_the_exact_posterior():
    """STL's gradient variance vanishes at the optimum, so its iterates converge to q = p."""
    result = vi.fit(
        jax.random.key(3),
        gaussian_log_joint,
        INIT,
        family="full_rank",
        optimizer=OPTIMIZER,
        num_steps=STEPS,
        gradient="stl",
        stop_at_convergence=False,
    )
    loc, cov = result.posterior.gaussian()
    kl = 0.5 * (
        np.trace(PRECISION @ cov)
        + (MEAN - loc) @ PRECISION @ (MEAN - loc)
        - 3
        + np.linalg.slogdet(COV)[1]
        - np.linalg.slogdet(cov)[1]
    )
    assert kl < 1e-6


def test_mean_field_fit_matches_the_mean_field_optimum():
    """The best diagonal Gaussian for a Gaussian posterior has the exact mean and variances
    1 / Λ_ii (Λ the precision), a closed form to test against; analytic-entropy ELBO."""
    results = _fits(family="mean_field", num_samples=4, gradient="analytic_entropy")
    gaussians = [r.posterior.gaussian() for r in results]
    _assert_within_fit_error([g[0] for g in gaussians], MEAN, SD)
    mf_var = 1 / np.diag(PRECISION)
    _assert_within_fit_error([np.diag(g[1]) for g in gaussians], mf_var, mf_var)
    cov = gaussians[0][1]
    np.testing.assert_array_equal(cov, np.diag(np.diag(cov)))


def test_low_rank_fit_recovers_the_mean():
    # rank 2 < d = 3 cannot hold P exactly; its optimal mean is still exact (for a fixed
    # covariance, KL(q || p) is minimized by the posterior mean).
    result = vi.fit(
        jax.random.key(6),
        gaussian_log_joint,
        INIT,
        family="low_rank",
        rank=2,
        optimizer=OPTIMIZER,
        num_steps=STEPS,
        gradient="stl",
        stop_at_convergence=False,
    )
    loc, cov = result.posterior.gaussian()
    np.testing.assert_allclose(loc, MEAN, atol=0.01 * SD.min())
    # KL(q || p) ≥ 0 is the gap; q can only be as wide as p along its principal axes.
    assert np.all(np.linalg.eigvalsh(PRECISION @ cov) < 1 + 1e-3)


def test_constrained_fit_adds_the_log_det_jacobian():
    """A log-normal rate and a logit-normal probability are exactly Gaussian in unconstrained
    space, so the mean-field STL fit lands on (m, s) there, provided the change of variables
    adds log|det J| (without it the optimum moves: for the log-normal, to m − s²)."""
    m, s = np.array([0.7, -0.4]), np.array([0.3, 0.5])

    def log_joint(params):
        rate, p = params["rate"], params["p"]
        log_normal = jax.scipy.stats.norm.logpdf(jnp.log(rate), m[0], s[0]) - jnp.log(rate)
        logit = jnp.log(p) - jnp.log1p(-p)
        logit_normal = jax.scipy.stats.norm.logpdf(logit, m[1], s[1]) - jnp.log(p * (1 - p))
        return log_normal + logit_normal

    result = vi.fit(
        jax.random.key(17),
        log_joint,
        {"rate": 1.0, "p": 0.5},
        family="mean_field",
        constraints={"rate": bijectors.positive, "p": bijectors.unit_interval},
        optimizer=OPTIMIZER,
        num_steps=STEPS,
        stop_at_convergence=False,
    )
    loc, cov = result.posterior.gaussian()
    order = [1, 0]  # u is flattened in the pytree's (sorted-key) order: p, rate
    np.testing.assert_allclose(loc, m[order], atol=1e-4)
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), s[order], rtol=1e-4)


def _exact_posterior(guide, loc, scale_tril):
    """A full-rank Posterior set to N(loc, L Lᵀ) in the raw parameterization."""
    scale = jnp.diag(scale_tril)
    params = {
        "loc": loc,
        "scale_raw": bijectors.softplus.inverse(scale),
        "tril_raw": scale_tril / scale[:, None] - jnp.eye(len(scale)),
        "log_concentration": (),
    }
    return vi.Posterior(guide, params)


def test_stl_gradients_vanish_at_the_exact_posterior():
    guide, _ = vi.make_guide(INIT, "full_rank")
    posterior = _exact_posterior(guide, jnp.asarray(MEAN), jnp.linalg.cholesky(COV))
    keys = jax.random.split(jax.random.key(7), 8)

    def grad(key, gradient, bound="elbo"):
        fn = lambda p: vi.surrogate(key, gaussian_log_joint, p, 4, bound, gradient)[0]
        return jax.tree.leaves(jax.grad(fn)(posterior))

    @jax.jit  # the four estimators' gradients in one compiled program
    def grads(key):
        stl_elbo, stl_iwae, dreg, standard_key = jax.random.split(key, 4)
        vanishing = [
            grad(stl_elbo, "stl", "elbo"),
            grad(stl_iwae, "stl", "iwae"),
            grad(dreg, "dreg", "iwae"),
        ]
        return vanishing, grad(standard_key, "standard")

    standard = []
    for key in keys:
        vanishing, standard_grads = grads(key)
        for g in (g for leaves in vanishing for g in leaves):
            np.testing.assert_allclose(g, 0.0, atol=1e-9)
        standard.append(np.concatenate([np.ravel(g) for g in standard_grads]))
    # The standard estimator's gradient is zero only on average: per draw it is not.
    assert np.abs(standard).max() > 0.1


@pytest.mark.parametrize(
    "bound, gradient", [("elbo", "stl"), ("elbo", "analytic_entropy"), ("iwae", "dreg")]
)
def test_gradient_estimators_agree_with_the_standard_one_in_expectation(bound, gradient):
    """Away from the optimum STL, the analytic-entropy ELBO and DReG are unbiased: their mean
    over many keys equals the standard pathwise gradient's, to 5 Monte-Carlo standard errors."""
    guide, _ = vi.make_guide(INIT, "full_rank")
    posterior = _exact_posterior(
        guide, jnp.asarray(MEAN + 0.5 * SD), 1.5 * jnp.linalg.cholesky(COV)
    )
    keys = jax.random.split(jax.random.key(16), 2 * 4000).reshape(2, 4000)

    def grads(keys, gradient):
        fn = lambda p, k: vi.surrogate(k, gaussian_log_joint, p, 4, bound, gradient)[0]
        per_key = jax.vmap(lambda k: jax.grad(fn)(posterior, k))(keys)
        leaves = jax.tree.leaves(per_key)
        return jnp.concatenate([jnp.reshape(g, (len(keys), -1)) for g in leaves], 1)

    # Both estimators in one compiled program.
    both = jax.jit(lambda ours, standard: (grads(ours, gradient), grads(standard, "standard")))
    ours, standard = (np.asarray(g) for g in both(keys[0], keys[1]))
    se = np.sqrt(ours.var(0) / len(ours) + standard.var(0) / len(standard))
    # tril_raw's upper triangle carries no gradient in either (0 ± 0).
    np.testing.assert_array_less(np.abs(ours.mean(0) - standard.mean(0)), 5 * se + 1e-12)
    assert np.abs(standard.mean(0)).max() > 10 * se.max()  # a real, non-zero gradient


# ------------------------------------------------------------------------------------------
# A Dirichlet factor: the conjugate Dirichlet–multinomial model

COUNTS = np.array([3.0, 10.0, 5.0])
PRIOR = np.array([1.5, 1.0, 2.0])


def dirichlet_log_joint(params):
    # Multinomial counts with a Dirichlet prior, plus an independent N(1, 0.5²) leaf (the
    # Gaussian block must be non-empty). Posterior: Dirichlet(PRIOR + COUNTS) × N(1, 0.5²).
    w, x = params["w"], params["x"]
    log_prior = jnp.sum((PRIOR - 1) * jnp.log(w))
    return log_prior + jnp.sum(COUNTS * jnp.log(w)) - 0.5 * ((x - 1.0) / 0.5) ** 2


DIRICHLET_INIT = {"w": np.full(3, 1 / 3), "x": np.array(0.0)}
DIRICHLET_CONSTRAINTS = {"w": vi.DirichletFactor(), "x": bijectors.real}


def test_stl_gradients_vanish_through_the_dirichlet_factor():
    """At q(w) = Dirichlet(PRIOR + COUNTS) the STL gradient w.r.t. the concentration, which
    flows through the implicit reparameterization of the gamma draws, is zero per draw."""
    guide, _ = vi.make_guide(DIRICHLET_INIT, "mean_field", DIRICHLET_CONSTRAINTS)
    posterior = vi.Posterior(
        guide,
        {
            "loc": jnp.array([1.0]),
            "scale_raw": bijectors.softplus.inverse(jnp.array([0.5])),
            "log_concentration": (jnp.log(PRIOR + COUNTS),),
        },
    )

    @functools.partial(jax.jit, static_argnums=1)
    def grad(key, gradient):
        fn = lambda p: vi.surrogate(key, dirichlet_log_joint, p, 8, "elbo", gradient)[0]
        return jax.grad(fn)(posterior).params

    for key in jax.random.split(jax.random.key(8), 4):
        stl_key, standard_key = jax.random.split(key)
        grads = grad(stl_key, "stl")
        np.testing.assert_allclose(grads["log_concentration"][0], 0.0, atol=1e-8)
        np.testing.assert_allclose(grads["loc"], 0.0, atol=1e-9)
        standard = grad(standard_key, "standard")["log_concentration"][0]
        assert np.abs(standard).max() > 1e-3


def test_dirichlet_factor_fit_recovers_the_conjugate_posterior():
    result = vi.fit(
        jax.random.key(9),
        dirichlet_log_joint,
        DIRICHLET_INIT,
        family="mean_field",
        constraints=DIRICHLET_CONSTRAINTS,
        optimizer=optax.adam(optax.cosine_decay_schedule(5e-2, 1500)),
        num_steps=1500,
        num_samples=4,
        stop_at_convergence=False,
    )
    (concentration,) = result.posterior.concentrations()
    np.testing.assert_allclose(concentration, PRIOR + COUNTS, rtol=0.02)
    # Draws of w follow q(w) = Dirichlet(concentration): mean and variance to 5 MC errors.
    n = 40_000
    draws = result.posterior.sample(jax.random.key(10), n)
    assert draws["w"].shape == (n, 3) and draws["x"].shape == (n,)
    np.testing.assert_allclose(np.sum(draws["w"], -1), 1.0, rtol=1e-6)
    total = concentration.sum()
    mean = concentration / total
    var = mean * (1 - mean) / (total + 1)
    w = np.asarray(draws["w"])
    np.testing.assert_array_less(np.abs(w.mean(0) - mean), 5 * np.sqrt(var / n))
    # Var of the sample variance ≈ (μ₄ − σ⁴)/n; ≤ 3σ⁴/n is a safe bound for these near-normal
    # marginals (a Dirichlet(1.1α) sampler, 9% narrower, fails this by ~9 σ).
    np.testing.assert_array_less(np.abs(w.var(0) - var), 5 * np.sqrt(2 * var**2 / n) * 1.3)


def test_dirichlet_factor_gradients_agree_with_the_standard_one_in_expectation():
    """Away from the optimum, STL through the implicit Dirichlet gradients is unbiased: its
    mean over many keys equals the standard estimator's (this also catches draws that do not
    follow the q whose log-density is used)."""
    guide, _ = vi.make_guide(DIRICHLET_INIT, "mean_field", DIRICHLET_CONSTRAINTS)
    posterior = vi.Posterior(
        guide,
        {
            "loc": jnp.array([0.5]),
            "scale_raw": bijectors.softplus.inverse(jnp.array([0.8])),
            "log_concentration": (jnp.log(jnp.array([8.0, 3.0, 9.0])),),  # exact: 4.5, 11, 7
        },
    )
    keys = jax.random.split(jax.random.key(18), 2 * 4000).reshape(2, 4000)

    @functools.partial(jax.jit, static_argnums=1)
    def grads(keys, gradient):
        fn = lambda p, k: vi.surrogate(k, dirichlet_log_joint, p, 1, "elbo", gradient)[0]
        per_key = jax.vmap(lambda k: jax.grad(fn)(posterior, k).params["log_concentration"])
        return per_key(keys)[0]

    stl, standard = np.asarray(grads(keys[0], "stl")), np.asarray(grads(keys[1], "standard"))
    se = np.sqrt(stl.var(0) / len(stl) + standard.var(0) / len(standard))
    np.testing.assert_array_less(np.abs(stl.mean(0) - standard.mean(0)), 5 * se)
    assert np.abs(standard.mean(0)).max() > 10 * se.max()


# ------------------------------------------------------------------------------------------
# Fitting mechanics


def test_posterior_sample_returns_the_constrained_pytree():
    params = {"loc": np.zeros(2), "nested": ({"scale": np.ones(3)}, np.array([0.2, 0.8]))}
    constraints = {
        "loc": bijectors.real,
        "nested": ({"scale": bijectors.positive}, bijectors.simplex),
    }
    guide, start = vi.make_guide(params, "low_rank", constraints)
    assert guide.dim == 2 + 3 + 1 and guide.rank == 2
    posterior = vi.init_posterior(jax.random.key(11), guide, start, init_scale=0.5)
    draws = posterior.sample(jax.random.key(12), 7)
    assert draws["loc"].shape == (7, 2)
    assert draws["nested"][0]["scale"].shape == (7, 3)
    assert np.all(draws["nested"][0]["scale"] > 0)
    np.testing.assert_allclose(draws["nested"][1].sum(-1), 1.0, rtol=1e-6)
    # The starting q is centred on init_params.
    u0 = posterior.params["loc"]
    np.testing.assert_allclose(bijectors.positive.forward(u0[2:5]), 1.0, rtol=1e-12)


def test_convergence_is_detected_stops_the_scan_and_matches_convergence_step():
    kwargs = dict(family="full_rank", num_steps=3000, window=50, rtol=1e-3, patience=3)
    stopped = vi.fit(jax.random.key(13), gaussian_log_joint, INIT, **kwargs)
    full = vi.fit(jax.random.key(13), gaussian_log_joint, INIT, stop_at_convergence=False, **kwargs)
    assert stopped.status == "converged" and 0 < stopped.converged_step < 3000
    assert stopped.steps_run == stopped.converged_step == full.converged_step
    assert full.steps_run == 3000
    # Same key, same steps: bit-identical up to the convergence step.
    np.testing.assert_array_equal(stopped.trace, full.trace[: stopped.steps_run])
    # The numpy test on the trace (used on NumPyro's losses) fires at the same step.
    assert vi.convergence_step(full.trace, 50, 1e-3, 3) == stopped.converged_step
    assert len(stopped.smoothed) == stopped.converged_step // 50


def test_posterior_is_the_mean_of_the_last_window_of_iterates():
    kwargs = dict(family="full_rank", window=2, stop_at_convergence=False)
    four = vi.fit(jax.random.key(19), gaussian_log_joint, INIT, num_steps=4, **kwargs)
    three = vi.fit(jax.random.key(19), gaussian_log_joint, INIT, num_steps=3, **kwargs)
    # Same key, same first three steps: the iterates after steps 3 and 4 average to q.
    expected = jax.tree.map(
        lambda a, b: (a + b) / 2, three.last_iterate.params, four.last_iterate.params
    )
    for got, want in zip(
        jax.tree.leaves(four.posterior.params), jax.tree.leaves(expected), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    unaveraged = vi.fit(
        jax.random.key(19), gaussian_log_joint, INIT, num_steps=4, average=False, **kwargs
    )
    for got, want in zip(
        jax.tree.leaves(unaveraged.posterior.params),
        jax.tree.leaves(four.last_iterate.params),
        strict=True,
    ):
        np.testing.assert_array_equal(got, want)


def _explodes_past_two(params):
    x = params["x"]
    # Finite until a draw crosses x = 2; the mode at 5 pulls q there.
    return jnp.where(x > 2.0, jnp.nan, -0.5 * (x - 5.0) ** 2)


def test_a_loss_that_turns_nan_stops_and_keeps_the_last_good_state():
    kwargs = dict(family="mean_field", optimizer=optax.adam(0.05), stop_at_convergence=False)
    with pytest.warns(vi.NonFiniteLossWarning, match=r"non-finite at step \d+"):
        result = vi.fit(jax.random.key(14), _explodes_past_two, {"x": 0.0}, num_steps=500, **kwargs)
    assert result.status == "nonfinite"
    step = result.stopped_step
    assert 0 < step < 500
    assert result.steps_run == step and result.trace.shape == (step,)
    assert np.isfinite(result.trace).all()
    params = jax.tree.leaves(result.posterior.params)
    assert all(np.isfinite(p).all() for p in params)
    # The state kept is the one the failing step started from, after `step` finite steps: the
    # same fit run for `step` steps ends there, bit for bit, with the same trace.
    shorter = vi.fit(jax.random.key(14), _explodes_past_two, {"x": 0.0}, num_steps=step, **kwargs)
    assert shorter.status == "max_steps"
    np.testing.assert_array_equal(shorter.trace, result.trace)
    for kept, expected in zip(params, jax.tree.leaves(shorter.last_iterate.params), strict=True):
        np.testing.assert_array_equal(kept, expected)
    # One more step from there is the non-finite one.
    with pytest.warns(vi.NonFiniteLossWarning):
        longer = vi.fit(
            jax.random.key(14), _explodes_past_two, {"x": 0.0}, num_steps=step + 1, **kwargs
        )
    assert longer.status == "nonfinite" and longer.stopped_step == step


# ------------------------------------------------------------------------------------------
# Bad input


def test_non_scalar_log_joint_is_named():
    with pytest.raises(ValueError, match=r"`log_joint` must return a scalar.*shape \(20,\)"):
        vi.fit(jax.random.key(0), lambda p: -0.5 * (Y - A @ p["theta"]) ** 2, INIT, num_steps=10)


@pytest.mark.parametrize("bad", [jnp.nan, -jnp.inf])
def test_non_finite_log_joint_at_the_initial_point_is_named(bad):
    with pytest.raises(ValueError, match=r"`log_joint` is (nan|-inf) at the initial point"):
        vi.fit(jax.random.key(0), lambda p: jnp.sum(p["theta"]) + bad, INIT, num_steps=10)


def test_non_finite_gradient_at_the_initial_point_names_the_leaf():
    log_joint = lambda p: -jnp.sum(p["a"] ** 2) + jnp.sqrt(p["b"])
    with pytest.raises(ValueError, match=r"gradient .* not finite .* `init_params\['b'\]`"):
        vi.fit(jax.random.key(0), log_joint, {"a": 1.0, "b": 0.0}, num_steps=10)


def test_mismatched_constraint_structure_is_named():
    with pytest.raises(ValueError, match="`constraints` must have the same structure"):
        vi.fit(
            jax.random.key(0),
            gaussian_log_joint,
            INIT,
            constraints={"theta": bijectors.real, "extra": bijectors.positive},
        )


def test_log_joint_expecting_another_structure_is_named():
    with pytest.raises(ValueError, match="does `init_params` have the structure"):
        vi.fit(jax.random.key(0), lambda p: p["missing"].sum(), INIT, num_steps=10)


def test_initial_value_outside_the_support_names_the_leaf():
    with pytest.raises(ValueError, match=r"`init_params\['tau'\]` must be positive.*-1"):
        vi.make_guide({"tau": -1.0}, constraints={"tau": bijectors.positive})
    with pytest.raises(ValueError, match=r"`init_params\['w'\]` must be on the open simplex"):
        vi.make_guide({"w": np.array([0.5, 0.6])}, constraints={"w": vi.DirichletFactor()})
    with pytest.raises(ValueError, match=r"`init_params\['w'\]` must be a vector"):
        vi.make_guide({"w": 1.0}, constraints={"w": bijectors.simplex})
    with pytest.raises(ValueError, match=r"`init_params\['x'\]` must be .*not NaN|real"):
        vi.make_guide({"x": np.nan})
    with pytest.raises(TypeError, match=r"must be a reparam\.bijectors\.Bijector"):
        vi.make_guide({"x": 0.0}, constraints={"x": "positive"})


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(family="diagonal"), "`family` must be one of"),
        (dict(bound="kl"), "`bound` must be one of"),
        (dict(gradient="reinforce"), "`gradient` must be one of"),
        (dict(gradient="dreg"), "'dreg' needs `bound`='iwae'"),
        (dict(bound="iwae", num_samples=1), "needs `num_samples` ≥ 2"),
        (dict(bound="iwae", num_samples=2, gradient="analytic_entropy"), "needs `bound`='elbo'"),
        (dict(num_steps=0), "`num_steps` must be >= 1"),
        (dict(family="low_rank", rank=4), "`rank` must be ≤ the dimension 3"),
        (dict(init_scale=-1.0), "`init_scale` must be > 0"),
    ],
)
def test_bad_options_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        vi.fit(jax.random.key(0), gaussian_log_joint, INIT, **kwargs)


def test_non_key_is_a_type_error():
    with pytest.raises(TypeError, match="`key` must be a PRNG key"):
        vi.fit(0, gaussian_log_joint, INIT)


# ------------------------------------------------------------------------------------------
# Bijections

ELEMENTWISE = [bijectors.identity, bijectors.exp, bijectors.softplus, bijectors.sigmoid]
ELEMENTWISE += [bijectors.Interval(-2.0, 3.0)]
VECTOR = [bijectors.ordered, bijectors.stick_breaking]


def _jacobian(bijector, u):
    """J of u -> x (dropping x's last coordinate for the simplex) via jax.jacobian."""
    if isinstance(bijector, bijectors.StickBreaking):
        forward = lambda v: bijector.forward(v)[:-1]
    else:
        forward = bijector.forward
    return jax.jacobian(forward)(u)


@functools.cache
def _round_trip(bijector):
    """x = forward(u), inverse(x), the log-det and jax.jacobian's J, in one compiled program per
    bijector: hypothesis calls it for every example (op by op, each call re-traces jacobian)."""

    @jax.jit
    def run(u):
        x = bijector.forward(u)
        return x, bijector.inverse(x), bijector.forward_log_det_jacobian(u), _jacobian(bijector, u)

    return run


@pytest.mark.parametrize("bijector", ELEMENTWISE + VECTOR, ids=lambda b: b.name)
@given(values=st.lists(st.floats(-6.0, 6.0), min_size=4, max_size=4))
def test_bijector_round_trip_and_log_det_match_jax_jacobian(bijector, values):
    u = jnp.asarray(values, jnp.float64)
    x, u_again, log_det, jac = _round_trip(bijector)(u)
    assert x.shape == bijector.forward_shape(u.shape)
    assert bijector.inverse_shape(x.shape) == u.shape
    assert np.all(bijector.in_support(np.asarray(x), np))
    np.testing.assert_allclose(u_again, u, rtol=1e-9, atol=1e-9)
    total = float(jnp.sum(log_det))
    by_jacobian = np.linalg.slogdet(np.asarray(jac).reshape(u.size, u.size))[1]
    np.testing.assert_allclose(total, by_jacobian, rtol=1e-9, atol=1e-9)
    if bijector.event_ndims == 0:
        assert log_det.shape == u.shape
    else:
        assert log_det.shape == ()


@pytest.mark.parametrize("bijector", ELEMENTWISE + VECTOR, ids=lambda b: b.name)
def test_bijector_log_dets_stay_finite_far_out(bijector):
    u = jnp.array([-40.0, -8.0, 8.0, 40.0])
    assert np.all(np.isfinite(bijector.forward_log_det_jacobian(u)))
    grad = jax.grad(lambda v: jnp.sum(bijector.forward_log_det_jacobian(v)))(u)
    assert np.all(np.isfinite(grad))


def test_simplex_bijector_maps_zero_to_uniform_and_batches():
    @jax.jit  # one compiled program, not one per primitive
    def run(key):
        u = jax.random.normal(key, (5, 2, 3))
        x = bijectors.simplex.forward(u)
        log_det = bijectors.simplex.forward_log_det_jacobian(u)
        return bijectors.simplex.forward(jnp.zeros(3)), u, x, log_det, bijectors.simplex.inverse(x)

    at_zero, u, x, log_det, u_again = run(jax.random.key(15))
    np.testing.assert_allclose(at_zero, np.full(4, 0.25))
    assert x.shape == (5, 2, 4) and log_det.shape == (5, 2)
    np.testing.assert_allclose(u_again, u, atol=1e-10)


def test_interval_rejects_empty_interval():
    with pytest.raises(ValueError, match="`low` must be < `high`"):
        bijectors.Interval(1.0, 1.0)


def test_constraint_aliases_are_the_stan_numpyro_choices():
    assert bijectors.positive is bijectors.exp
    assert bijectors.unit_interval is bijectors.sigmoid
    assert bijectors.simplex is bijectors.stick_breaking
    np.testing.assert_allclose(bijectors.sigmoid.forward(0.0), 0.5)
    assert math.isclose(float(bijectors.softplus.inverse(bijectors.softplus.forward(30.0))), 30.0)


def test_fit_result_is_the_deprecated_name_of_vi_result():
    # `reparam.train.FitResult` is the training loop's; vi's result has its own name.
    assert vi.FitResult is vi.VIResult
    assert "VIResult" in vi.__all__
