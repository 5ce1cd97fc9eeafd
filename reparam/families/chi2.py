"""Chi2(df): the chi-squared distribution with df degrees of freedom, z = 2·G, G ~ Gamma(df/2, 1).

Density z^(k/2−1) e^(−z/2) / (2^(k/2) Γ(k/2)) on z > 0 (k = df; scipy: chi2(df); TFP:
Chi2(df)), i.e. Gamma(df/2, rate=½). Sampling: z = exp(log 2 + log G) with log G from
:func:`reparam.gamma.log_sample`, implicitly reparameterized in df: z = 2G keeps G's CDF, so the
gamma's implicit gradient at a = k/2 is the chi-squared's own, dz/dk = −(∂F/∂k)/p(z). There is no
parameter-free ε, so this module defines no `noise`/`transform`. Where G underflows (df ≲ 0.02
in float64) the draw is 0 with finite gradients, as for the gamma.

Shapes: `df` has the batch shape B; samples have shape `sample_shape + B`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import digamma, gammainc, gammaln, xlogy

from reparam import checks
from reparam.families.gamma import log_sample

Array = jax.Array

PARAMS = ("df",)
EVENT_NDIMS = 0


def _params(where: str, df) -> tuple[Array, tuple[int, ...]]:
    name = f"reparam.chi2.{where}"
    (df,), batch_shape = checks.broadcast(name, df=df)
    checks.positive(name, "df", df)
    return df, batch_shape


def _log_sample(key: Array, df: Array, shape: tuple[int, ...]) -> Array:
    return math.log(2.0) + log_sample(key, df / 2, shape)


def sample(key: Array, df, sample_shape=()) -> Array:
    """Reparameterized draw of shape `sample_shape + df.shape`.

    May be exactly 0 where the draw underflows the dtype; its gradients stay finite there.
    """
    where = "reparam.chi2.sample"
    key = checks.key(key, where)
    df, batch_shape = _params("sample", df)
    shape = checks.sample_shape(where, sample_shape) + batch_shape
    return jnp.exp(_log_sample(key, df, shape))


def sample_and_log_prob(key: Array, df, sample_shape=()) -> tuple[Array, Array]:
    """Draw z (the same bits as `sample` with this key) and log p(z), the latter from log z
    (exact even where z underflows to 0)."""
    where = "reparam.chi2.sample_and_log_prob"
    key = checks.key(key, where)
    df, batch_shape = _params("sample_and_log_prob", df)
    shape = checks.sample_shape(where, sample_shape) + batch_shape
    log_z = _log_sample(key, df, shape)
    z = jnp.exp(log_z)
    half = df / 2
    return z, (half - 1.0) * log_z - 0.5 * z - half * math.log(2.0) - gammaln(half)


def log_prob(x, df) -> Array:
    """log Chi2(x; df), shape broadcast(x, df); −inf for x < 0."""
    df, batch_shape = _params("log_prob", df)
    checks.broadcastable("reparam.chi2.log_prob", "x", jnp.shape(x), batch_shape)
    x = jnp.asarray(x, df.dtype)
    half = df / 2
    # xlogy: (k/2 − 1)·log 0 is 0 at k = 2, where the density at 0 is ½, not NaN.
    value = xlogy(half - 1.0, x) - 0.5 * x - half * math.log(2.0) - gammaln(half)
    return jnp.where(x < 0, -jnp.inf, value)


def cdf(x, df) -> Array:
    """P(z ≤ x) = P(k/2, x/2), the regularized lower incomplete gamma function."""
    df, _ = _params("cdf", df)
    x = jnp.asarray(x, df.dtype)
    return gammainc(df / 2, jnp.maximum(x, 0) / 2)


def entropy(df) -> Array:
    """k/2 + log 2 + log Γ(k/2) + (1 − k/2)·ψ(k/2)."""
    df, batch_shape = _params("entropy", df)
    half = df / 2
    value = half + math.log(2.0) + gammaln(half) + (1.0 - half) * digamma(half)
    return jnp.broadcast_to(value, batch_shape)


def mean(df) -> Array:
    """k."""
    df, batch_shape = _params("mean", df)
    return jnp.broadcast_to(df, batch_shape)


def variance(df) -> Array:
    """2k."""
    df, batch_shape = _params("variance", df)
    return jnp.broadcast_to(2.0 * df, batch_shape)


__all__ = [
    "EVENT_NDIMS",
    "PARAMS",
    "cdf",
    "entropy",
    "log_prob",
    "mean",
    "sample",
    "sample_and_log_prob",
    "variance",
]
