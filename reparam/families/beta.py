"""Beta(concentration1, concentration0): density z^(a−1) (1 − z)^(b−1) / B(a, b) on 0 < z < 1.

Sampling: z = G1 / (G1 + G0) with G1 ~ Gamma(concentration1), G0 ~ Gamma(concentration0),
computed in log space as log z = l1 − logaddexp(l1, l0) from the log-gamma draws l = log G
(:func:`reparam.gamma.log_sample`), so tiny concentrations, where both G underflow, never give
0/0. There is no parameter-free ε with an explicit map to z (no closed-form inverse CDF), so
there is no `noise`/`transform`: `sample(key, concentration1, concentration0, sample_shape=())` is
the entry point, and gradients are implicit reparameterization gradients of the two gammas,
carried through the (explicit) ratio by ordinary autodiff.

Shapes: parameters broadcast to a batch shape B; samples have shape `sample_shape + B`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import betainc, betaln, digamma, xlog1py, xlogy

from reparam import checks
from reparam.families import gamma

Array = jax.Array

PARAMS = ("concentration1", "concentration0")
EVENT_NDIMS = 0


def _params(where: str, concentration1, concentration0) -> tuple[Array, Array, tuple[int, ...]]:
    where = f"reparam.beta.{where}"
    (concentration1, concentration0), batch_shape = checks.broadcast(
        where, concentration1=concentration1, concentration0=concentration0
    )
    checks.positive(where, "concentration1", concentration1)
    checks.positive(where, "concentration0", concentration0)
    return concentration1, concentration0, batch_shape


def _log_sample(key: Array, concentration1, concentration0, shape) -> tuple[Array, Array]:
    """(log z, log(1 − z)) of `shape`, both from the same pair of log-gamma draws."""
    key1, key0 = jax.random.split(key)
    log_g1 = gamma.log_sample(key1, concentration1, shape)
    log_g0 = gamma.log_sample(key0, concentration0, shape)
    log_total = jnp.logaddexp(log_g1, log_g0)
    return log_g1 - log_total, log_g0 - log_total


def log_sample(key: Array, concentration1, concentration0, shape) -> tuple[Array, Array]:
    """(log z, log(1 − z)) of `shape` for z ~ Beta(concentration1, concentration0), implicitly
    reparameterized in both; exact where z rounds to 0 or 1. Shared by the power_spherical and
    lkj_cholesky families (square roots of z and 1 − z without 0 · inf in their gradients).

    The concentrations must broadcast to `shape`; same draws as `sample` with that shape.
    """
    where = "reparam.beta.log_sample"
    key = checks.key(key, where)
    concentration1, concentration0, _ = _params("log_sample", concentration1, concentration0)
    return _log_sample(key, concentration1, concentration0, checks.sample_shape(where, shape))


def sample(key: Array, concentration1, concentration0, sample_shape=()) -> Array:
    """Reparameterized draw of shape `sample_shape + broadcast(concentration1, concentration0)`.

    Samples may round to exactly 0 or 1 at tiny concentrations; gradients stay finite there.
    """
    key = checks.key(key, "reparam.beta.sample")
    concentration1, concentration0, batch_shape = _params("sample", concentration1, concentration0)
    shape = checks.sample_shape("reparam.beta.sample", sample_shape) + batch_shape
    log_z, _ = _log_sample(key, concentration1, concentration0, shape)
    return jnp.exp(log_z)


def sample_and_log_prob(
    key: Array, concentration1, concentration0, sample_shape=()
) -> tuple[Array, Array]:
    """Draw z and log p(z) from log z and log(1 − z), exact even where z rounds to 0 or 1."""
    where = "reparam.beta.sample_and_log_prob"
    key = checks.key(key, where)
    concentration1, concentration0, batch_shape = _params(
        "sample_and_log_prob", concentration1, concentration0
    )
    shape = checks.sample_shape(where, sample_shape) + batch_shape
    log_z, log1m_z = _log_sample(key, concentration1, concentration0, shape)
    log_p = (
        (concentration1 - 1) * log_z
        + (concentration0 - 1) * log1m_z
        - betaln(concentration1, concentration0)
    )
    return jnp.exp(log_z), log_p


def log_prob(x, concentration1, concentration0) -> Array:
    """log Beta(x; a, b), shape broadcast(x, a, b); −inf outside [0, 1]."""
    concentration1, concentration0, batch_shape = _params(
        "log_prob", concentration1, concentration0
    )
    checks.broadcastable("reparam.beta.log_prob", "x", jnp.shape(x), batch_shape)
    x = jnp.asarray(x, concentration1.dtype)
    value = (
        xlogy(concentration1 - 1, x)
        + xlog1py(concentration0 - 1, -x)
        - betaln(concentration1, concentration0)
    )
    return jnp.where((x < 0) | (x > 1), -jnp.inf, value)


def cdf(x, concentration1, concentration0) -> Array:
    """P(z ≤ x) = I_x(a, b), the regularized incomplete beta function."""
    concentration1, concentration0, _ = _params("cdf", concentration1, concentration0)
    x = jnp.clip(jnp.asarray(x, concentration1.dtype), 0, 1)
    return betainc(concentration1, concentration0, x)


def entropy(concentration1, concentration0) -> Array:
    a, b, batch_shape = _params("entropy", concentration1, concentration0)
    value = (
        betaln(a, b) - (a - 1) * digamma(a) - (b - 1) * digamma(b) + (a + b - 2) * digamma(a + b)
    )
    return jnp.broadcast_to(value, batch_shape)


def mean(concentration1, concentration0) -> Array:
    a, b, batch_shape = _params("mean", concentration1, concentration0)
    return jnp.broadcast_to(a / (a + b), batch_shape)


def variance(concentration1, concentration0) -> Array:
    a, b, batch_shape = _params("variance", concentration1, concentration0)
    total = a + b
    return jnp.broadcast_to(a * b / (total**2 * (total + 1)), batch_shape)


__all__ = [
    "EVENT_NDIMS",
    "PARAMS",
    "cdf",
    "entropy",
    "log_prob",
    "log_sample",
    "mean",
    "sample",
    "sample_and_log_prob",
    "variance",
]
