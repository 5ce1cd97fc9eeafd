"""Models (reparam.nn) and objectives (reparam.objectives).

The objectives are checked in a linear-Gaussian model where everything is closed-form:
p(z) = N(0, 1), p(x|z) = N(x; w·z, 1), so p(x) = N(0, 1 + w²) and the exact posterior is
N(w·x/(1 + w²), 1/(1 + w²)). There the ELBO and the IWAE bound equal log p(x) exactly at the
exact posterior, STL/DReG encoder gradients vanish sample by sample, and the ELBO's gradient is
a closed form that the Monte-Carlo gradients must match within 5 standard errors.
"""

from __future__ import annotations

import functools
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reparam import nn as rnn
from reparam.models import objectives
from reparam.nn import activations

W = 1.5
X = 0.7


def gaussian_log_likelihood(w):
    """log N(x; w·z, 1) summed over the (single) data dimension: z (K, B, 1) -> (K, B)."""
    return lambda z: jnp.sum(-0.5 * (X - w * z) ** 2 - 0.5 * math.log(2 * math.pi), axis=-1)


LL_W = gaussian_log_likelihood(W)


def exact_log_px(w=W, x=X):
    variance = 1 + w**2
    return -0.5 * x**2 / variance - 0.5 * math.log(2 * math.pi * variance)


def posterior(w=W, x=X):
    return w * x / (1 + w**2), 1 / math.sqrt(1 + w**2)


def closed_form_elbo(m, s, w=W, x=X, beta=1.0):
    """E_q[log p(x|z)] − β KL(q ‖ p) for q = N(m, s²), in closed form (β = 1: the ELBO)."""
    reconstruction = -0.5 * ((x - w * m) ** 2 + w**2 * s**2) - 0.5 * math.log(2 * math.pi)
    kl = 0.5 * (m**2 + s**2 - 1) - jnp.log(s)
    return reconstruction - beta * kl


def _encoder(loc, scale):
    return lambda x: (loc, scale)


# ---------------------------------------------------------------- model shapes
@pytest.mark.parametrize("scale_fn", ["exp", "softplus"])
def test_mlp_encoder_decoder_shapes(key, scale_fn):
    encoder = rnn.GaussianMLPEncoder(latent_dim=5, hidden=(16, 8), scale_fn=scale_fn)
    decoder = rnn.BernoulliMLPDecoder(output_dim=20, hidden=(8, 16))

    @jax.jit  # one compiled program (eagerly, each layer's op is its own)
    def run(key):
        x = jnp.ones((3, 20))
        params = encoder.init(key, x)
        loc, scale = encoder.apply(params, x)
        z = jnp.ones((7, 3, 5))
        return loc, scale, decoder.apply(decoder.init(key, z), z)

    loc, scale, logits = run(key)
    assert loc.shape == scale.shape == (3, 5)
    assert jnp.all(scale > 0)
    assert logits.shape == (7, 3, 20)


def test_decoder_output_bias_initialises_logits(key):
    bias = np.linspace(-2, 2, 6).astype(np.float32)
    decoder = rnn.BernoulliMLPDecoder(output_dim=6, hidden=(4,), output_bias=tuple(bias))
    params = jax.jit(decoder.init)(key, jnp.zeros((1, 2)))
    np.testing.assert_allclose(params["params"]["Dense_1"]["bias"], bias)


def test_conv_pair_shapes(key):
    encoder = rnn.GaussianConvEncoder(latent_dim=4, image_shape=(8, 8), features=(4, 8))
    decoder = rnn.BernoulliConvDecoder(image_shape=(8, 8), features=(8, 4))
    x = jnp.ones((2, 64))
    # Shapes only: jax.eval_shape traces without running (eager convolutions are slow).
    loc, scale = jax.eval_shape(lambda: encoder.apply(encoder.init(key, x), x))
    assert loc.shape == scale.shape == (2, 4)
    z = jnp.ones((3, 2, 4))  # (K, B, d): leading sample axes are kept
    logits = jax.eval_shape(lambda: decoder.apply(decoder.init(key, z), z))
    assert logits.shape == (3, 2, 64)
    model = rnn.IWAE(encoder, decoder, num_samples=3)
    k1, k2 = jax.random.split(key)
    surrogate, bound = jax.jit(lambda: model.apply(model.init(k1, k2, x), jax.random.key(3), x))()
    assert np.all(np.isfinite(bound))
    assert surrogate.shape == bound.shape == (2,)


@functools.cache
def _binary_data():
    return (jax.random.uniform(jax.random.key(1), (6, 10)) > 0.5).astype(jnp.float32)


