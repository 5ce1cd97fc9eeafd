"""Evaluation of latent-variable models: importance-sampled log-likelihood, active units, KL.

The functions take the model as callables, like `reparam.objectives`:

  encode(x) -> (loc, scale)            q(z|x) = N(loc, diag(scale²)), each (B, d)
  log_likelihood(x, z) -> (K, B)       log p(x|z) for x (B, D) and z (K, B, d)

with a standard-normal prior. The importance-sampled log-likelihood takes any other posterior
and prior through `proposal` (the categorical VAE's one-hot codes, `reparam.discrete_vae`, use
it too). Data arrays may be uint8 (as `reparam.data` returns them); they are cast to `dtype`
batch by batch on the device.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from reparam import checks
from reparam.families import kl, normal
from reparam.models import objectives

Array = jax.Array
Encoder = Callable[[Array], tuple[Array, Array]]
LogLikelihood = Callable[[Array, Array], Array]
# (key, encode(x), n) -> (z (n, B, ...), log p(z) (n, B) or a scalar, log q(z|x) (n, B))
Proposal = Callable[[Array, Any, int], tuple[Array, Any, Array]]


def gaussian_proposal(key: Array, posterior: tuple[Array, Array], num: int):
    """n draws z ~ N(loc, diag(scale²)) with log N(z; 0, I) and log q(z|x), both (n, B)."""
    z, log_q = normal.sample_and_log_prob(key, *posterior, sample_shape=(num,))
    return z, objectives.standard_normal_log_prob(z), jnp.sum(log_q, axis=-1)


def _batches(data: np.ndarray, batch_size: int):
    """Yield (index, batch padded to batch_size, number of real rows)."""
    for index, start in enumerate(range(0, len(data), batch_size)):
        batch = np.asarray(data[start : start + batch_size])
        valid = len(batch)
        if valid < batch_size:  # pad so every call has one shape (one compilation)
            batch = np.concatenate([batch, np.repeat(batch[-1:], batch_size - valid, axis=0)])
        yield index, batch, valid


def log_px_function(
    encode: Encoder,
    log_likelihood: LogLikelihood,
    *,
    num_samples: int,
    chunk_size: int,
    dtype=jnp.float32,
    proposal: Proposal = gaussian_proposal,
) -> Callable[[Array, Array], Array]:
    """The jitted per-batch estimator of `importance_sampled_log_likelihood`.

    Returns:
      batch_log_px(key, x (B, D)) -> (B,) log p(x) estimates with K = num_samples, drawn
      chunk_size at a time in a `lax.scan` (chunk j uses fold_in(key, j)) and combined with a
      running logsumexp. Its memory does not grow with K: each chunk's (chunk, B, ·) arrays
      are reused by the next, and only (num_chunks, B) partial sums are kept. To measure the
      temporaries for a model: XLA's memory analysis, `.lower(key, x).compile()
      .memory_analysis()`, as `python -m benchmarks.scaling` does.
    """
    chunk = min(chunk_size, num_samples)
    num_chunks = math.ceil(num_samples / chunk)

    @jax.jit
    def batch_log_px(batch_key: Array, x: Array) -> Array:
        x = x.astype(dtype)
        posterior = encode(x)

        def one_chunk(_, j):
            z, log_prior, log_q = proposal(jax.random.fold_in(batch_key, j), posterior, chunk)
            log_w = log_likelihood(x, z) + log_prior - log_q
            # Samples past K in an overrunning last chunk get weight zero.
            index = j * chunk + jnp.arange(chunk)[:, None]
            log_w = jnp.where(index < num_samples, log_w, -jnp.inf)
            return None, logsumexp(log_w, axis=0)

        _, per_chunk = jax.lax.scan(one_chunk, None, jnp.arange(num_chunks))
        return logsumexp(per_chunk, axis=0) - math.log(num_samples)

    return batch_log_px


def importance_sampled_log_likelihood(
    key: Array,
    data: np.ndarray,
    encode: Encoder,
    log_likelihood: LogLikelihood,
    *,
    num_samples: int = 5000,
    chunk_size: int = 500,
    batch_size: int = 100,
    dtype=jnp.float32,
    proposal: Proposal = gaussian_proposal,
    where: str = "reparam.evaluate.importance_sampled_log_likelihood",
) -> np.ndarray:
    """log p(x) ≈ log (1/K) Σ_k p(x, z_k)/q(z_k|x), z_k ~ q(z|x), per example (Burda et al.).

    This is the K-sample IWAE bound, a stochastic lower bound on log p(x) that tightens as K
    grows; the negative mean over a data set is the "importance-sampled NLL" of the literature
    (K = 5000). Samples are drawn `chunk_size` at a time and combined with a running logsumexp,
    so memory is bounded by the chunk, not by K (see `log_px_function`).

    Args:
      key: a PRNG key; example batch i uses fold_in(key, i), chunk j fold_in(that, j).
      data: (N, D).
      encode, log_likelihood: the model (see the module docstring).
      num_samples: K.
      chunk_size: samples per chunk (the last chunk is masked if it overruns K).
      batch_size: examples per device call.
      dtype: float dtype of the computation.
      proposal: the posterior and prior (default: `gaussian_proposal`, q(z|x) = encode(x) and a
        standard-normal prior).
      where: the function named in error messages (for callers that wrap this one).

    Returns:
      float64 numpy array (N,) of log-likelihood estimates (nats).
    """
    key = checks.key(key, where)
    num_samples = checks.count(where, "num_samples", num_samples)
    chunk_size = checks.count(where, "chunk_size", chunk_size)
    batch_size = checks.count(where, "batch_size", batch_size)
    batch_log_px = log_px_function(
        encode,
        log_likelihood,
        num_samples=num_samples,
        chunk_size=chunk_size,
        dtype=dtype,
        proposal=proposal,
    )
    out = []
    for index, batch, valid in _batches(data, batch_size):
        values = batch_log_px(jax.random.fold_in(key, index), jnp.asarray(batch))
        out.append(np.asarray(values, dtype=np.float64)[:valid])
    return np.concatenate(out)


def mean_bound(
    key: Array,
    data: np.ndarray,
    bound: Callable[[Array, Array], Array],
    *,
    batch_size: int = 500,
    dtype=jnp.float32,
    jit: bool = True,
) -> float:
    """Mean over `data` of a per-example bound(key, x) -> (B,) (e.g. a model's ELBO).

    With jit=False `bound` is called as given: pass an already-jitted function (with the
    parameters as an argument, bound by functools.partial) to evaluate repeatedly during
    training without compiling again each time.
    """
    if jit:
        fn = jax.jit(lambda k, x: bound(k, x.astype(dtype)))
    else:
        fn = lambda k, x: bound(k, x.astype(dtype))
    total, count = 0.0, 0
    for index, batch, valid in _batches(data, batch_size):
        values = np.asarray(fn(jax.random.fold_in(key, index), jnp.asarray(batch)), np.float64)
        total += values[:valid].sum()
        count += valid
    return total / count


def _posterior_params(
    data: np.ndarray, encode: Encoder, batch_size: int, dtype
) -> tuple[np.ndarray, np.ndarray]:
    fn = jax.jit(lambda x: encode(x.astype(dtype)))
    locs, scales = [], []
    for _, batch, valid in _batches(data, batch_size):
        loc, scale = fn(jnp.asarray(batch))
        locs.append(np.asarray(loc, np.float64)[:valid])
        scales.append(np.asarray(scale, np.float64)[:valid])
    return np.concatenate(locs), np.concatenate(scales)


def active_units(
    data: np.ndarray,
    encode: Encoder,
    *,
    threshold: float = 0.01,
    batch_size: int = 1000,
    dtype=jnp.float32,
) -> tuple[int, np.ndarray]:
    """Active latent units (Burda et al. 2016, §5.2): Cov_x(E_q[z_j | x]) > threshold.

    Returns:
      (number of active units, per-dimension variance over the data of the posterior mean (d,)).
    """
    loc, _ = _posterior_params(data, encode, batch_size, dtype)
    variance = loc.var(axis=0)
    return int(np.sum(variance > threshold)), variance


def per_dimension_kl(
    data: np.ndarray, encode: Encoder, *, batch_size: int = 1000, dtype=jnp.float32
) -> np.ndarray:
    """Mean over the data of KL(q(z_j|x) ‖ N(0, 1)) for each latent dimension j: shape (d,)."""
    loc, scale = _posterior_params(data, encode, batch_size, dtype)
    return np.asarray(kl.normal_normal(loc, scale, 0.0, 1.0)).mean(axis=0)


__all__ = [
    "Proposal",
    "active_units",
    "gaussian_proposal",
    "importance_sampled_log_likelihood",
    "log_px_function",
    "mean_bound",
    "per_dimension_kl",
]
