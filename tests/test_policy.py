"""Squashed-Gaussian policy (reparam.nn.policy) and the SAC / REINFORCE pieces (reparam.rl).

The policy's density is checked against the change of variables a = c·tanh(u) written out in
float64, and for finiteness at actions ±c(1 − 1e−7) in float32 (where 1 − tanh² rounds to 0).
The SAC losses are checked on shapes, on hand-computed values (γ = 0 and terminal transitions
make the target the reward), on the pathwise actor gradient against a finite difference of the
expected loss, and through a tiny jitted update (Polyak targets, α moving the right way).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from reparam import rl
from reparam.nn.policy import (
    TanhGaussianPolicy,
    TwinQ,
    ValueNetwork,
    squashed_log_prob,
    squashed_sample_and_log_prob,
)

OBS_DIM, ACTION_DIM, BATCH = 3, 2, 5


def _change_of_variables(action, loc, scale, c):
    """log p(a) for a = c·tanh(u), u ~ N(loc, scale²), in numpy float64, summed over actions."""
    z = np.asarray(action, np.float64) / c
    u = np.arctanh(z)
    return np.sum(stats.norm.logpdf(u, loc, scale) - np.log1p(-(z**2)) - np.log(c), axis=-1)


# ---------------------------------------------------------------- densities
@pytest.mark.parametrize("c", [1.0, 2.0])
def test_log_prob_is_the_change_of_variables_in_float64(c):
    loc = np.array([[0.3, -1.2], [2.0, 0.1]])
    scale = np.array([[0.5, 1.3], [0.2, 0.9]])
    action = c * np.array([[0.1, -0.95], [0.99, 0.5]])
    got = squashed_log_prob(jnp.asarray(action), jnp.asarray(loc), jnp.asarray(scale), c)
    np.testing.assert_allclose(got, _change_of_variables(action, loc, scale, c), rtol=1e-12)


def test_sample_and_log_prob_agrees_with_log_prob(key):
    loc = jnp.array([0.3, -1.2])
    scale = jnp.array([0.5, 1.3])
    action, log_p = squashed_sample_and_log_prob(
        key, jnp.broadcast_to(loc, (1000, 2)), jnp.broadcast_to(scale, (1000, 2)), 2.0
    )
    assert action.shape == (1000, 2) and log_p.shape == (1000,)
    assert np.all(np.abs(action) <= 2.0)
    np.testing.assert_allclose(log_p, squashed_log_prob(action, loc, scale, 2.0), rtol=1e-9)
    np.testing.assert_allclose(log_p, _change_of_variables(action, loc, scale, 2.0), rtol=1e-9)


@pytest.mark.parametrize("c", [1.0, 2.0])
def test_log_prob_finite_at_the_bounds_in_float32(c):
    loc = jnp.array([[0.5, -0.5]], jnp.float32)
    scale = jnp.array([[0.3, 2.0]], jnp.float32)
    for sign in (1.0, -1.0):
        action = jnp.full((1, 2), sign * c * (1 - 1e-7), jnp.float32)
        value, grads = jax.value_and_grad(
            lambda loc, scale: squashed_log_prob(action, loc, scale, c).sum(), argnums=(0, 1)
        )(loc, scale)
        assert value.dtype == jnp.float32
        assert np.isfinite(value), (sign, c)
        assert all(np.all(np.isfinite(g)) for g in grads)
        # Exactly at the bound (an action stored after clipping) it stays finite too.
        assert np.isfinite(
            squashed_log_prob(jnp.full((1, 2), sign * c, jnp.float32), loc, scale, c)
        )


def test_sample_and_log_prob_finite_when_tanh_saturates_float32(key):
    # u = 20: tanh(u) is 1 in float32 to within 3 ulps (exactly 1 with XLA's default tanh), so
    # log(1 − tanh²u) from the action would be −inf or off by ~20 nats; the log-density comes from
    # u and stays finite.
    loc = jnp.full((4, 1), 20.0, jnp.float32)
    scale = jnp.full((4, 1), 0.01, jnp.float32)
    action, log_p = squashed_sample_and_log_prob(key, loc, scale, 2.0)
    assert np.all(action >= 2.0 * (1.0 - 3 * np.finfo(np.float32).epsneg))
    assert np.all(action <= 2.0)
    assert np.all(np.isfinite(log_p))


# ---------------------------------------------------------------- modules
def test_policy_methods_shapes_and_bounds(key):
    policy = TanhGaussianPolicy(ACTION_DIM, hidden=(16, 16), action_scale=2.0)
    obs = jax.random.normal(key, (BATCH, OBS_DIM))

    @jax.jit  # one program: op by op, flax's init and the four methods compiled ~50 small ones
    def methods(obs):
        params = policy.init(jax.random.key(1), obs, method="distribution")
        action, log_p = policy.apply(params, jax.random.key(2), obs)
        return (
            policy.apply(params, obs, method="distribution"),
            (action, log_p),
            policy.apply(params, obs, action, method="log_prob"),
            policy.apply(params, obs, method="mode"),
        )

    (loc, scale), (action, log_p), log_prob, mode = methods(obs)
    assert loc.shape == scale.shape == (BATCH, ACTION_DIM)
    low, high = policy.log_scale_bounds
    assert np.all((scale >= math.exp(low)) & (scale <= math.exp(high)))
    assert action.shape == (BATCH, ACTION_DIM) and log_p.shape == (BATCH,)
    assert np.all(np.abs(action) <= 2.0)
    np.testing.assert_allclose(log_prob, log_p, rtol=1e-9)
    np.testing.assert_allclose(mode, 2.0 * jnp.tanh(loc))


def test_twin_q_and_value_shapes(key):
    critic = TwinQ(hidden=(8, 8))
    obs, action = jnp.ones((BATCH, OBS_DIM)), jnp.ones((BATCH, ACTION_DIM))
    params = jax.jit(critic.init)(key, obs, action)
    q = jax.jit(critic.apply)(params, obs, action)
    assert q.shape == (2, BATCH)
    assert not np.allclose(q[0], q[1])  # two independently initialized critics
    value = ValueNetwork(hidden=(8,))
    # Jitted, init and apply together: one program instead of flax's eager ops.
    values = jax.jit(lambda obs: value.apply(value.init(jax.random.key(1), obs), obs))(obs)
    assert values.shape == (BATCH,)


# ---------------------------------------------------------------- replay buffer
def _transition(i, obs_dim=OBS_DIM):
    return rl.Transition(
        obs=jnp.full(obs_dim, float(i)),
        action=jnp.full(ACTION_DIM, float(i)),
        reward=jnp.asarray(float(i)),
        next_obs=jnp.full(obs_dim, float(i + 1)),
        terminal=jnp.asarray(0.0),
    )


def test_replay_buffer_ring_and_sampling(key):
    buffer = rl.replay_init(4, _transition(0))
    add = jax.jit(rl.replay_add)
    # Jitted (batch size static): one program per buffer instead of the eager ops.
    sample = jax.jit(rl.replay_sample, static_argnums=2)
    for i in range(6):
        buffer = add(buffer, _transition(i))
    assert int(buffer.size) == 4 and int(buffer.position) == 2
    # slots 0, 1 overwritten by transitions 4, 5
    np.testing.assert_array_equal(buffer.data.reward, [4.0, 5.0, 2.0, 3.0])
    batch = sample(key, buffer, 64)
    assert batch.obs.shape == (64, OBS_DIM)
    assert set(np.asarray(batch.reward).tolist()) <= {2.0, 3.0, 4.0, 5.0}
    # A partly filled buffer only returns written slots.
    partial = add(rl.replay_init(10, _transition(0)), _transition(7))
    np.testing.assert_array_equal(sample(jax.random.key(1), partial, 16).reward, 7.0)


# ---------------------------------------------------------------- SAC
def _sac_setup(key, hidden=(16, 16)):
    policy = TanhGaussianPolicy(ACTION_DIM, hidden=hidden, action_scale=2.0)
    critic = TwinQ(hidden=hidden)
    # Jitted (modules static): one compiled program instead of many slow eager ops.
    init = jax.jit(rl.sac_init, static_argnums=(1, 2))
    state = init(key, policy, critic, jnp.zeros(OBS_DIM), jnp.zeros(ACTION_DIM))
    k = jax.random.split(jax.random.key(3), 4)
    batch = rl.Transition(
        obs=jax.random.normal(k[0], (BATCH, OBS_DIM)),
        action=jax.random.uniform(k[1], (BATCH, ACTION_DIM), minval=-2, maxval=2),
        reward=jax.random.normal(k[2], (BATCH,)),
        next_obs=jax.random.normal(k[3], (BATCH, OBS_DIM)),
        terminal=jnp.zeros(BATCH),
    )
    return policy, critic, state, batch


def test_sac_losses_shapes_and_values(key):
    policy, critic, state, batch = _sac_setup(key)
    critic_loss = jax.jit(rl.sac_critic_loss, static_argnames=("policy", "critic"))
    loss, metrics = critic_loss(
        state.critic_params,
        state.target_critic_params,
        state.actor_params,
        state.log_alpha,
        batch,
        jax.random.key(4),
        policy=policy,
        critic=critic,
        gamma=0.99,
    )
    assert loss.shape == () and set(metrics) == {"critic_loss", "q"}
    q = jax.jit(critic.apply)(state.critic_params, batch.obs, batch.action)
    # γ = 0, or every transition terminal: the target is the reward alone.
    by_hand = np.sum(np.mean(0.5 * (np.asarray(q) - np.asarray(batch.reward)) ** 2, axis=-1))
    for gamma, terminal in ((0.0, 0.0), (0.99, 1.0)):
        b = batch._replace(terminal=jnp.full(BATCH, terminal))
        value, _ = critic_loss(
            state.critic_params,
            state.target_critic_params,
            state.actor_params,
            state.log_alpha,
            b,
            jax.random.key(5),
            policy=policy,
            critic=critic,
            gamma=gamma,
        )
        np.testing.assert_allclose(value, by_hand, rtol=1e-12)
    actor_loss, log_prob = jax.jit(rl.sac_actor_loss, static_argnames=("policy", "critic"))(
        state.actor_params,
        state.critic_params,
        state.log_alpha,
        batch.obs,
        jax.random.key(6),
        policy=policy,
        critic=critic,
    )
    assert actor_loss.shape == () and log_prob.shape == (BATCH,)
    assert rl.sac_alpha_loss(state.log_alpha, log_prob, -2.0).shape == ()


def test_alpha_grows_exactly_when_entropy_is_below_target():
    # ∂/∂log α of −log α·(E log π + H̄) is −(E log π + H̄) = H − H̄ with H = −E log π.
    target = -1.0
    for log_prob, grows in ((1.5, True), (0.5, False), (-3.0, False)):
        grad = jax.grad(rl.sac_alpha_loss)(jnp.asarray(0.0), jnp.full(8, log_prob), target)
        np.testing.assert_allclose(grad, -(log_prob + target), rtol=1e-12)
        assert (grad < 0) == grows  # gradient descent raises log α iff the entropy is too low


def test_actor_gradient_flows_through_the_reparameterized_action(key):
    # Autodiff of the sample-average actor loss against central differences of it (same keys):
    # a stop_gradient on the action, or a wrong tanh/scale Jacobian, would break the match.
    policy, critic, state, batch = _sac_setup(key, hidden=(8,))
    obs = batch.obs[:2]

    def loss(params, k):
        return rl.sac_actor_loss(
            params, state.critic_params, state.log_alpha, obs, k, policy=policy, critic=critic
        )[0]

    def mean_loss(p):
        # Fresh (but identical) keys per call: common random numbers without key reuse.
        keys = jax.random.split(jax.random.key(7), 1000)
        return jnp.mean(jax.vmap(lambda k: loss(p, k))(keys))

    grads = jax.jit(jax.grad(mean_loss))(state.actor_params)
    mean_loss = jax.jit(mean_loss)
    bias = grads["params"]["head"]["bias"]
    eps = 1e-5
    for i in range(bias.shape[0]):

        def shifted(delta, i=i):
            p = jax.tree.map(lambda x: x, state.actor_params)
            p["params"]["head"]["bias"] = p["params"]["head"]["bias"].at[i].add(delta)
            return mean_loss(p)

        fd = (shifted(eps) - shifted(-eps)) / (2 * eps)
        np.testing.assert_allclose(bias[i], fd, rtol=1e-5, atol=1e-8)


def test_tiny_jitted_sac_update(key):
    policy, critic, state, batch = _sac_setup(key)
    config = rl.SACConfig(tau=0.1, actor_lr=1e-2, critic_lr=1e-2, alpha_lr=1e-2)
    update = jax.jit(
        lambda k, s, b: rl.sac_update(k, s, b, policy=policy, critic=critic, config=config)
    )
    new, metrics = update(jax.random.key(8), state, batch)
    assert int(new.step) == 1
    assert set(metrics) >= {"critic_loss", "actor_loss", "alpha_loss", "alpha", "entropy", "q"}
    assert all(np.isfinite(v) for v in jax.tree.leaves(metrics))
    # Polyak averaging of the targets: θ̄' = τ θ' + (1 − τ) θ̄.
    for target, online, old in zip(
        jax.tree.leaves(new.target_critic_params),
        jax.tree.leaves(new.critic_params),
        jax.tree.leaves(state.target_critic_params),
        strict=True,
    ):
        # Flax parameters are float32 (param_dtype), so float32 rounding.
        np.testing.assert_allclose(target, 0.1 * online + 0.9 * old, rtol=1e-6, atol=1e-7)
    changed = lambda a, b: any(
        not np.allclose(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )
    assert changed(new.actor_params, state.actor_params)
    assert changed(new.critic_params, state.critic_params)
    # Repeated updates on one batch fit the critics to it.
    losses = []
    for i in range(30):
        new, metrics = update(jax.random.key(100 + i), new, batch)
        losses.append(float(metrics["critic_loss"]))
    assert losses[-1] < losses[0]


# ---------------------------------------------------------------- REINFORCE
def test_discounted_returns_by_hand():
    rewards = jnp.array([[1.0, 0.0], [2.0, 1.0], [3.0, 1.0]])
    terminals = jnp.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    returns = rl.discounted_returns(rewards, terminals, 0.5)
    # env 0: episode ends at t=1: G1 = 2, G0 = 1 + 0.5·2; then G2 = 3. env 1: 0 + .5(1 + .5·1).
    np.testing.assert_allclose(returns, [[2.0, 0.75], [2.0, 1.5], [3.0, 1.0]])


def test_reinforce_loss_gradient_is_the_score_function(key):
    policy = TanhGaussianPolicy(ACTION_DIM, hidden=(8,), action_scale=2.0)
    value = ValueNetwork(hidden=(8,))
    obs = jax.random.normal(key, (BATCH, OBS_DIM))

    @jax.jit  # one program: op by op, the inits and the four gradients compiled ~80 small ones
    def gradients(obs):
        pp = policy.init(jax.random.key(1), obs, method="distribution")
        vp = value.init(jax.random.key(2), obs)
        actions, _ = policy.apply(pp, jax.random.key(3), obs)
        returns = jnp.arange(BATCH, dtype=obs.dtype)
        loss_fn = lambda pp, vp: rl.reinforce_loss(
            pp, vp, obs, actions, returns, policy=policy, value=value
        )[0]
        g_policy, g_value = jax.grad(loss_fn, argnums=(0, 1))(pp, vp)
        advantage = returns - value.apply(vp, obs)
        expected = jax.grad(
            lambda p: -jnp.mean(advantage * policy.apply(p, obs, actions, method="log_prob"))
        )(pp)
        expected_v = jax.grad(lambda v: 0.5 * jnp.mean((returns - value.apply(v, obs)) ** 2))(vp)
        return g_policy, g_value, expected, expected_v

    g_policy, g_value, expected, expected_v = gradients(obs)
    for a, b in zip(jax.tree.leaves(g_policy), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
    for a, b in zip(jax.tree.leaves(g_value), jax.tree.leaves(expected_v), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