@pytest.mark.parametrize(
    "model",
    [
        dict(cls="VAE", kl="analytic"),
        dict(cls="VAE", kl="mc", gradient="stl"),
        dict(cls="VAE", kl="mc", beta=0.5),
        dict(cls="IWAE", num_samples=4, gradient="standard"),
        dict(cls="IWAE", num_samples=4, gradient="dreg"),
    ],
)
def test_models_are_pure_functions_of_key(model):
    model = dict(model)
    cls = getattr(rnn, model.pop("cls"))
    vae = cls(rnn.GaussianMLPEncoder(3, (8,)), rnn.BernoulliMLPDecoder(10, (8,)), **model)
    x = _binary_data()
    params = jax.jit(vae.init)(jax.random.key(2), jax.random.key(3), x)
    assert set(params) == {"params"}  # no RNG or mutable collections hidden in the module
    # Compiled, not eager (one program instead of one per op); each of the two calls with the same
    # key is traced anew (a fresh function), so state hidden on the Python side would still show.
    # Their programs are the same and the second is read back from the compilation cache.
    apply = jax.jit(lambda p, k, x: vae.apply(p, k, x))
    out1 = apply(params, jax.random.key(4), x)
    out2 = jax.jit(lambda p, k, x: vae.apply(p, k, x))(params, jax.random.key(4), x)
    out3 = apply(params, jax.random.key(5), x)
    for a, b in zip(out1, out2, strict=True):
        assert a.shape == (6,)
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(out1[1], out3[1])
    # The bound is a lower bound on log p(x) ≤ 0 for Bernoulli data.
    assert np.all(np.asarray(out1[1]) < 0)


def test_bernoulli_log_likelihood_matches_direct_formula():
    logits = jnp.array([[-30.0, -1.0, 0.0, 2.0, 40.0]])
    x = jnp.array([[0.0, 1.0, 1.0, 0.0, 1.0]])

    @jax.jit  # one compiled program for the whole chain
    def run(logits, x):
        p = jax.nn.sigmoid(logits.astype(jnp.float64))
        direct = jnp.sum(jnp.where(x == 1, jnp.log(p), jnp.log1p(-p)))
        extreme = objectives.bernoulli_log_likelihood(jnp.array([1e4]), jnp.array([0.0]))
        return objectives.bernoulli_log_likelihood(logits, x)[0], direct, extreme

    value, direct, extreme = run(logits, x)
    np.testing.assert_allclose(value, direct, rtol=1e-9)
    assert np.isfinite(extreme)


def test_stl_with_analytic_kl_is_an_error(key):
    with pytest.raises(ValueError, match=r"reparam.objectives.elbo: `gradient`='stl'.*kl='mc'"):
        objectives.elbo(
            key, jnp.zeros((1, 1)), _encoder(0.0, 1.0), lambda z: z[..., 0], gradient="stl"
        )
    with pytest.raises(ValueError, match="`kl` must be one of"):
        objectives.elbo(key, jnp.zeros((1, 1)), _encoder(0.0, 1.0), lambda z: z[..., 0], kl="x")


# ---------------------------------------------------------------- bounds at the exact posterior
@pytest.mark.parametrize(
    "objective",
    [
        lambda key, enc: objectives.elbo(key, None, enc, gaussian_log_likelihood(W), kl="mc"),
        lambda key, enc: objectives.iwae(key, None, enc, gaussian_log_likelihood(W), 7),
    ],
    ids=["elbo-mc", "iwae-7"],
)
def test_bounds_equal_log_px_at_exact_posterior(key, objective):
    # log p(x, z) − log q(z|x) = log p(x) for every z when q is the exact posterior.
    m, s = posterior()
    run = jax.jit(lambda key, loc, scale: objective(key, _encoder(loc, scale)))
    surrogate, bound = run(key, jnp.full((50, 1), m), jnp.full((50, 1), s))
    np.testing.assert_allclose(bound, exact_log_px(), rtol=1e-10)
    np.testing.assert_allclose(surrogate, bound, rtol=1e-12)


def test_analytic_elbo_is_unbiased_at_exact_posterior(key):
    m, s = posterior()
    n = 20_000
    run = jax.jit(lambda key, loc, scale: objectives.elbo(key, None, _encoder(loc, scale), LL_W))
    _, bound = run(key, jnp.full((n, 1), m), jnp.full((n, 1), s))
    bound = np.asarray(bound)
    assert abs(bound.mean() - exact_log_px()) < 5 * bound.std() / math.sqrt(n)


@jax.jit  # module level: compiled once for the four cases below
@jax.grad
def _standard_elbo_grad(params, key):
    return objectives.elbo(key, None, _encoder(*params), LL_W, kl="mc")[0].sum()


@pytest.mark.parametrize(
    ("gradient", "num_samples"), [("stl", 1), ("dreg", 1), ("stl", 5), ("dreg", 5)]
)
def test_stl_and_dreg_encoder_gradients_vanish_at_exact_posterior(key, gradient, num_samples):
    m, s = posterior()

    def total(params, key):
        loc, scale = params
        enc = _encoder(loc, scale)
        if num_samples == 1:
            out = objectives.elbo(
                key, None, enc, gaussian_log_likelihood(W), kl="mc", gradient=gradient
            )
        else:
            out = objectives.iwae(
                key, None, enc, gaussian_log_likelihood(W), num_samples, gradient=gradient
            )
        return out[0].sum()

    params = (jnp.full((20, 1), m), jnp.full((20, 1), s))
    g_loc, g_scale = jax.jit(jax.grad(total))(params, key)
    np.testing.assert_allclose(g_loc, 0.0, atol=1e-12)
    np.testing.assert_allclose(g_scale, 0.0, atol=1e-12)
    # ... while the standard estimator's are noisy (non-zero) there.
    standard = _standard_elbo_grad(params, jax.random.key(1))
    assert np.abs(np.asarray(standard[1])).max() > 1e-3


