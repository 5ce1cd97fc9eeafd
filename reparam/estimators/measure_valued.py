"""Measure-valued derivatives of Gaussian expectations (Mohamed et al. 2020, §6)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from reparam import checks
from reparam.estimators._common import dice, evaluate, sg

Array = jax.Array


def measure_valued_normal_grad(
    key: Array,
    f: Callable[[Array], Array],
    loc: Any,
    scale: Any,
    num_samples: int,
    *,
    coupled: bool = True,
) -> tuple[Array, Array, Array]:
    """Measure-valued derivative of E_N(loc, scale²)[f(x)] (Mohamed et al. 2020, §6, Table 1).

    ∂/∂loc N(x; μ, σ²) = (σ√(2π))⁻¹ [Weibull⁺ − Weibull⁻], the two parts being μ ± σW with
    W ~ Weibull(√2, 2) (a Rayleigh variable); ∂/∂σ N = σ⁻¹ [M(μ, σ) − N(μ, σ²)], M the
    double-sided Maxwell μ + σD with D = ±χ₃. With `coupled` the positive and negative parts
    share their randomness: the same W for μ ± σW, and D = sign(ε₁)‖ε‖ against the normal ε₁,
    ε ~ N(0, I₃) (both couplings keep the marginals exact). Needs only evaluations of f, never
    its derivative.

    Args:
      key: a PRNG key.
      f: elementwise, x of shape (K, *batch) -> (K, *batch); each element is its own
        univariate problem (MVD perturbs one coordinate at a time).
      loc, scale: shape broadcastable to `batch`; scale > 0.
      num_samples: K ≥ 1 (each costs four evaluations of f).
      coupled: share randomness between positive and negative parts (lower variance).

    Returns:
      (grad_loc, grad_scale, value), each of shape `batch`; value = mean_k f(μ + σ ε₁).
    """
    where = "reparam.estimators.measure_valued_normal_grad"
    key = checks.key(key, where)
    f = checks.function(where, "f", f)
    num_samples = checks.count(where, "num_samples", num_samples)
    (loc, scale), batch = checks.broadcast(where, loc=loc, scale=scale)
    checks.positive(where, "scale", scale)
    shape = (num_samples, *batch)
    keys = jax.random.split(key, 4)
    weibull = jax.random.weibull_min(keys[0], math.sqrt(2.0), 2.0, shape, loc.dtype)
    eps = jax.random.normal(keys[1], (3, *shape), loc.dtype)
    maxwell = jnp.sign(eps[0]) * jnp.sqrt(jnp.sum(eps**2, axis=0))
    if coupled:
        weibull_minus, gaussian = weibull, eps[0]
    else:
        weibull_minus = jax.random.weibull_min(keys[2], math.sqrt(2.0), 2.0, shape, loc.dtype)
        gaussian = jax.random.normal(keys[3], shape, loc.dtype)

    def elementwise(x: Array) -> Array:
        values = evaluate(where, f, sg(x), num_samples)
        if values.shape != shape:
            raise ValueError(
                f"{where}: `f` must act elementwise, mapping x of shape {shape} to the same "
                f"shape; got {values.shape}"
            )
        return values

    loc, scale = sg(loc), sg(scale)
    plus, minus = elementwise(loc + scale * weibull), elementwise(loc - scale * weibull_minus)
    maxwell_values, normal_values = (
        elementwise(loc + scale * maxwell),
        elementwise(loc + scale * gaussian),
    )
    grad_loc = jnp.mean(plus - minus, axis=0) / (scale * math.sqrt(2 * math.pi))
    grad_scale = jnp.mean(maxwell_values - normal_values, axis=0) / scale
    return grad_loc, grad_scale, jnp.mean(normal_values, axis=0)


def measure_valued(
    key: Array,
    f: Callable[[Array], Array],
    loc: Any,
    scale: Any,
    num_samples: int,
    *,
    coupled: bool = True,
) -> Array:
    """Surrogate of `measure_valued_normal_grad`: value mean f, gradient (ĝ_loc, ĝ_scale).

    Built as sg(value) + Σ sg(ĝ_θ)·(θ − sg(θ)), so `jax.grad` w.r.t. loc and scale returns the
    measure-valued estimate (summed over broadcasting, like any gradient). Shape `batch`.
    """
    grad_loc, grad_scale, value = measure_valued_normal_grad(
        key, f, loc, scale, num_samples, coupled=coupled
    )
    loc, scale = jnp.asarray(loc, value.dtype), jnp.asarray(scale, value.dtype)
    carrier = sg(grad_loc) * (loc - sg(loc)) + sg(grad_scale) * (scale - sg(scale))
    return dice(value, carrier)


__all__ = ["measure_valued", "measure_valued_normal_grad"]
