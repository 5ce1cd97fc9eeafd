"""Mean, variance and signal-to-noise ratio of a gradient estimator over independent repeats.

An estimator is any function `estimate(key, *args) -> pytree of arrays` (one estimate per key);
`gradient_statistics` builds it from a surrogate of `reparam.estimators` as
`key -> jax.grad(Σ surrogate(key, params))(params)`. The R repeats use R independent keys
(`jax.random.split`), run under `jax.jit` and `jax.vmap` (in chunks of `batch_size` repeats
through `jax.lax.map`, to bound memory), and reduce per parameter element:

    mean      (1/R) Σ_r ĝ_r
    variance  (1/(R−1)) Σ_r (ĝ_r − mean)²        (unbiased)
    std_error sqrt(variance / R)                  (of the mean; for tolerances in tests)
    snr       |mean| / sqrt(variance)             (Rainforth et al. 2018)

Each field has the pytree structure and shapes of one estimate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from reparam import checks

Array = jax.Array


class Statistics(NamedTuple):
    """Per-element moments of an estimator over R repeats (pytrees like one estimate)."""

    mean: Any
    variance: Any
    std_error: Any
    snr: Any
    num_repeats: int


def _snr(mean: Array, variance: Array) -> Array:
    # Zero variance: infinite SNR for a nonzero mean, 0 (no signal) for a zero one, never NaN.
    safe = jnp.where(variance > 0, variance, 1.0)
    return jnp.where(
        variance > 0, jnp.abs(mean) / jnp.sqrt(safe), jnp.where(mean == 0, 0.0, jnp.inf)
    )


def _summarize(estimates: Any, num_repeats: int) -> Statistics:
    """Moments over the leading (repeat) axis of every leaf."""
    mean = jax.tree_util.tree_map(lambda x: jnp.mean(x, axis=0), estimates)
    variance = jax.tree_util.tree_map(lambda x: jnp.var(x, axis=0, ddof=1), estimates)
    std_error = jax.tree_util.tree_map(lambda v: jnp.sqrt(v / num_repeats), variance)
    # An estimator with zero variance and zero mean has no signal: report SNR 0, not NaN.
    snr = jax.tree_util.tree_map(_snr, mean, variance)
    return Statistics(mean, variance, std_error, snr, num_repeats)


def statistics(
    key: Array,
    estimate: Callable[..., Any],
    num_repeats: int,
    *args: Any,
    batch_size: int | None = None,
) -> Statistics:
    """Mean, variance, standard error and SNR of `estimate(key, *args)` over `num_repeats` keys.

    Args:
      key: a PRNG key; repeat r uses the r-th key of `jax.random.split(key, num_repeats)`.
      estimate: (key, *args) -> pytree of arrays (e.g. a gradient estimate); must be jittable.
      num_repeats: R ≥ 2.
      *args: pytrees passed to every repeat, traced (not baked into the compiled program).
      batch_size: repeats vmapped at once (None: all R), trading memory for speed.

    Returns:
      A `Statistics` whose fields have the structure of one estimate.
    """
    where = "reparam.diagnostics.statistics"
    key = checks.key(key, where)
    estimate = checks.function(where, "estimate", estimate)
    num_repeats = checks.count(
        where, "num_repeats", num_repeats, 2, " (a variance needs two repeats)"
    )
    if batch_size is not None:
        batch_size = checks.count(where, "batch_size", batch_size)
    chunk = min(int(batch_size or num_repeats), num_repeats)

    @jax.jit
    def run(keys: Array, args: tuple) -> tuple[Any, Any, Any, Any]:
        # lax.map with batch_size vmaps `chunk` repeats at a time and loops over the chunks.
        estimates = jax.lax.map(lambda k: estimate(k, *args), keys, batch_size=chunk)
        return tuple(_summarize(estimates, num_repeats)[:4])

    return Statistics(*run(jax.random.split(key, num_repeats), args), num_repeats)


def gradient_statistics(
    key: Array,
    surrogate: Callable[[Array, Any], Array],
    params: Any,
    num_repeats: int,
    *,
    batch_size: int | None = None,
) -> Statistics:
    """`statistics` of the estimator ĝ(key) = ∇θ Σ surrogate(key, θ) at θ = params.

    Args:
      key: a PRNG key.
      surrogate: (key, params) -> surrogate array, e.g.
        `lambda k, p: estimators.score_function(k, f, normal, p, 8)`.
      params: θ, any pytree of float arrays (a tuple (loc, scale), a Flax params dict...).
      num_repeats: R ≥ 2.
      batch_size: see `statistics`.

    Returns:
      A `Statistics` whose fields have the structure of `params`.
    """
    where = "reparam.diagnostics.gradient_statistics"
    surrogate = checks.function(where, "surrogate", surrogate)

    def estimate(key: Array, params: Any) -> Any:
        return jax.grad(lambda p: jnp.sum(surrogate(key, p)))(params)

    return statistics(key, estimate, num_repeats, params, batch_size=batch_size)


__all__ = ["Statistics", "gradient_statistics", "statistics"]
