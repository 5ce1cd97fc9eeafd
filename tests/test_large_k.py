"""Large K: the IWAE bound with its decoder chunked under jax.checkpoint, and the NLL's memory.

`train.chunked_over_samples` must change nothing but memory: the same bound and the same
gradients as the unchunked objective (checked in float64, with a remainder chunk), and XLA's
memory analysis of the compiled gradient must stay under the bound stated in its docstring
while the unchunked gradient grows with K. The K = 5000 evaluation's memory must not grow with K.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reparam import nn as rnn
from reparam import train
from reparam.models import evaluate, objectives


def _model(dim: int, hidden: int, latent: int) -> rnn.IWAE:
    return rnn.IWAE(
        rnn.GaussianMLPEncoder(latent, (hidden, hidden), "tanh"),
        rnn.BernoulliMLPDecoder(dim, (hidden, hidden), "tanh"),
        num_samples=1,
    )


def _loss(model, params, x, key, k, chunk, gradient):
    log_likelihood = lambda z: model.apply(params, x, z, method=rnn.VAE.log_likelihood)
    if chunk is not None:
        log_likelihood = train.chunked_over_samples(log_likelihood, chunk)
    surrogate, bound = objectives.iwae(
        key,
        x,
        lambda x_: model.apply(params, x_, method=rnn.VAE.encode),
        log_likelihood,
        k,
        gradient=gradient,
    )
    return -jnp.mean(surrogate), bound


def test_chunked_dreg_bound_and_gradients_equal_the_unchunked_ones(key):
    # DReG differentiates through a VJP of the chunked map (the hardest path), in float64.
    model = _model(dim=6, hidden=5, latent=2)
    x = (jax.random.uniform(jax.random.key(1), (3, 6)) < 0.5).astype(jnp.float64)
    params = jax.jit(model.init)(jax.random.key(2), jax.random.key(3), x)
    params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
    grad = jax.jit(
        jax.grad(lambda p, k, chunk: _loss(model, p, x, k, 37, chunk, "dreg"), has_aux=True),
        static_argnums=2,
    )
    # The same key on purpose: the same noise, chunked or not (clones keep key-reuse checks quiet).
    whole_grads, whole_bound = grad(params, jax.random.clone(key), None)
    grads, bound = grad(params, jax.random.clone(key), 10)  # 3 chunks and a remainder of 7
    np.testing.assert_allclose(bound, whole_bound, rtol=1e-12)
    for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(whole_grads), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


def test_chunk_size_must_be_positive():
    with pytest.raises(ValueError, match="`chunk_size` must be >= 1"):
        train.chunked_over_samples(lambda z: z, 0)


def _temp_bytes(compiled) -> int:
    return compiled.memory_analysis().temp_size_in_bytes


# dim, hidden, latent, batch, K, chunk: 33 chunks of 30 and 10 left over.
MEMORY_CASE = (256, 64, 8, 8, 1000, 30)


def _compiled_gradient(key, gradient, chunk):
    dim, hidden, latent, batch, k, _ = MEMORY_CASE
    model = _model(dim, hidden, latent)
    x = (jax.random.uniform(jax.random.key(1), (batch, dim)) < 0.3).astype(jnp.float32)
    params = jax.jit(model.init)(jax.random.key(2), jax.random.key(3), x)
    loss = lambda p, k_: _loss(model, p, x, k_, k, chunk, gradient)[0]
    return jax.jit(jax.grad(loss)).lower(params, key).compile(), params


def _chunked_bound() -> int:
    """The bound of train.chunked_over_samples: 4 bytes·B·(6·d·K + 2·(H1 + H2 + D)·chunk)."""
    dim, hidden, latent, batch, k, chunk = MEMORY_CASE
    return 4 * batch * (6 * latent * k + 2 * (hidden + hidden + dim) * chunk)


def test_chunked_gradient_is_the_same_in_bounded_memory(key):
    chunked, params = _compiled_gradient(key, "standard", MEMORY_CASE[-1])
    whole, _ = _compiled_gradient(key, "standard", None)
    bound = _chunked_bound()
    assert _temp_bytes(chunked) <= 1.25 * bound, (_temp_bytes(chunked), bound)
    # Unchunked, every sample's activations are kept: several times more here.
    assert _temp_bytes(whole) > 4 * _temp_bytes(chunked), (_temp_bytes(whole), bound)
    # Same noise (same key), same gradient up to float32 summation order.
    grads = chunked(params, jax.random.clone(key))
    whole_grads = whole(params, jax.random.clone(key))
    for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(whole_grads), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_chunked_dreg_gradient_memory_is_bounded_like_standard_and_stl(key):
    # DReG's two passes over the samples (weights, then the surrogate) are both chunked maps of
    # log_joint, so its temporaries follow the standard/STL bound (2.41 MB here, as standard's
    # 2.41 MB and STL's 2.15 MB); when it took a VJP inside the forward pass it kept all K
    # activations (39.6 MB, 17× the bound). That the chunked DReG gradient equals the unchunked
    # one is checked in float64 above.
    chunked, _ = _compiled_gradient(key, "dreg", MEMORY_CASE[-1])
    bound = _chunked_bound()
    assert _temp_bytes(chunked) <= 1.25 * bound, (_temp_bytes(chunked), bound)


def test_nll_evaluation_memory_is_bounded_by_the_chunk_not_k(key):
    dim, hidden, batch, chunk = 128, 32, 20, 100
    model = _model(dim, hidden, latent=4)
    x = jnp.zeros((batch, dim), jnp.float32)
    params = jax.jit(model.init)(jax.random.key(2), key, x)
    encode = lambda x: model.apply(params, x, method=rnn.VAE.encode)
    log_likelihood = lambda x, z: model.apply(params, x, z, method=rnn.VAE.log_likelihood)
    fn = evaluate.log_px_function(encode, log_likelihood, num_samples=5000, chunk_size=chunk)
    temp = _temp_bytes(fn.lower(key, x).compile())
    # evaluate.log_px_function: about 4 bytes·1.5·chunk·B·(H1 + H2 + D), whatever K; all K = 5000
    # samples' decoder outputs alone would take 4·5000·20·128 bytes = 51 MB.
    assert temp <= 4 * 2 * chunk * batch * (hidden + hidden + dim), temp


def test_k_chunk_config_gives_the_same_iwae_loss_and_gradient(key):
    from experiments import vae_mnist

    def loss_and_grad(k_chunk):
        config = vae_mnist.Config.quick(model="iwae", k=7, k_chunk=k_chunk, hidden=(16,), latent=2)
        run = vae_mnist.setup(config)
        batch = run.dataset.train[:50]
        fn = jax.value_and_grad(lambda p, k: run.loss_fn(p, batch, k)[0])
        jaxpr = str(jax.make_jaxpr(fn)(run.state.params, key))
        # The same noise for both (a clone of the same key).
        return jax.jit(fn)(run.state.params, jax.random.clone(key)), jaxpr

    (loss, grads), jaxpr = loss_and_grad(3)  # 2 chunks of 3 and a remainder of 1
    (whole_loss, whole_grads), whole_jaxpr = loss_and_grad(None)
    assert "remat" in jaxpr and "remat" not in whole_jaxpr  # the flag took effect
    np.testing.assert_allclose(loss, whole_loss, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(whole_grads), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
