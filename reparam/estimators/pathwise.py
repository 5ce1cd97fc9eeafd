"""The pathwise (reparameterization) estimator: mean_k f(z_k) with z = family.sample(key, θ)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp

from reparam import checks
from reparam.estimators._common import evaluate, params_tuple

Array = jax.Array


def pathwise(
    key: Array,
    f: Callable[[Array], Array],
    family: ModuleType,
    params: tuple,
    num_samples: int,
    **sample_kwargs: Any,
) -> Array:
    """Pathwise (reparameterization) estimator: mean_k f(z_k), z = family.sample(key, *params).

    Works for every family of the core: explicit transforms and implicit reparameterization
    alike give ∂z/∂θ. Biased only where `family.sample` is (straight-through relaxations).

    Args:
      key: a PRNG key.
      f: z of shape (K, *batch, *event) -> values of shape (K, *out).
      family: a family module (reparam.normal, reparam.gamma, ...).
      params: the family's parameters in PARAMS order.
      num_samples: K ≥ 1.
      **sample_kwargs: passed to `family.sample` (e.g. straight_through=True).

    Returns:
      The surrogate, shape `out`: value mean_k f(z_k), gradient the pathwise estimate.
    """
    where = "reparam.estimators.pathwise"
    key = checks.key(key, where)
    f = checks.function(where, "f", f)
    family = checks.family(where, family, "sample")
    params = params_tuple(where, params)
    num_samples = checks.count(where, "num_samples", num_samples)
    z = family.sample(key, *params, sample_shape=(num_samples,), **sample_kwargs)
    return jnp.mean(evaluate(where, f, z, num_samples), axis=0)


__all__ = ["pathwise"]
