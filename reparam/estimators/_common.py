"""Private pieces shared by the estimators: the DiCE-style surrogate and per-sample plumbing.

Every estimator returns a surrogate array whose value is the Monte-Carlo estimate and whose
`jax.grad` is the gradient estimate (see `reparam.estimators`); `dice` and `score_term` build it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from reparam import checks

Array = jax.Array
sg = jax.lax.stop_gradient


def params_tuple(where: str, params: Any) -> tuple:
    if not isinstance(params, tuple | list):
        raise TypeError(
            f"{where}: `params` must be a tuple of the family's parameters in PARAMS order, "
            f"e.g. (loc, scale); got {type(params).__name__}"
        )
    return tuple(params)


def evaluate(where: str, f: Callable, z: Array, num_samples: int) -> Array:
    return checks.per_sample(where, "f", f(z), num_samples)


def reduce_to(where: str, log_prob: Array, out_shape: tuple[int, ...]) -> Array:
    """Sum (K, *batch) log-probabilities over the batch axes that f's values do not keep."""
    batch = log_prob.shape[1:]
    if batch[: len(out_shape)] != tuple(out_shape):
        raise ValueError(
            f"{where}: `f` must return shape (num_samples, *out) with `out` a prefix of the "
            f"batch shape {batch} (one value per leading batch element); got out={out_shape}"
        )
    return jnp.sum(log_prob, axis=tuple(range(1 + len(out_shape), log_prob.ndim)))


def dice(value: Array, carrier: Array) -> Array:
    """Value of `value`, gradient of `carrier` (a zero-valued term may be passed as carrier)."""
    return sg(value) + (carrier - sg(carrier))


def score_term(advantage: Array, log_prob: Array) -> Array:
    """Zero-valued term with gradient advantage · ∇ log p (the advantage is not differentiated
    with respect to the distribution's parameters, but keeps its own, e.g. a control variate's)."""
    return advantage * (log_prob - sg(log_prob))
