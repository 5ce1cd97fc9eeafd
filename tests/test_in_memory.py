"""reparam.train.in_memory: full-batch fits as one scan, minibatch epochs over pytree data."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from reparam import train
from reparam.train import in_memory


def _linear_data(n: int = 64):
    x = jnp.linspace(-1.0, 1.0, n)[:, None]
    return x, 2.0 * x[:, 0] - 0.5


def _squared_error(params, batch, key):
    del key
    x, y = batch
    residual = x[:, 0] * params["w"] + params["b"] - y
    return jnp.mean(residual**2), {"max_abs": jnp.max(jnp.abs(residual))}


def test_fit_full_batch_fits_and_is_a_function_of_the_key():
    optimizer = optax.adam(0.1)
    data = _linear_data()

    def fit(seed):
        state = train.create_state({"w": jnp.zeros(()), "b": jnp.zeros(())}, optimizer)
        return in_memory.fit_full_batch(jax.random.key(seed), state, _squared_error, optimizer,
                                        data, num_steps=300)  # fmt: skip

    state, metrics = fit(0)
    assert metrics["loss"].shape == metrics["max_abs"].shape == (300,)
    assert int(state.step) == 300
    np.testing.assert_allclose([state.params["w"], state.params["b"]], [2.0, -0.5], atol=1e-2)
    assert metrics["loss"][-1] < 1e-3 * metrics["loss"][0]
    again, _ = fit(0)
    np.testing.assert_array_equal(again.params["w"], state.params["w"])
    with pytest.raises(ValueError, match="`num_steps` must be >= 1, got 0"):
        in_memory.fit_full_batch(jax.random.key(0), state, _squared_error, optimizer, data,
                                 num_steps=0)  # fmt: skip


def test_minibatch_epochs_over_a_pytree_and_the_kept_parameters():
    optimizer = optax.sgd(0.3)
    epoch = in_memory.make_minibatch_epoch(_squared_error, optimizer, batch_size=16)
    state = train.create_state({"w": jnp.zeros(()), "b": jnp.zeros(())}, optimizer)
    state, curves, kept = in_memory.run_epochs(
        jax.random.key(0), state, epoch, _linear_data(), num_epochs=30, keep=(0, 1)
    )
    # 64 examples in batches of 16: 4 steps per epoch.
    assert int(state.step) == 4 * 30 and curves["loss"].shape == (30,)
    assert curves["loss"][-1] < 1e-3 * curves["loss"][0]
    np.testing.assert_allclose([state.params["w"], state.params["b"]], [2.0, -0.5], atol=1e-2)
    assert float(kept[0]["w"]) == 0.0 and 0.0 < float(kept[1]["w"]) < 2.0
    with pytest.raises(ValueError, match="fewer than one batch of `batch_size` 128"):
        wide = in_memory.make_minibatch_epoch(_squared_error, optimizer, batch_size=128)
        wide(jax.random.key(0), state, _linear_data(), 0)
