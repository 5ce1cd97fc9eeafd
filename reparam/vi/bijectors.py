"""Constraint bijections: maps from unconstrained ℝⁿ onto a parameter's support, with log-dets.

Variational inference over constrained parameters (ADVI, Kucukelbir et al. 2017) fits a density
q(u) on unconstrained u and pushes it through x = f(u); the change of variables adds
log |det ∂f/∂u| to the log-joint. Each bijector here is a small frozen object with

  forward(u) -> x                  u: `inverse_shape(x.shape)`, x: `forward_shape(u.shape)`
  inverse(x) -> u
  forward_log_det_jacobian(u)      log |det ∂x/∂u| per event: shape u.shape for elementwise
                                   bijectors (event_ndims = 0), u.shape[:-1] for vector ones
  in_support(x, xp) -> bool array  for checking initial values (xp is numpy or jax.numpy)

Vector bijectors act on the last axis. For `simplex` the output has one more coordinate than the
input (x sums to 1), and the log-det is that of u -> x[..., :-1], the density convention of the
Dirichlet (a density over the first K − 1 coordinates).

The constraint names (`real`, `positive`, `unit_interval`, `simplex`, `ordered`) are aliases of
the bijectors Stan and NumPyro use for those supports, so fits are comparable with theirs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

Array = jax.Array
Shape = tuple[int, ...]


@dataclass(frozen=True)
class Bijector:
    """Base class; the identity (support ℝ)."""

    name: ClassVar[str] = "identity"
    event_ndims: ClassVar[int] = 0
    support: ClassVar[str] = "real"

    def forward(self, u: Array) -> Array:
        return u

    def inverse(self, x: Array) -> Array:
        return x

    def forward_log_det_jacobian(self, u: Array) -> Array:
        return jnp.zeros_like(u)

    def forward_shape(self, shape: Shape) -> Shape:
        return tuple(shape)

    def inverse_shape(self, shape: Shape) -> Shape:
        return tuple(shape)

    def in_support(self, x: Any, xp: Any) -> Any:
        return xp.isfinite(x)


@dataclass(frozen=True)
class Exp(Bijector):
    """x = exp(u) on (0, ∞); log-det u. Stan's and NumPyro's choice for positive parameters."""

    name: ClassVar[str] = "exp"
    support: ClassVar[str] = "positive (> 0)"

    def forward(self, u: Array) -> Array:
        return jnp.exp(u)

    def inverse(self, x: Array) -> Array:
        return jnp.log(x)

    def forward_log_det_jacobian(self, u: Array) -> Array:
        return u

    def in_support(self, x: Any, xp: Any) -> Any:
        return (x > 0) & xp.isfinite(x)


@dataclass(frozen=True)
class Softplus(Bijector):
    """x = log(1 + eᵘ) on (0, ∞); log-det log σ(u). Grows linearly, unlike exp, for large u."""

    name: ClassVar[str] = "softplus"
    support: ClassVar[str] = "positive (> 0)"

    def forward(self, u: Array) -> Array:
        return jax.nn.softplus(u)

    def inverse(self, x: Array) -> Array:
        # log(eˣ − 1) = x + log(1 − e⁻ˣ), exact for large x and (via expm1) for small x.
        return x + jnp.log(-jnp.expm1(-x))

    def forward_log_det_jacobian(self, u: Array) -> Array:
        return jax.nn.log_sigmoid(u)

    def in_support(self, x: Any, xp: Any) -> Any:
        return (x > 0) & xp.isfinite(x)


@dataclass(frozen=True)
class Interval(Bijector):
    """x = low + (high − low) σ(u) on (low, high); `Interval(0, 1)` is the logistic sigmoid."""

    low: float = 0.0
    high: float = 1.0

    def __post_init__(self):
        if not self.low < self.high:
            raise ValueError(
                f"reparam.bijectors.Interval: `low` must be < `high`; got low={self.low!r}, "
                f"high={self.high!r}"
            )

    @property
    def name(self) -> str:  # type: ignore[override]
        unit = (self.low, self.high) == (0.0, 1.0)
        return "sigmoid" if unit else f"interval({self.low}, {self.high})"

    @property
    def support(self) -> str:  # type: ignore[override]
        return f"in the open interval ({self.low}, {self.high})"

    def forward(self, u: Array) -> Array:
        return self.low + (self.high - self.low) * jax.nn.sigmoid(u)

    def inverse(self, x: Array) -> Array:
        p = (x - self.low) / (self.high - self.low)
        return jnp.log(p) - jnp.log1p(-p)

    def forward_log_det_jacobian(self, u: Array) -> Array:
        # σ'(u) = σ(u) σ(−u), in logs to stay finite for |u| large.
        return math.log(self.high - self.low) + jax.nn.log_sigmoid(u) + jax.nn.log_sigmoid(-u)

    def in_support(self, x: Any, xp: Any) -> Any:
        return (x > self.low) & (x < self.high)


@dataclass(frozen=True)
class Ordered(Bijector):
    """Increasing vectors: x₀ = u₀, xᵢ = xᵢ₋₁ + exp(uᵢ); log-det Σᵢ≥₁ uᵢ (last axis).

    Identifies mixture components (no label switching) when used on their locations.
    """

    name: ClassVar[str] = "ordered"
    event_ndims: ClassVar[int] = 1
    support: ClassVar[str] = "a strictly increasing vector"

    def forward(self, u: Array) -> Array:
        steps = jnp.concatenate([u[..., :1], jnp.exp(u[..., 1:])], axis=-1)
        return jnp.cumsum(steps, axis=-1)

    def inverse(self, x: Array) -> Array:
        return jnp.concatenate([x[..., :1], jnp.log(jnp.diff(x, axis=-1))], axis=-1)

    def forward_log_det_jacobian(self, u: Array) -> Array:
        return jnp.sum(u[..., 1:], axis=-1)

    def in_support(self, x: Any, xp: Any) -> Any:
        x = xp.asarray(x)
        if x.ndim == 0:
            return xp.zeros((), bool)  # a vector is required; the shape check reports it
        increasing = xp.all(xp.diff(x, axis=-1) > 0, axis=-1)
        return increasing & xp.all(xp.isfinite(x), axis=-1)


@dataclass(frozen=True)
class StickBreaking(Bijector):
    """ℝᴷ⁻¹ -> the open simplex in ℝᴷ by stick breaking (Stan's and NumPyro's simplex transform).

    zᵢ = σ(uᵢ − log(K − 1 − i)) is the fraction taken from the stick left after i breaks; the
    offset makes u = 0 the uniform vector. xᵢ = zᵢ Πⱼ<ᵢ(1 − zⱼ), x_K = Πⱼ(1 − zⱼ). The Jacobian of
    u -> x[:K−1] is triangular with diagonal zᵢ(1 − zᵢ) Πⱼ<ᵢ(1 − zⱼ); everything is computed in
    logs (log σ) so tiny weights keep finite log-dets.
    """

    name: ClassVar[str] = "stick_breaking"
    event_ndims: ClassVar[int] = 1
    support: ClassVar[str] = "on the open simplex (positive, summing to 1)"

    @staticmethod
    def _logits(u: Array) -> Array:
        k_minus_1 = u.shape[-1]
        offset = jnp.log(jnp.arange(k_minus_1, 0, -1, dtype=u.dtype))
        return u - offset

    def _log_parts(self, u: Array) -> tuple[Array, Array, Array]:
        t = self._logits(u)
        log_z, log_1mz = jax.nn.log_sigmoid(t), jax.nn.log_sigmoid(-t)
        # log of the stick left before break i: Σⱼ<ᵢ log(1 − zⱼ), and after the last break.
        log_left = jnp.cumsum(log_1mz, axis=-1)
        log_before = jnp.concatenate([jnp.zeros_like(log_left[..., :1]), log_left[..., :-1]], -1)
        return log_z, log_1mz, log_before

    def forward(self, u: Array) -> Array:
        log_z, log_1mz, log_before = self._log_parts(u)
        log_last = log_before[..., -1:] + log_1mz[..., -1:]
        return jnp.exp(jnp.concatenate([log_z + log_before, log_last], axis=-1))

    def inverse(self, x: Array) -> Array:
        # Stick left before break i: 1 − Σⱼ<ᵢ xⱼ, computed as Σⱼ≥ᵢ xⱼ (no cancellation).
        left = jnp.flip(jnp.cumsum(jnp.flip(x, -1), axis=-1), -1)[..., :-1]
        z = x[..., :-1] / left
        t = jnp.log(z) - jnp.log1p(-z)
        k_minus_1 = x.shape[-1] - 1
        return t + jnp.log(jnp.arange(k_minus_1, 0, -1, dtype=t.dtype))

    def forward_log_det_jacobian(self, u: Array) -> Array:
        log_z, log_1mz, log_before = self._log_parts(u)
        return jnp.sum(log_z + log_1mz + log_before, axis=-1)

    def forward_shape(self, shape: Shape) -> Shape:
        return (*shape[:-1], shape[-1] + 1)

    def inverse_shape(self, shape: Shape) -> Shape:
        if len(shape) < 1 or shape[-1] < 2:
            raise ValueError(f"a simplex needs a last axis of size ≥ 2, got shape {shape}")
        return (*shape[:-1], shape[-1] - 1)

    def in_support(self, x: Any, xp: Any) -> Any:
        x = xp.asarray(x)
        if x.ndim == 0:
            return xp.zeros((), bool)
        sums_to_one = xp.abs(xp.sum(x, axis=-1) - 1) < 1e-6 * x.shape[-1]
        return xp.all(x > 0, axis=-1) & sums_to_one


identity = Bijector()
exp = Exp()
softplus = Softplus()
sigmoid = Interval(0.0, 1.0)
ordered = Ordered()
stick_breaking = StickBreaking()

# Constraint names: the bijector Stan and NumPyro use for each support.
real = identity
positive = exp
unit_interval = sigmoid
simplex = stick_breaking

__all__ = [
    "Bijector",
    "Exp",
    "Interval",
    "Ordered",
    "Softplus",
    "StickBreaking",
    "exp",
    "identity",
    "ordered",
    "positive",
    "real",
    "sigmoid",
    "simplex",
    "softplus",
    "stick_breaking",
    "unit_interval",
]
