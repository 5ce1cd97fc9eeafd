"""Regression values: the refactors that left one implementation of each idea changed no number.

The IWAE / STL / DReG surrogate had three implementations (reparam.estimators.iwae_surrogate,
reparam.vi.surrogate, reparam.models.objectives via the first) and discrete_vae.elbo was one long
if-chain over its five estimators. The constants below are the values and gradient fingerprints
that the previous implementation, at commit f851a8c, gave on these small float64 cases
(computed there, before the refactor); the current code must reproduce them. They are
regression values, not correct answers: the tests that check the estimators against closed
forms live in test_estimators.py, test_vi.py and test_discrete_vae.py.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reparam import vi
from reparam.models import discrete_vae, objectives
from reparam.vi import bijectors

RTOL = 1e-10

# Each case runs as one compiled program (setup, value, gradient and fingerprints), not as one
# program per eager op; the stored values and tolerances are those of f851a8c, unchanged.


def _fingerprint(tree):
    """Σ leaf · (1, 2, 3, ...) per leaf: one number that moves with any element (traceable)."""
    return [jnp.sum(x * (1 + jnp.arange(x.size).reshape(x.shape))) for x in tree]


# ---------------------------------------------------------------- discrete_vae.elbo
# estimator: (Σ surrogate, objective per example, Σ ∇logits·index, Σ ∇decoder·index, ∇φ leaves)
DISCRETE_F851A8C = {
    "gumbel_softmax": (
        -10.948441144142432,
        [-3.867851849923, -3.217189141185, -3.863400153035],
        -0.4433504804904165,
        -45.56809556516477,
        None,
    ),
    "straight_through": (
        -10.871131684761073,
        [-3.7957978329, -2.967278507026, -4.108055344835],
        -0.49120134546754146,
        -42.57995098840138,
        None,
    ),
    "score_function": (
        -10.871131684761073,
        [-3.7957978329, -2.967278507026, -4.108055344835],
        1.7407070915481508,
        -42.57995098840138,
        None,
    ),
    "rebar": (
        -10.519308043215927,
        [-3.316678371804, -3.544236127878, -3.658393543534],
        2.0186529478908284,
        -40.69365598006204,
        [23.43116801567217, 0.11890486057050156],
    ),
    "relax": (
        -10.519308043215927,
        [-3.316678371804, -3.544236127878, -3.658393543534],
        14.291181398203827,
        -40.69365598006204,
        [160.15185941470085, 1.3123591493622224, -1394.7413482198363],
    ),
}


# The estimators discrete_vae had at f851a8c (later ones have no earlier values to keep).
@pytest.mark.parametrize("estimator", sorted(DISCRETE_F851A8C))
def test_discrete_elbo_unchanged_since_f851a8c(estimator):
    value, objective, index_logits, index_w, leaves = jax.jit(
        lambda: _discrete_elbo_case(estimator)
    )()
    expected = DISCRETE_F851A8C[estimator]
    np.testing.assert_allclose(float(value), expected[0], rtol=RTOL)
    np.testing.assert_allclose(np.asarray(objective), expected[1], rtol=1e-11)
    np.testing.assert_allclose(float(index_logits), expected[2], rtol=RTOL)
    np.testing.assert_allclose(float(index_w), expected[3], rtol=RTOL)
    if expected[4] is not None:
        leaves = [float(leaf) for leaf in leaves]
        np.testing.assert_allclose(leaves, expected[4], rtol=RTOL)


def _discrete_elbo_case(estimator):
    k1, k2, k3 = jax.random.split(jax.random.key(3), 3)
    logits = jax.random.normal(k1, (3, 2, 4))  # B, L, C
    w = 0.3 * jax.random.normal(k2, (8, 5))  # L·C -> D
    x = (jax.random.uniform(k3, (3, 5)) > 0.5).astype(jnp.float64)

    def log_likelihood(w):
        return lambda z: objectives.bernoulli_log_likelihood(z.reshape(*z.shape[:-2], -1) @ w, x)

    cv = jax.tree.map(lambda a: a.astype(jnp.float64), discrete_vae.rebar_params(0.7, 0.4))
    residual = None
    if estimator == "relax":
        cv = dict(cv, residual=jnp.full((), 0.2))
        residual = lambda psi, z: psi * jnp.sum(z**2, axis=(-2, -1))

    def loss(logits, w, cv):
        surrogate, objective = discrete_vae.elbo(
            jax.random.key(11),
            logits,
            log_likelihood(w),
            estimator=estimator,
            temperature=0.6,
            num_samples=2,
            signal=log_likelihood(jax.lax.stop_gradient(w)),
            cv_params=cv if estimator in ("rebar", "relax") else None,
            residual=residual,
        )
        return jnp.sum(surrogate), objective

    (value, objective), (g_logits, g_w, g_cv) = jax.value_and_grad(
        loss, argnums=(0, 1, 2), has_aux=True
    )(logits, w, cv)
    index = lambda g: jnp.sum(g * jnp.arange(g.size).reshape(g.shape))
    return value, objective, index(g_logits), index(g_w), jax.tree.leaves(g_cv)


# ---------------------------------------------------------------- the IWAE surrogate
# (objective, gradient): (Σ surrogate, fingerprints of ∇encoder, ∇decoder)
OBJECTIVES_F851A8C = {
    ("iwae", "standard"): (-4.543229569454573, [74.21785393037402, 6.9380077784559315]),
    ("iwae", "stl"): (-4.543229569454573, [407.8170461952718, 6.9380077784559315]),
    ("iwae", "dreg"): (-4.543229569454573, [372.7932603399112, 6.9380077784559315]),
    ("elbo", "standard"): (-7.00828195301305, [138.39180879187023, 10.009535634141201]),
    ("elbo", "stl"): (-7.00828195301305, [90.88646565041739, 10.009535634141201]),
    ("elbo", "dreg"): (-7.00828195301305, [90.88646565041739, 10.009535634141201]),
}


@pytest.mark.parametrize(("objective", "gradient"), sorted(OBJECTIVES_F851A8C))
def test_vae_objectives_unchanged_since_f851a8c(objective, gradient):
    value, fingerprints = jax.jit(lambda: _vae_objectives_case(objective, gradient))()
    expected_value, expected_grads = OBJECTIVES_F851A8C[objective, gradient]
    np.testing.assert_allclose(float(value), expected_value, rtol=RTOL)
    np.testing.assert_allclose([float(f) for f in fingerprints], expected_grads, rtol=RTOL)


def _vae_objectives_case(objective, gradient):
    k1, k2, k3 = jax.random.split(jax.random.key(5), 3)
    x = (jax.random.uniform(k1, (2, 4)) > 0.5).astype(jnp.float64)
    encoder = 0.5 * jax.random.normal(k2, (4, 6))
    decoder = 0.5 * jax.random.normal(k3, (3, 4))

    def loss(encoder, decoder):
        encode = lambda x: (x @ encoder[:, :3], jax.nn.softplus(x @ encoder[:, 3:]) + 0.1)
        log_likelihood = lambda z: objectives.bernoulli_log_likelihood(z @ decoder, x)
        if objective == "iwae":
            surrogate, _ = objectives.iwae(
                jax.random.key(7), x, encode, log_likelihood, 5, gradient=gradient
            )
        else:
            surrogate, _ = objectives.elbo(
                jax.random.key(7), x, encode, log_likelihood, kl="mc", gradient=gradient
            )
        return jnp.sum(surrogate)

    value, grads = jax.value_and_grad(loss, argnums=(0, 1))(encoder, decoder)
    return value, _fingerprint(grads)


# (bound, gradient): (surrogate value, fingerprints of ∇loc, ∇scale_raw), mean-field guide
VI_F851A8C = {
    ("elbo", "standard"): (-0.0003645659435347337, [6.611148435155396, 4.956505561127895]),
    ("elbo", "stl"): (-0.0003645659435347337, [9.82061026676211, 5.820653144853885]),
    ("elbo", "analytic_entropy"): (
        -0.32142151031217125,
        [6.611148435155396, 4.956505561127896],
    ),
    ("iwae", "standard"): (0.47840952422018335, [6.422650503354399, 5.097733861150872]),
    ("iwae", "stl"): (0.47840952422018335, [11.726533799416611, 6.948732895285874]),
    ("iwae", "dreg"): (0.47840952422018335, [4.801511352550512, 3.2814163061578445]),
}


@pytest.mark.parametrize(("bound", "gradient"), sorted(VI_F851A8C))
def test_vi_surrogate_unchanged_since_f851a8c(bound, gradient):
    def log_joint(p):
        return -0.5 * jnp.sum((p["mu"] - 1.0) ** 2) - 0.5 * (jnp.log(p["tau"]) - 0.3) ** 2

    init = {"mu": jnp.zeros(2), "tau": jnp.ones(())}
    guide, start = vi.make_guide(
        init, "mean_field", {"mu": bijectors.real, "tau": bijectors.positive}
    )
    posterior = vi.init_posterior(jax.random.key(1), guide, start, 0.3)

    @jax.jit
    def run(posterior):
        def loss(posterior):
            return vi.surrogate(jax.random.key(2), log_joint, posterior, 4, bound, gradient)

        (value, logged), grads = jax.value_and_grad(loss, has_aux=True)(posterior)
        return value, logged, _fingerprint(jax.tree.leaves(grads.params))

    value, logged, fingerprints = run(posterior)
    expected_value, expected_grads = VI_F851A8C[bound, gradient]
    np.testing.assert_allclose([float(value), float(logged)], expected_value, rtol=RTOL)
    np.testing.assert_allclose([float(f) for f in fingerprints], expected_grads, rtol=RTOL)
