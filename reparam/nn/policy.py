"""Stochastic policies and critics for continuous control (SAC, REINFORCE).

`TanhGaussianPolicy` is the squashed Gaussian of SAC (Haarnoja et al. 2018): an MLP maps the
observation to the pre-tanh (loc, scale) of each action dimension, and the action is
a = action_scale · tanh(u), u = loc + scale · ε. Sampling and the log-density go through the core's
`reparam.tanh_normal`, whose `sample_and_log_prob` computes log p from u (exact even where tanh(u)
rounds to ±1), so the entropy term of SAC never sees log(1 − a²) of a saturated action.

The action density in the environment's units, for a = c · z with z ~ TanhNormal(loc, scale):
    log p(a) = Σ_dims [log p_tanh(z) − log c].

Modules hold no RNG state: sampling methods take a key argument. Methods (call them through
`module.apply(params, ..., method=...)`):

* `policy(key, obs)` -> (action (..., A), log_prob (...)): a reparameterized draw, gradients
  flow to the parameters through the action and its log-density.
* `policy.apply(params, obs, method="distribution")` -> (loc, scale), each (..., A), pre-tanh.
* `policy.apply(params, obs, action, method="log_prob")` -> log p(action | obs), (...).
* `policy.apply(params, obs, method="mode")` -> c · tanh(loc) (a deterministic action).

`TwinQ(obs, action)` -> (2, ...) action values of two independent critics (SAC's clipped double
Q); `ValueNetwork(obs)` -> (...) a state-value baseline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from reparam.families import tanh_normal
from reparam.nn.activations import activation

Array = jax.Array


def squashed_sample_and_log_prob(
    key: Array, loc: Array, scale: Array, action_scale: float = 1.0
) -> tuple[Array, Array]:
    """a = action_scale · tanh(loc + scale ε) and log p(a) summed over the last (action) axis.

    loc, scale: (..., A). Returns action (..., A) and log_prob (...).
    """
    z, log_p = tanh_normal.sample_and_log_prob(key, loc, scale)
    # Scaling by c divides the density by c in each dimension.
    return action_scale * z, jnp.sum(log_p, axis=-1) - loc.shape[-1] * math.log(action_scale)


def squashed_log_prob(action: Array, loc: Array, scale: Array, action_scale: float = 1.0) -> Array:
    """log p(action) of a = action_scale · tanh(u), summed over the action axis; (..., A) -> (...).

    Finite for actions on (or numerically at) the bounds ±action_scale: `tanh_normal.log_prob`
    clips into the open interval before atanh.
    """
    z = jnp.asarray(action) / action_scale
    log_p = tanh_normal.log_prob(z, loc, scale)
    return jnp.sum(log_p, axis=-1) - loc.shape[-1] * math.log(action_scale)


class TanhGaussianPolicy(nn.Module):
    """Squashed Gaussian policy π(a | s) with a = action_scale · tanh(u), u ~ N(loc(s), scale(s)²).

    Attributes:
      action_dim: A.
      hidden: widths of the MLP's hidden layers ((256, 256) in SAC).
      action_scale: c, half the width of the (symmetric) action box [−c, c].
      log_scale_bounds: the pre-tanh log-scale is squashed smoothly into this interval (the
        CleanRL / SpinningUp recipe), so a saturated head can neither collapse nor explode σ.
      activation: a name in `reparam.nn.activations.ACTIVATIONS`.
    """

    action_dim: int
    hidden: Sequence[int] = (256, 256)
    action_scale: float = 1.0
    log_scale_bounds: tuple[float, float] = (-5.0, 2.0)
    activation: str = "relu"

    def setup(self):
        self.torso = [nn.Dense(width) for width in self.hidden]
        self.head = nn.Dense(2 * self.action_dim)

    def distribution(self, obs: Array) -> tuple[Array, Array]:
        """Pre-tanh (loc, scale), each (..., A), for observations (..., obs_dim)."""
        act = activation(self.activation, "reparam.nn.policy")
        h = obs
        for layer in self.torso:
            h = act(layer(h))
        out = self.head(h)
        loc, raw = out[..., : self.action_dim], out[..., self.action_dim :]
        low, high = self.log_scale_bounds
        log_scale = low + 0.5 * (high - low) * (jnp.tanh(raw) + 1.0)
        return loc, jnp.exp(log_scale)

    def __call__(self, key: Array, obs: Array) -> tuple[Array, Array]:
        """Reparameterized action (..., A) and its log-density (...)."""
        loc, scale = self.distribution(obs)
        return squashed_sample_and_log_prob(key, loc, scale, self.action_scale)

    def log_prob(self, obs: Array, action: Array) -> Array:
        """log π(action | obs), (...); finite for actions at the bounds."""
        loc, scale = self.distribution(obs)
        return squashed_log_prob(action, loc, scale, self.action_scale)

    def mode(self, obs: Array) -> Array:
        """The deterministic action c · tanh(loc) (used for evaluation)."""
        loc, _ = self.distribution(obs)
        return self.action_scale * jnp.tanh(loc)


class _QNetwork(nn.Module):
    hidden: Sequence[int]
    activation: str

    @nn.compact
    def __call__(self, obs: Array, action: Array) -> Array:
        act = activation(self.activation, "reparam.nn.policy")
        h = jnp.concatenate([obs, action], axis=-1)
        for width in self.hidden:
            h = act(nn.Dense(width)(h))
        return nn.Dense(1)(h)[..., 0]


class TwinQ(nn.Module):
    """`num_critics` independent Q(s, a) MLPs at once: (obs, action) -> (num_critics, ...).

    The critics are one vmapped module (stacked parameters, batched matmuls), not a Python
    loop over modules.
    """

    hidden: Sequence[int] = (256, 256)
    num_critics: int = 2
    activation: str = "relu"

    @nn.compact
    def __call__(self, obs: Array, action: Array) -> Array:
        critics = nn.vmap(
            _QNetwork,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            out_axes=0,
            axis_size=self.num_critics,
        )
        return critics(self.hidden, self.activation)(obs, action)


class ValueNetwork(nn.Module):
    """State-value baseline V(s): (..., obs_dim) -> (...)."""

    hidden: Sequence[int] = (256, 256)
    activation: str = "relu"

    @nn.compact
    def __call__(self, obs: Array) -> Array:
        act = activation(self.activation, "reparam.nn.policy")
        h = obs
        for width in self.hidden:
            h = act(nn.Dense(width)(h))
        return nn.Dense(1)(h)[..., 0]


__all__ = [
    "TanhGaussianPolicy",
    "TwinQ",
    "ValueNetwork",
    "squashed_log_prob",
    "squashed_sample_and_log_prob",
]
