"""Discrete-latent estimators (reparam.estimators.discrete) against exact gradients by enumeration.

Two test problems, each a batch of two rows so one compiled program covers both (out = (2,)):
row 0 a quadratic f, row 1 a nonlinear one (cos, a product of three latents). Bernoulli: three
latents per row, 2³ configurations; categorical: two latents of three categories, 3² of them.

* unbiased (ARM, DisARM, IndeCateR, VIMCO; the score function as a reference): the mean over R
  repeats is within Z_THRESHOLD standard errors of the exact gradient, every coordinate.
* biased (straight-through, ReinMax, Gumbel-Rao): the bias is measured and printed (run with
  -s), not asserted away. Asserted are only properties the methods guarantee: ReinMax is exact
  for f quadratic in each latent at τ = 1 (the trapezoid rule it applies is exact there), and
  E[Gumbel-Rao] = E[straight-through Gumbel-softmax] (it is a conditional expectation of it).
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reparam import estimators
from reparam.estimators import diagnostics, discrete

Z_THRESHOLD = 5.0  # |MC mean − exact| ≤ 5 standard errors; fixed keys, so deterministic
REPEATS = 20_000
K = 2  # samples (pairs for ARM/DisARM) per estimate

# ---------------------------------------------------------------- Bernoulli problem
THETA = jnp.array([-0.8, 0.3, 1.2])
BERNOULLI_LOGITS = jnp.stack([THETA, THETA])  # (rows, latents)
W = jnp.array([1.0, -2.0, 1.5])


def bernoulli_rows(b):
    """b (..., 2, 3) -> (..., 2): row 0 quadratic, row 1 nonlinear; both with interactions."""
    q0, q1 = b[..., 0, :] @ W, b[..., 1, :] @ W
    quadratic = (q0 - 0.4) ** 2 + b[..., 0, 0] * b[..., 0, 1]
    nonlinear = jnp.cos(2.0 * q1) + 2.0 * b[..., 1, 0] * b[..., 1, 1] * b[..., 1, 2]
    return jnp.stack([quadratic, nonlinear], axis=-1)


def bernoulli_exact(logits=BERNOULLI_LOGITS):
    configs = jnp.array(list(itertools.product([0.0, 1.0], repeat=3)))  # (8, 3)

    def expectation(logits):
        log_q = configs[:, None, :] * jax.nn.log_sigmoid(logits) + (
            1 - configs[:, None, :]
        ) * jax.nn.log_sigmoid(-logits)  # (8, rows, 3)
        values = bernoulli_rows(jnp.broadcast_to(configs[:, None, :], (8, 2, 3)))  # (8, rows)
        return jnp.sum(jnp.exp(jnp.sum(log_q, axis=-1)) * values)

    return jax.grad(expectation)(logits)


# ---------------------------------------------------------------- categorical problem
CATEGORICAL_THETA = jnp.array([[0.5, -0.3, 0.1], [-1.0, 0.4, 0.8]])  # (latents, categories)
CATEGORICAL_LOGITS = jnp.stack([CATEGORICAL_THETA, CATEGORICAL_THETA])  # (rows, 2, 3)
V = jnp.array([[1.0, -1.0, 2.0], [0.5, 2.0, -1.5]])
M = jnp.array([[0.5, -1.0, 0.0], [1.0, 0.3, -0.7], [0.0, 2.0, 1.0]])


def categorical_rows(x):
    """x (..., 2, 2, 3) one-hot -> (..., 2): row 0 quadratic, row 1 nonlinear."""

    def parts(x):
        s = jnp.sum(x * V, axis=(-2, -1))
        return s, jnp.einsum("...i,ij,...j->...", x[..., 0, :], M, x[..., 1, :])

    s0, m0 = parts(x[..., 0, :, :])
    s1, m1 = parts(x[..., 1, :, :])
    return jnp.stack([(s0 - 0.5) ** 2 + m0, jnp.cos(1.5 * s1) + m1**3], axis=-1)


def categorical_exact(logits=CATEGORICAL_LOGITS):
    eye = jnp.eye(3)
    configs = jnp.array([[eye[i], eye[j]] for i, j in itertools.product(range(3), repeat=2)])

    def expectation(logits):
        x = jnp.broadcast_to(configs[:, None], (9, 2, 2, 3))
        log_q = jnp.sum(x * jax.nn.log_softmax(logits, axis=-1), axis=(-2, -1))  # (9, rows)
        return jnp.sum(jnp.exp(log_q) * categorical_rows(x))

    return jax.grad(expectation)(logits)


# ---------------------------------------------------------------- estimators under test
def _score_reference(distribution, f):
    # RELAX with a zero control variate is REINFORCE (the score-function estimator).
    return lambda k, lg: estimators.relax(
        k, f, lg, K, lambda z: jnp.zeros(z.shape[:2]), distribution=distribution
    )


UNBIASED = {
    "bernoulli_score_function": (_score_reference("bernoulli", bernoulli_rows), "bernoulli"),
    "bernoulli_arm": (lambda k, lg: discrete.arm(k, bernoulli_rows, lg, K), "bernoulli"),
    "bernoulli_disarm": (lambda k, lg: discrete.disarm(k, bernoulli_rows, lg, K), "bernoulli"),
    "bernoulli_indecater": (
        lambda k, lg: discrete.indecater(k, bernoulli_rows, lg, K, distribution="bernoulli"),
        "bernoulli",
    ),
    "categorical_score_function": (
        _score_reference("categorical", categorical_rows),
        "categorical",
    ),
    "categorical_indecater": (
        lambda k, lg: discrete.indecater(k, categorical_rows, lg, K),
        "categorical",
    ),
}

TAU = 1.0  # ReinMax's exactness for quadratics holds at τ = 1
GR_TAU = 0.5
BIASED = {
    "straight_through": lambda k, lg, d, f: discrete.straight_through(k, f, lg, K, distribution=d),
    "reinmax": lambda k, lg, d, f: discrete.reinmax(k, f, lg, K, temperature=TAU, distribution=d),
    "gumbel_rao": lambda k, lg, d, f: discrete.gumbel_rao(
        k, f, lg, GR_TAU, K, num_inner=10, distribution=d
    ),
    "st_gumbel_softmax": lambda k, lg, d, f: estimators.gumbel_softmax(
        k, f, lg, GR_TAU, K, distribution=d, straight_through=True
    ),
}
PROBLEMS = {
    "bernoulli": (bernoulli_rows, BERNOULLI_LOGITS, bernoulli_exact),
    "categorical": (categorical_rows, CATEGORICAL_LOGITS, categorical_exact),
}


def _stats(surrogate, logits, seed=0):
    return diagnostics.gradient_statistics(jax.random.key(seed), surrogate, logits, REPEATS)


def _assert_unbiased(mean, error, exact, what):
    mean, error, exact = np.asarray(mean), np.asarray(error), np.asarray(exact)
    assert mean.shape == exact.shape, (what, mean.shape, exact.shape)
    assert np.all(np.isfinite(mean)) and np.all(error > 0), (what, mean, error)
    np.testing.assert_array_less(
        np.abs(mean - exact),
        Z_THRESHOLD * error + 1e-12,
        err_msg=f"{what}: MC {mean} ± {error} vs exact {exact}",
    )


# Variances measured by the unbiasedness test, for the ordering test below.
_VARIANCES: dict[str, np.ndarray] = {}


@pytest.mark.parametrize("name", UNBIASED)
def test_unbiased_estimators_match_the_exact_gradient(name):
    surrogate, distribution = UNBIASED[name]
    _, logits, exact = PROBLEMS[distribution]
    stats = _stats(surrogate, logits, seed=1)
    _VARIANCES[name] = np.asarray(stats.variance)
    print(
        f"\n{name}: mean variance per coordinate {np.mean(stats.variance):.4g} "
        f"(rows: {np.asarray(jnp.mean(stats.variance, axis=tuple(range(1, logits.ndim))))})"
    )
    _assert_unbiased(stats.mean, stats.std_error, exact(), name)


def test_disarm_has_no_more_variance_than_arm():
    """Dong et al. (2020) prove Var[DisARM] ≤ Var[ARM] per coordinate for one pair; measured
    on the Bernoulli problem with the same number of f evaluations."""
    for name in ("bernoulli_arm", "bernoulli_disarm", "bernoulli_score_function"):
        if name not in _VARIANCES:
            surrogate, _ = UNBIASED[name]
            _VARIANCES[name] = np.asarray(_stats(surrogate, BERNOULLI_LOGITS, seed=1).variance)
    arm, disarm = _VARIANCES["bernoulli_arm"], _VARIANCES["bernoulli_disarm"]
    print(f"\nvariance per coordinate (rows × latents), K = {K}, R = {REPEATS}")
    for name, variance in _VARIANCES.items():
        print(f"  {name:28s} {np.array2string(variance.ravel(), precision=4)}")
    # The theorem holds exactly; the estimated variances have ≈ 1% relative error at R = 2·10⁴,
    # so allow 5%.
    np.testing.assert_array_less(disarm, 1.05 * arm)


@pytest.mark.parametrize("distribution", PROBLEMS)
def test_biased_estimators_bias_is_reported(distribution):
    """Bias of ST, ReinMax and Gumbel-Rao vs the exact gradient, printed (not asserted away).

    Asserted: finite; positively correlated with the exact gradient per row; ReinMax unbiased on
    the quadratic row (τ = 1); Gumbel-Rao's mean equals straight-through Gumbel-softmax's.
    """
    f, logits, exact_fn = PROBLEMS[distribution]
    exact = np.asarray(exact_fn())
    results = {}
    for seed, (name, build) in enumerate(BIASED.items()):
        stats = _stats(lambda k, lg, build=build: build(k, lg, distribution, f), logits, seed + 2)
        results[name] = stats
        mean = np.asarray(stats.mean)
        assert np.all(np.isfinite(mean)) and np.all(np.isfinite(np.asarray(stats.variance)))
        bias, error = mean - exact, np.asarray(stats.std_error)
        print(f"\n{distribution} {name}:")
        for row in range(2):
            m, e = mean[row].ravel(), exact[row].ravel()
            cosine = m @ e / (np.linalg.norm(m) * np.linalg.norm(e))
            relative = np.linalg.norm(bias[row]) / np.linalg.norm(e)
            print(
                f"  row {row} ({'quadratic' if row == 0 else 'nonlinear'}): "
                f"relative bias ‖mean − exact‖/‖exact‖ = {relative:.3f}, cosine {cosine:.3f}, "
                f"max |bias|/s.e. {np.max(np.abs(bias[row]) / error[row]):.1f}"
                f", mean variance {np.mean(np.asarray(stats.variance)[row]):.4g}"
            )
            print(f"    bias {np.array2string(bias[row].ravel(), precision=4)}")
            if name != "st_gumbel_softmax":
                assert cosine > 0, (distribution, name, row, cosine)
    reinmax = results["reinmax"]
    _assert_unbiased(reinmax.mean[0], reinmax.std_error[0], exact[0], "reinmax, quadratic row")
    rao, gumbel = results["gumbel_rao"], results["st_gumbel_softmax"]
    _assert_unbiased(
        rao.mean,
        np.sqrt(np.asarray(rao.std_error) ** 2 + np.asarray(gumbel.std_error) ** 2),
        gumbel.mean,
        "gumbel_rao vs straight-through Gumbel-softmax",
    )
    print(
        f"  Gumbel-Rao (10 inner) / ST-GS variance: "
        f"{np.mean(np.asarray(rao.variance)) / np.mean(np.asarray(gumbel.variance)):.3f}"
    )
    np.testing.assert_array_less(np.asarray(rao.variance), np.asarray(gumbel.variance))


# ---------------------------------------------------------------- VIMCO
def _log_q(b, logits, distribution):
    """log q(b) summed over all latents but the leading (sample) axes of b."""
    if distribution == "categorical":
        per_latent = jnp.sum(b * jax.nn.log_softmax(logits, axis=-1), axis=-1)
        num_latents = logits.ndim - 1
    else:
        per_latent = b * jax.nn.log_sigmoid(logits) + (1 - b) * jax.nn.log_sigmoid(-logits)
        num_latents = logits.ndim
    return jnp.sum(per_latent, axis=tuple(range(per_latent.ndim - num_latents, per_latent.ndim)))


def _vimco_exact(log_joint, params, distribution, configs, num_samples):
    """∇ E[log mean_k w_k] over all tuples of `num_samples` configurations (enumerated)."""
    count = configs.shape[0]
    tuples = jnp.array(list(itertools.product(range(count), repeat=num_samples)))  # (T, K)

    def bound(params):
        logits, phi = params
        b = configs[tuples.T]  # (K, T, ...)
        log_q = _log_q(b, logits, distribution)  # (K, T)
        log_w = log_joint(b, phi) - log_q
        value = jax.scipy.special.logsumexp(log_w, axis=0) - math.log(num_samples)
        return jnp.sum(jnp.exp(jnp.sum(log_q, axis=0)) * value)

    return jax.jit(jax.grad(bound))(params)


VIMCO_A = jnp.array([0.7, -1.2])
VIMCO_U = jnp.array([1.0, -0.5, 0.3])


def _bernoulli_log_joint(b, phi):
    q = b @ VIMCO_A
    return q - 0.5 * q**2 + phi * b[..., 0] * b[..., 1] - 1.0


def _categorical_log_joint(x, phi):
    return (
        jnp.einsum("...i,ij,...j->...", x[..., 0, :], M, x[..., 1, :])
        + phi * (x[..., 0, :] @ VIMCO_U)
        - 0.5 * jnp.sum(x * V, axis=(-2, -1)) ** 2
    )


VIMCO_CASES = {
    # (log_joint, logits, configurations, K): 4³ = 64 and 9² = 81 tuples to enumerate.
    "bernoulli": (
        _bernoulli_log_joint,
        jnp.array([-0.6, 0.9]),
        jnp.array(list(itertools.product([0.0, 1.0], repeat=2))),
        3,
    ),
    "categorical": (
        _categorical_log_joint,
        CATEGORICAL_THETA,
        jnp.array(
            [[jnp.eye(3)[i], jnp.eye(3)[j]] for i, j in itertools.product(range(3), repeat=2)]
        ),
        2,
    ),
}


@pytest.mark.parametrize("distribution", VIMCO_CASES)
def test_vimco_is_unbiased_for_the_multi_sample_bound(distribution):
    """Gradients w.r.t. the logits and a parameter φ of log_joint (the pathwise term)."""
    log_joint, logits, configs, num_samples = VIMCO_CASES[distribution]
    params = (logits, jnp.array(0.8))
    exact = _vimco_exact(log_joint, params, distribution, configs, num_samples)

    def surrogate(key, params):
        logits, phi = params
        return discrete.vimco(
            key, lambda b: log_joint(b, phi), logits, num_samples, distribution=distribution
        )

    stats = diagnostics.gradient_statistics(jax.random.key(3), surrogate, params, REPEATS)
    print(f"\nvimco {distribution}: variance (logits, φ) {[np.asarray(v) for v in stats.variance]}")
    for name, mean, error, reference in zip(
        ("logits", "phi"), stats.mean, stats.std_error, exact, strict=True
    ):
        _assert_unbiased(mean, error, reference, f"vimco {distribution} ∇{name}")


def test_vimco_with_log_joint_equal_to_log_q_has_zero_bound_and_gradient():
    """log_joint = log q(b; logits) gives w ≡ 1 for every logits: the bound is 0 and every term
    of the estimate vanishes (learning signals L̂ − L̂₋ₖ = 0, log w constant)."""
    logits = jnp.array([0.3, -1.1])
    value, grad = jax.jit(
        jax.value_and_grad(
            lambda lg: discrete.vimco(
                jax.random.key(4), lambda b: _log_q(b, lg, "bernoulli"), lg, 5
            )
        )
    )(logits)
    np.testing.assert_allclose(value, 0.0, atol=1e-12)
    np.testing.assert_allclose(grad, 0.0, atol=1e-12)


# ---------------------------------------------------------------- shapes, values, extremes
ALL = {
    "straight_through": lambda k, f, lg, d: discrete.straight_through(k, f, lg, 3, distribution=d),
    "reinmax": lambda k, f, lg, d: discrete.reinmax(k, f, lg, 3, distribution=d),
    "gumbel_rao": lambda k, f, lg, d: discrete.gumbel_rao(k, f, lg, 0.5, 3, distribution=d),
    "indecater": lambda k, f, lg, d: discrete.indecater(k, f, lg, 3, distribution=d),
    "vimco": lambda k, f, lg, d: discrete.vimco(k, f, lg, 3, distribution=d),
    "arm": lambda k, f, lg, d: discrete.arm(k, f, lg, 3, distribution=d),
    "disarm": lambda k, f, lg, d: discrete.disarm(k, f, lg, 3, distribution=d),
}
BERNOULLI_ONLY = ("arm", "disarm")


@pytest.mark.parametrize("name", ALL)
def test_shapes_values_and_extreme_logits(name):
    """Per-example objectives of (B, d) latents: surrogate (B,), gradient like the logits, all
    finite even for |logits| up to 30 in float32; for f ≡ c the value is c and the gradient 0."""
    shapes = {"bernoulli": (4, 3), "categorical": (4, 3, 5)}
    if name in BERNOULLI_ONLY:
        del shapes["categorical"]
    logits = {
        d: jnp.linspace(-30.0, 30.0, math.prod(shape), dtype=jnp.float32).reshape(shape)
        for d, shape in shapes.items()
    }

    def f(b):
        weights = jnp.arange(1.0, 1.0 + math.prod(b.shape[2:]), dtype=b.dtype)
        return jnp.sin(b.reshape((*b.shape[:2], -1)) @ weights)  # (K, B)

    def constant(b):
        return jnp.full(b.shape[:2], 2.5, b.dtype)

    @jax.jit  # one program per estimator: both distributions, both functions
    def run(key, logits):
        results = {}
        for d, lg in logits.items():
            keys = jax.random.split(jax.random.fold_in(key, len(d)))
            for fn, k in zip((f, constant), keys, strict=True):

                def objective(lg, fn=fn, k=k, d=d):
                    surrogate = ALL[name](k, fn, lg, d)
                    return jnp.sum(surrogate), surrogate

                results[d, fn.__name__] = jax.value_and_grad(objective, has_aux=True)(lg)
        return results

    for (d, fn), ((value, surrogate), grad) in run(jax.random.key(5), logits).items():
        assert surrogate.shape == (4,), (name, d, surrogate.shape)
        assert grad.shape == logits[d].shape and grad.dtype == jnp.float32, (name, d)
        assert np.all(np.isfinite(np.asarray(grad))) and np.isfinite(value), (name, d, fn, grad)
        if fn == "constant" and name != "vimco":  # VIMCO's value is log mean exp(log_joint − log q)
            np.testing.assert_allclose(value, 2.5 * 4, rtol=1e-6)
            np.testing.assert_allclose(grad, 0.0, atol=1e-6)


# ---------------------------------------------------------------- bad input
def _f(b):
    return jnp.sum(b.reshape(b.shape[0], -1), axis=-1)


@pytest.mark.parametrize("name", ALL)
def test_bad_input_raises_clear_errors(name):
    estimator = ALL[name]
    where = f"reparam.estimators.{name}"
    keys, logits = iter(jax.random.split(jax.random.key(7), 16)), jnp.zeros(3)
    distribution = "bernoulli"
    with pytest.raises(TypeError, match=rf"{where}: `key` must be a PRNG key"):
        estimator(0, _f, logits, distribution)
    with pytest.raises(TypeError, match=rf"{where}: `(f|log_joint)` must be callable"):
        estimator(next(keys), "f", logits, distribution)
    with pytest.raises(ValueError, match=rf"{where}: `distribution` must be one of"):
        estimator(next(keys), _f, logits, "gaussian")
    with pytest.raises(ValueError, match=rf"{where}: `logits` must be finite"):
        estimator(next(keys), _f, jnp.array([0.0, jnp.inf]), distribution)
    with pytest.raises(ValueError, match=rf"{where}: `(f|log_joint)` must return one value per"):
        estimator(next(keys), lambda b: jnp.zeros(7), logits, distribution)
    with pytest.raises(ValueError, match=rf"{where}: .*`out` a prefix of the batch shape"):
        estimator(next(keys), lambda b: jnp.zeros((b.shape[0], 5)), logits, distribution)
    if name in BERNOULLI_ONLY:
        with pytest.raises(ValueError, match=r"Bernoulli latents only"):
            estimator(next(keys), _f, jnp.zeros((2, 3)), "categorical")
    else:
        with pytest.raises(ValueError, match=rf"{where}: `logits` must have at least 1"):
            estimator(next(keys), _f, jnp.array(0.0), "categorical")
        with pytest.raises(ValueError, match=rf"{where}: categorical `logits` .* n >= 2"):
            estimator(next(keys), _f, jnp.zeros((3, 1)), "categorical")


def test_bad_counts_and_temperatures():
    keys, logits = iter(jax.random.split(jax.random.key(8), 32)), jnp.zeros(3)
    for fn in (discrete.arm, discrete.disarm, discrete.indecater, discrete.straight_through):
        with pytest.raises(ValueError, match=r"`num_samples` must be >= 1; got 0"):
            fn(next(keys), _f, logits, 0)
        with pytest.raises(TypeError, match=r"`num_samples` must be a Python int, got float"):
            fn(next(keys), _f, logits, 2.0)
        with pytest.raises(TypeError, match=r"`num_samples` must be a Python int, got bool"):
            fn(next(keys), _f, logits, True)
    with pytest.raises(ValueError, match=r"vimco: `num_samples` must be >= 2 \(the leave-one-out"):
        discrete.vimco(next(keys), _f, logits, 1)
    with pytest.raises(ValueError, match=r"gumbel_rao: `num_inner` must be >= 1; got 0"):
        discrete.gumbel_rao(next(keys), _f, logits, 0.5, 2, num_inner=0)
    with pytest.raises(ValueError, match=r"gumbel_rao: `temperature` must be > 0"):
        discrete.gumbel_rao(next(keys), _f, logits, 0.0, 2)
    with pytest.raises(ValueError, match=r"reinmax: `temperature` must be > 0"):
        discrete.reinmax(next(keys), _f, logits, 2, temperature=-1.0, distribution="bernoulli")
    with pytest.raises(ValueError, match=r"straight_through: parameter batch shapes"):
        discrete.straight_through(
            next(keys),
            _f,
            jnp.zeros((2, 3)),
            2,
            temperature=jnp.ones(4),
            distribution="categorical",
        )