# ---------------------------------------------------------------- unbiased gradients
N = 40_000


def _per_example_grads(surrogate_fn, m, s, w, key):
    """∂/∂(m, s, w) of each example's surrogate, for N i.i.d. copies of the same problem."""
    return np.asarray(_per_example_grads_program(surrogate_fn, m, s, w, key))


# One compiled program per surrogate (m, s, w and the key are arguments, not constants).
@functools.partial(jax.jit, static_argnums=0)
def _per_example_grads_program(surrogate_fn, m, s, w, key):
    loc, scale = jnp.full((N, 1), m), jnp.full((N, 1), s)
    w_all = jnp.full((N,), w)

    def total(loc, scale, w_all):
        log_likelihood = lambda z: jnp.sum(
            -0.5 * (X - w_all[:, None] * z) ** 2 - 0.5 * math.log(2 * math.pi), axis=-1
        )
        return surrogate_fn(key, _encoder(loc, scale), log_likelihood).sum()

    g_loc, g_scale, g_w = jax.grad(total, argnums=(0, 1, 2))(loc, scale, w_all)
    return jnp.stack([g_loc[:, 0], g_scale[:, 0], g_w], 1)


# The closed-form gradient in (m, s, w), compiled once for every β.
_beta_elbo_grad = jax.jit(jax.grad(closed_form_elbo, argnums=(0, 1, 2)))


@functools.cache  # the same object (a static argument) for the same options
def _elbo_surrogate(kl, gradient, beta):
    def surrogate_fn(key, enc, ll):
        return objectives.elbo(key, None, enc, ll, kl=kl, gradient=gradient, beta=beta)[0]

    return surrogate_fn


@pytest.mark.parametrize(
    ("kl", "gradient", "beta"),
    [
        ("analytic", "standard", 1.0),
        ("mc", "standard", 1.0),
        ("mc", "stl", 1.0),
        ("mc", "dreg", 1.0),
        ("analytic", "standard", 0.3),
        ("mc", "stl", 0.3),
    ],
)
def test_elbo_gradients_match_closed_form(kl, gradient, beta):
    m, s = 0.2, 0.8

    surrogate_fn = _elbo_surrogate(kl, gradient, beta)
    grads = _per_example_grads(surrogate_fn, m, s, W, jax.random.key(11))
    expected = np.array(_beta_elbo_grad(m, s, W, X, beta))
    mean = grads.mean(0)
    stderr = grads.std(0) / math.sqrt(N)
    assert np.all(np.abs(mean - expected) <= 5 * stderr + 1e-9), (mean, expected, stderr)


@pytest.mark.parametrize("gradient", ["dreg"])
def test_iwae_dreg_gradient_matches_standard_in_expectation(gradient):
    m, s = 0.1, 0.9

    def make(g):
        return lambda key, enc, ll: objectives.iwae(key, None, enc, ll, 5, gradient=g)[0]

    standard = _per_example_grads(make("standard"), m, s, W, jax.random.key(21))
    other = _per_example_grads(make(gradient), m, s, W, jax.random.key(22))
    stderr = np.sqrt(standard.var(0) / N + other.var(0) / N)
    diff = standard.mean(0) - other.mean(0)
    assert np.all(np.abs(diff) <= 5 * stderr), (diff, stderr)


def test_iwae_bound_tightens_with_k():
    m, s = 0.0, 1.0  # q = the prior, far from the posterior

    @jax.jit  # the three bounds in one compiled program
    def mean_bounds(loc, scale):
        return [
            objectives.iwae(jax.random.key(k), None, _encoder(loc, scale), LL_W, k)[1].mean()
            for k in (1, 5, 50)
        ]

    bounds = [float(b) for b in mean_bounds(jnp.full((20_000, 1), m), jnp.full((20_000, 1), s))]
    exact_elbo = float(closed_form_elbo(m, s))
    assert abs(bounds[0] - exact_elbo) < 0.05
    assert bounds[0] < bounds[1] < bounds[2] < exact_log_px()


def test_one_activation_table_for_every_module():
    """nn.vae, nn.bayesian and nn.policy used to keep two tables that disagreed on gelu."""
    assert activations.activation("gelu") is jax.nn.gelu
    for module in (rnn.bayesian, rnn.categorical_vae, rnn.policy, rnn.vae):
        assert not hasattr(module, "ACTIVATIONS"), module.__name__
    message = re.escape(
        "reparam.nn.policy: `activation` must be one of "
        f"{tuple(activations.ACTIVATIONS)}; got 'swish'"
    )
    with pytest.raises(ValueError, match=message):
        activations.activation("swish", "reparam.nn.policy")
