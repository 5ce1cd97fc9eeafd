"""multivariate_normal and low_rank_normal: the layers the generic harness cannot run for them.

scipy.stats.multivariate_normal for log_prob and entropy; closed forms for the moments;
Monte-Carlo gradients of E[z] and E[z zᵀ] against d/dθ of μ and Σ + μμᵀ within 5 standard errors
(≥ 10⁵ samples, fixed keys); Kolmogorov–Smirnov tests of marginals and of a projection; shape
errors; the low-rank density's Woodbury path (no d × d Cholesky).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy import stats
from scipy.linalg import solve_triangular

from reparam import _linalg, low_rank_normal, multivariate_normal
from tests.specs import low_rank_normal as low_rank_spec
from tests.specs import multivariate_normal as mvn_spec

Z_THRESHOLD = 5.0
MC_SAMPLES = 100_000


def _covariance_mvn(loc, scale_tril):
    """Σ = tril(L) tril(L)ᵀ, written here independently of the library (numpy or jax arrays)."""
    xp = jnp if isinstance(scale_tril, jax.Array) else np
    tril = xp.tril(scale_tril)
    return tril @ xp.swapaxes(tril, -1, -2)


def _covariance_low_rank(loc, cov_factor, scale_diag):
    xp = jnp if isinstance(cov_factor, jax.Array) else np
    return (
        cov_factor @ xp.swapaxes(cov_factor, -1, -2)
        + xp.eye(cov_factor.shape[-2]) * (scale_diag**2)[..., None]
    )


FAMILIES = [
    pytest.param(multivariate_normal, mvn_spec.SPECS[0].params, _covariance_mvn, id="mvn"),
    pytest.param(
        low_rank_normal, low_rank_spec.SPECS[0].params, _covariance_low_rank, id="low_rank"
    ),
]


# ---------------------------------------------------------------- distribution vs scipy
@pytest.mark.parametrize(("module", "params", "covariance_of"), FAMILIES)
def test_log_prob_and_entropy_match_scipy(module, params, covariance_of):
    jparams = tuple(jnp.asarray(p) for p in params)
    x = np.asarray(module.sample(jax.random.key(20), *jparams, sample_shape=(7,)))
    log_p = np.asarray(module.log_prob(x, *jparams))
    entropy = np.asarray(module.entropy(*jparams))
    assert log_p.shape == (7, 3)
    sigma = covariance_of(*params)
    for b in range(3):
        reference = stats.multivariate_normal(params[0][b], sigma[b])
        np.testing.assert_allclose(log_p[:, b], reference.logpdf(x[:, b]), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(entropy[b], reference.entropy(), rtol=1e-12)


@pytest.mark.parametrize(("module", "params", "covariance_of"), FAMILIES)
def test_moments_match_closed_forms(module, params, covariance_of):
    jparams = tuple(jnp.asarray(p) for p in params)
    sigma = covariance_of(*params)
    np.testing.assert_allclose(np.asarray(module.covariance(*jparams)), sigma, rtol=1e-12)
    np.testing.assert_allclose(
        np.asarray(module.variance(*jparams)), np.diagonal(sigma, axis1=-2, axis2=-1), rtol=1e-12
    )
    np.testing.assert_array_equal(np.asarray(module.mean(*jparams)), params[0])


@pytest.mark.parametrize(("module", "params", "covariance_of"), FAMILIES)
def test_marginals_and_a_projection_follow_the_normal_cdf(module, params, covariance_of):
    """KS with fixed keys, p > 1e-4: each z_i ~ N(μ_i, Σ_ii) and uᵀz ~ N(uᵀμ, uᵀΣu)."""
    jparams = tuple(jnp.asarray(p) for p in params)
    z = np.asarray(module.sample(jax.random.key(21), *jparams, sample_shape=(20_000,)))
    sigma = covariance_of(*params)
    loc = params[0]
    u = np.linspace(-1.0, 1.5, loc.shape[-1])  # mixes coordinates: sensitive to correlations
    for b in range(loc.shape[0]):
        for i in range(loc.shape[-1]):
            marginal = stats.norm(loc[b, i], np.sqrt(sigma[b, i, i])).cdf
            assert stats.kstest(z[:, b, i], marginal).pvalue > 1e-4, (b, i)
        projected = stats.norm(u @ loc[b], np.sqrt(u @ sigma[b] @ u)).cdf
        assert stats.kstest(z[:, b] @ u, projected).pvalue > 1e-4, b


def test_low_rank_log_prob_equals_full_rank_with_the_cholesky_of_sigma():
    params = tuple(jnp.asarray(p) for p in low_rank_spec.SPECS[0].params)
    x = low_rank_normal.sample(jax.random.key(22), *params, sample_shape=(5,))
    tril = np.linalg.cholesky(_covariance_low_rank(*low_rank_spec.SPECS[0].params))
    np.testing.assert_allclose(
        np.asarray(low_rank_normal.log_prob(x, *params)),
        np.asarray(multivariate_normal.log_prob(x, params[0], tril)),
        rtol=1e-10,
    )
    np.testing.assert_allclose(
        np.asarray(low_rank_normal.entropy(*params)),
        np.asarray(multivariate_normal.entropy(params[0], tril)),
        rtol=1e-12,
    )


@pytest.mark.parametrize(("module", "params", "covariance_of"), FAMILIES)
def test_sample_and_log_prob_is_sample_plus_log_prob(module, params, covariance_of):
    jparams = tuple(jnp.asarray(p) for p in params)
    with jax.debug_key_reuse(False):
        z, log_p = module.sample_and_log_prob(jax.random.key(23), *jparams, sample_shape=(4,))
        z_again = module.sample(jax.random.key(23), *jparams, sample_shape=(4,))
    np.testing.assert_array_equal(np.asarray(z), np.asarray(z_again))
    np.testing.assert_allclose(
        np.asarray(log_p), np.asarray(module.log_prob(z, *jparams)), rtol=1e-10
    )


def test_low_rank_log_prob_uses_an_r_by_r_cholesky_only():
    """Woodbury path: for d = 40, r = 2 no Cholesky or solve of a 40 × 40 matrix is traced."""
    d, r = 40, 2
    loc, factor, diag = jnp.zeros(d), jnp.ones((d, r)), jnp.ones(d)
    jaxpr = jax.make_jaxpr(low_rank_normal.log_prob)(jnp.zeros((5, d)), loc, factor, diag)

    def equations(jaxpr):
        """All equations, including those of nested jaxprs (jit, custom_jvp, ...)."""
        for eqn in jaxpr.eqns:
            yield eqn
            for param in eqn.params.values():
                for inner in param if isinstance(param, list | tuple) else (param,):
                    inner = getattr(inner, "jaxpr", inner)  # ClosedJaxpr -> Jaxpr
                    if hasattr(inner, "eqns"):
                        yield from equations(inner)

    # r ≤ reparam._linalg.SUBSTITUTION_MAX_SIZE: the r × r Cholesky and solves are unrolled
    # scalar-per-entry operations. A d × d factorization or solve (d = 40 is beyond that size)
    # would be a LAPACK primitive on a (d, d) operand; a dense Σ would be a (d, d) value.
    for eqn in equations(jaxpr.jaxpr):
        for var in (*eqn.invars, *eqn.outvars):
            shape = getattr(getattr(var, "aval", None), "shape", ())
            assert tuple(shape[-2:]) != (d, d), eqn


def test_upper_triangle_of_scale_tril_is_ignored():
    loc, tril = (jnp.asarray(p) for p in mvn_spec.SPECS[0].params)
    garbage = tril + jnp.triu(jnp.full_like(tril, 7.0), k=1)
    eps = multivariate_normal.noise(jax.random.key(24), (5, 3, 3), jnp.float64)
    x = multivariate_normal.transform(eps, loc, tril)
    for fn, args in (
        (multivariate_normal.transform, (eps,)),
        (multivariate_normal.log_prob, (x,)),
        (multivariate_normal.entropy, ()),
        (multivariate_normal.covariance, ()),
    ):
        np.testing.assert_array_equal(
            np.asarray(fn(*args, loc, garbage)), np.asarray(fn(*args, loc, tril))
        )
    grad = jax.grad(lambda t: jnp.sum(multivariate_normal.log_prob(x, loc, t)))(garbage)
    np.testing.assert_array_equal(np.asarray(jnp.triu(grad, k=1)), 0.0)


def test_parameters_broadcast_over_batch_axes():
    loc = jnp.zeros((2, 1, 3))
    tril = jnp.asarray(mvn_spec.SCALE_TRIL)  # batch (3,)
    z = multivariate_normal.sample(jax.random.key(25), loc, tril, sample_shape=(4,))
    assert z.shape == (4, 2, 3, 3)
    assert multivariate_normal.log_prob(z, loc, tril).shape == (4, 2, 3)
    assert multivariate_normal.log_prob(z[0, 0, 0], loc, tril).shape == (2, 3)
    assert multivariate_normal.entropy(loc, tril).shape == (2, 3)
    assert multivariate_normal.covariance(loc, tril).shape == (2, 3, 3, 3)
    factor = jnp.ones((3, 2))  # unbatched factor, batched diagonal
    diag = jnp.ones((5, 3))
    z = low_rank_normal.sample(jax.random.key(26), jnp.zeros(3), factor, diag, sample_shape=(4,))
    assert z.shape == (4, 5, 3)
    assert low_rank_normal.log_prob(z, jnp.zeros(3), factor, diag).shape == (4, 5)


# ---------------------------------------------------------------- shape errors
@pytest.mark.parametrize(
    ("call", "name", "expected", "got"),
    [
        pytest.param(
            lambda: multivariate_normal.sample(jax.random.key(0), jnp.zeros(3), jnp.eye(4)[:, :3]),
            "scale_tril",
            r"\(\.\.\., 3, 3\)",
            r"\(4, 3\)",
            id="mvn-not-square",
        ),
        pytest.param(
            lambda: multivariate_normal.log_prob(jnp.zeros(3), jnp.zeros(3), jnp.eye(2)),
            "scale_tril",
            r"\(\.\.\., 3, 3\)",
            r"\(2, 2\)",
            id="mvn-wrong-size",
        ),
        pytest.param(
            lambda: multivariate_normal.log_prob(jnp.zeros(2), jnp.zeros(3), jnp.eye(3)),
            "x",
            r"\(\.\.\., 3\)",
            r"\(2,\)",
            id="mvn-x",
        ),
        pytest.param(
            lambda: multivariate_normal.transform(jnp.zeros(4), jnp.zeros(3), jnp.eye(3)),
            "eps",
            r"\(\.\.\., 3\)",
            r"\(4,\)",
            id="mvn-eps",
        ),
        pytest.param(
            lambda: multivariate_normal.sample(jax.random.key(0), jnp.zeros(3), jnp.ones(3)),
            "scale_tril",
            "at least 2",
            r"\(3,\)",
            id="mvn-vector-tril",
        ),
        pytest.param(
            lambda: low_rank_normal.sample(
                jax.random.key(0), jnp.zeros(3), jnp.ones((4, 2)), jnp.ones(3)
            ),
            "cov_factor",
            r"\(\.\.\., 3, r\)",
            r"\(4, 2\)",
            id="low-rank-factor",
        ),
        pytest.param(
            lambda: low_rank_normal.log_prob(
                jnp.zeros(3), jnp.zeros(3), jnp.ones((3, 2)), jnp.ones(2)
            ),
            "scale_diag",
            r"\(\.\.\., 3\)",
            r"\(2,\)",
            id="low-rank-diag",
        ),
        pytest.param(
            lambda: low_rank_normal.transform(
                jnp.zeros(3), jnp.zeros(3), jnp.ones((3, 2)), jnp.ones(3)
            ),
            "eps",
            r"\(\.\.\., 5\)",
            r"\(3,\)",
            id="low-rank-eps",
        ),
    ],
)
def test_shape_errors_name_the_argument_and_both_shapes(call, name, expected, got):
    with pytest.raises(ValueError, match=rf"`{name}`.*{expected}.*got shape {got}") as info:
        call()
    assert "reparam." in str(info.value)


def test_non_positive_diagonal_names_scale_tril_inside_jit_with_checks():
    from reparam.checks import checked

    bad = jnp.asarray(mvn_spec.NEGATIVE_DIAGONAL)
    fn = jax.jit(checked(lambda t: multivariate_normal.log_prob(jnp.zeros(3), jnp.zeros(3), t)))
    err, _ = fn(bad)
    with pytest.raises(Exception, match="`scale_tril` must be lower triangular"):
        err.throw()


# ---------------------------------------------------------------- MC gradients of moments
def _first_and_second_moments(z):
    """(..., d) -> (..., d + d(d+1)/2): z_i and z_i z_j for i ≤ j."""
    i, j = np.triu_indices(z.shape[-1])
    return jnp.concatenate([z, z[..., i] * z[..., j]], axis=-1)


def _closed_form_moments(covariance_of):
    def moments(*params):
        loc = params[0]
        second = covariance_of(*params) + loc[:, None] * loc[None, :]
        i, j = np.triu_indices(loc.shape[-1])
        return jnp.concatenate([loc, second[i, j]])

    return moments


@pytest.mark.parametrize(("module", "params", "covariance_of"), FAMILIES)
def test_monte_carlo_gradients_of_first_and_second_moments(module, params, covariance_of):
    """Per-sample ∂f(z_n)/∂θ for f = z_i, z_i z_j, vs d/dθ of μ and Σ + μμᵀ (closed forms).

    Each parameter is broadcast to (N, ...) so sample n sees its own copy, and the Jacobian of
    Σ_n f(z_n) with respect to the copies is the matrix of per-sample gradients.
    """
    theta = tuple(jnp.asarray(p[1]) for p in params)  # batch element 1 of the spec
    n = MC_SAMPLES

    @jax.jit  # the copies are made inside: no eager broadcast per parameter shape
    def per_sample(*theta):
        copies = tuple(jnp.broadcast_to(p, (n, *p.shape)) for p in theta)

        def total(*ps):
            return jnp.sum(_first_and_second_moments(module.sample(jax.random.key(27), *ps)), 0)

        return jax.jacrev(total, argnums=tuple(range(len(copies))))(*copies)

    jacobians = per_sample(*theta)  # each (m, N, *param_shape)
    # Jitted: op by op, the Jacobian of the closed forms compiles dozens of small programs.
    closed_form_jacobian = jax.jacfwd(
        _closed_form_moments(covariance_of), argnums=tuple(range(len(theta)))
    )
    references = jax.jit(closed_form_jacobian)(*theta)
    for name, jacobian, reference in zip(module.PARAMS, jacobians, references, strict=True):
        jacobian = np.asarray(jacobian)
        estimate = jacobian.mean(axis=1)
        standard_error = jacobian.std(axis=1, ddof=1) / np.sqrt(n)
        reference = np.asarray(reference)
        tolerance = Z_THRESHOLD * standard_error + 1e-9 * (1 + np.abs(reference))
        worst = np.max(np.abs(estimate - reference) / tolerance)
        assert worst <= 1.0, (
            f"d/d{name}: MC {estimate} ± {standard_error} vs closed form {reference}"
        )


# ---------------------------------------------------------------- private linear algebra
@pytest.mark.parametrize("n", [1, 5, 16, 17])
def test_small_cholesky_and_triangular_solve_match_lapack(n):
    """`_linalg.cholesky`/`triangular_solve` (unrolled for n ≤ 16, LAPACK beyond: 17) equal
    numpy's and scipy's on a batch of SPD matrices, upper triangles ignored; second-order
    gradients of the unrolled forms by `check_grads` (one jitted function)."""
    rng = np.random.default_rng(n)
    a = rng.normal(size=(3, n, n))
    spd = a @ np.swapaxes(a, -1, -2) + n * np.eye(n)
    garbage = np.triu(np.full((n, n), 9.0), k=1)  # only the lower triangle may be read
    factor = np.asarray(_linalg.cholesky(jnp.asarray(np.tril(spd) + garbage)))
    np.testing.assert_allclose(factor, np.linalg.cholesky(spd), rtol=1e-12, atol=1e-12)
    rhs = rng.normal(size=(3, n, 2))
    for unit in (False, True):
        solved = np.asarray(_linalg.triangular_solve(factor + garbage, jnp.asarray(rhs), unit))
        expected = [
            solve_triangular(f, b, lower=True, unit_diagonal=unit)
            for f, b in zip(factor, rhs, strict=True)
        ]
        np.testing.assert_allclose(solved, expected, rtol=1e-10, atol=1e-10)
    if n == 5:
        fn = jax.jit(lambda m, b: _linalg.triangular_solve(_linalg.cholesky(m), b))
        check_grads(fn, (jnp.asarray(spd), jnp.asarray(rhs)), order=2, modes=("fwd", "rev"))
