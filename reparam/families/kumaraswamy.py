"""Kumaraswamy(concentration1, concentration0) on (0, 1), by its inverse CDF.

With a = concentration1, b = concentration0: density a·b·x^(a−1)·(1 − x^a)^(b−1) and CDF
1 − (1 − x^a)^b, so z = (1 − (1 − u)^(1/b))^(1/a) with u ~ Uniform(0, 1). The transform runs in
log space: r = −log1p(−u)/b, log z = log(1 − e^{−r})/a (log1mexp), z = exp(log z), so extreme
concentrations saturate z at 0 or 1 instead of producing NaN; its gradients come from a closed-form
JVP whose coefficients stay finite over the whole parameter range.

Shapes: parameters broadcast to a batch shape B; samples have shape `sample_shape + B`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import betaln, digamma

from reparam import checks

Array = jax.Array

PARAMS = ("concentration1", "concentration0")
EVENT_NDIMS = 0


def _params(where: str, concentration1, concentration0) -> tuple[Array, Array, tuple[int, ...]]:
    name = f"reparam.kumaraswamy.{where}"
    (a, b), batch_shape = checks.broadcast(
        name, concentration1=concentration1, concentration0=concentration0
    )
    checks.positive(name, "concentration1", a)
    checks.positive(name, "concentration0", b)
    return a, b, batch_shape


def _noise(key: Array, shape: tuple[int, ...], dtype) -> Array:
    # The open interval: u = 0 would make log(1 − (1 − u)^(1/b)) = −inf.
    return jax.random.uniform(key, shape, dtype, minval=jnp.finfo(dtype).tiny, maxval=1.0)


def _log1mexp(x: Array) -> Array:
    """log(1 − eˣ) for x < 0 (Mächler 2012): log(−expm1(x)) near 0, log1p(−eˣ) far from it."""
    near = x > -math.log(2.0)
    # Double `where`: each branch only sees inputs where it is finite, so gradients are not NaN.
    return jnp.where(
        near,
        jnp.log(-jnp.expm1(jnp.where(near, x, -1.0))),
        jnp.log1p(-jnp.exp(jnp.where(near, -1.0, x))),
    )


def _inverse_cdf_parts(u: Array, a: Array, b: Array) -> tuple[Array, Array, Array, Array]:
    """z = exp(log z) with log z = log(1 − e^{−r})/a and r = −log(1 − u)/b ≥ 0; also r and
    `ok`, false where 1 − e^{−r} underflows (u ≈ tiny with a huge b) and log z is clamped."""
    r = -jnp.log1p(-u) / b
    tiny = jnp.finfo(r.dtype).tiny
    ok = -jnp.expm1(-r) >= tiny
    log_z = jnp.where(ok, _log1mexp(jnp.where(ok, -r, -1.0)), jnp.log(tiny)) / a
    return jnp.exp(log_z), log_z, r, ok


@jax.custom_jvp
def _transform(u: Array, a: Array, b: Array) -> Array:
    return _inverse_cdf_parts(u, a, b)[0]


@_transform.defjvp
def _transform_jvp(primals, tangents):
    # Plain autodiff of the inverse CDF forms (z/a)/(1 − e^{−r}) and then multiplies by r/b, which
    # overflows to ±inf for tiny b although the product is moderate. Written out:
    #   d log z = −(log z)·da/a − ρ·db/(a·b) + ρ·du/(a·(1 − u)·(−log1p(−u))),  ρ = r/(eʳ − 1),
    # every coefficient is finite (ρ ∈ (0, 1], −log1p(−u) ≥ u ≥ tiny), so a zero tangent never
    # meets an infinite coefficient.
    u, a, b = primals
    du, da, db = tangents
    z, log_z, r, ok = _inverse_cdf_parts(u, a, b)
    positive = r > 0
    safe_r = jnp.where(positive, r, 1.0)
    rho = jnp.where(positive, safe_r / jnp.expm1(safe_r), 1.0)
    d_log_z = (-log_z * da - rho * db / b + rho * du / ((1.0 - u) * -jnp.log1p(-u))) / a
    return z, jnp.where(ok, z * d_log_z, 0.0)


def noise(key: Array, shape: tuple[int, ...] = (), dtype=None) -> Array:
    """u ~ Uniform(0, 1), excluding 0, of `shape`; dtype defaults to JAX's default float."""
    key = checks.key(key, "reparam.kumaraswamy.noise")
    shape = checks.sample_shape("reparam.kumaraswamy.noise", shape, "shape")
    return _noise(key, shape, checks.noise_dtype(dtype))


def transform(eps: Array, concentration1, concentration0) -> Array:
    """z = (1 − (1 − ε)^(1/concentration0))^(1/concentration1); shape broadcast(ε, params)."""
    a, b, batch_shape = _params("transform", concentration1, concentration0)
    checks.broadcastable("reparam.kumaraswamy.transform", "eps", jnp.shape(eps), batch_shape)
    return _transform(eps, a, b)


def noise_shape(sample_shape, concentration1, concentration0) -> tuple[int, ...]:
    """The shape of ε that `sample(key, concentration1, concentration0, sample_shape)` draws:
    `sample_shape + B`, the sample's shape
    (for callers that bring their own ε: quasi-Monte-Carlo, common random numbers)."""
    where = "reparam.kumaraswamy.noise_shape"
    _, _, batch_shape = _params("noise_shape", concentration1, concentration0)
    return checks.sample_shape(where, sample_shape) + batch_shape


def sample(key: Array, concentration1, concentration0, sample_shape=()) -> Array:
    """Reparameterized draw of shape `sample_shape + broadcast(params).shape`, in [0, 1]."""
    key = checks.key(key, "reparam.kumaraswamy.sample")
    a, b, batch_shape = _params("sample", concentration1, concentration0)
    shape = checks.sample_shape("reparam.kumaraswamy.sample", sample_shape) + batch_shape
    return _transform(_noise(key, shape, a.dtype), a, b)


def sample_and_log_prob(
    key: Array, concentration1, concentration0, sample_shape=()
) -> tuple[Array, Array]:
    """Draw z and its log-density from u: with log(1 − z^a) = log((1 − u)^(1/b)) = −r,

    log p = log a + log b + (a − 1)·log z − (b − 1)·r, exact even where z saturates at 1.
    """
    key = checks.key(key, "reparam.kumaraswamy.sample_and_log_prob")
    a, b, batch_shape = _params("sample_and_log_prob", concentration1, concentration0)
    where = "reparam.kumaraswamy.sample_and_log_prob"
    shape = checks.sample_shape(where, sample_shape) + batch_shape
    u = _noise(key, shape, a.dtype)
    _, log_z, r, _ = _inverse_cdf_parts(u, a, b)
    log_prob_ = jnp.log(a) + jnp.log(b) + (a - 1.0) * log_z - (b - 1.0) * r
    return _transform(u, a, b), log_prob_


def log_prob(x, concentration1, concentration0) -> Array:
    """log Kumaraswamy(x; a, b); −inf outside [0, 1]. Shape broadcast(x, a, b).

    At x = 0 and x = 1 the density is its limit (+inf, a finite value, or 0), as in scipy.
    """
    a, b, batch_shape = _params("log_prob", concentration1, concentration0)
    checks.broadcastable("reparam.kumaraswamy.log_prob", "x", jnp.shape(x), batch_shape)
    inside = (x > 0) & (x < 1)
    # Off (0, 1) the logarithms see a safe ½, so that no gradient is NaN.
    log_x = jnp.log(jnp.where(inside, x, 0.5))
    interior = jnp.log(a) + jnp.log(b) + (a - 1.0) * log_x + (b - 1.0) * _log1mexp(a * log_x)
    # Limits at the ends: log p ~ (a − 1)·log x near 0 and (b − 1)·log(1 − x) near 1.
    at_zero = jnp.where(a < 1.0, jnp.inf, jnp.where(a > 1.0, -jnp.inf, jnp.log(b)))
    at_one = jnp.where(b < 1.0, jnp.inf, jnp.where(b > 1.0, -jnp.inf, jnp.log(a)))
    edge = jnp.where(x == 0, at_zero, jnp.where(x == 1, at_one, -jnp.inf))
    return jnp.where(inside, interior, edge)


def cdf(x, concentration1, concentration0) -> Array:
    """1 − (1 − x^a)^b = −expm1(b·log(1 − x^a)): accurate in both tails; 0 below 0, 1 above 1."""
    a, b, _ = _params("cdf", concentration1, concentration0)
    inside = (x > 0) & (x < 1)
    log_x = jnp.log(jnp.where(inside, x, 0.5))
    value = -jnp.expm1(b * _log1mexp(a * log_x))
    return jnp.where(inside, value, jnp.where(x <= 0, 0.0, 1.0))


def entropy(concentration1, concentration0) -> Array:
    """(1 − 1/b) + (1 − 1/a)·H_b − log(a·b), with H_b = ψ(b + 1) + γ the harmonic number."""
    a, b, batch_shape = _params("entropy", concentration1, concentration0)
    harmonic = digamma(b + 1.0) + np.euler_gamma
    value = (1.0 - 1.0 / b) + (1.0 - 1.0 / a) * harmonic - jnp.log(a) - jnp.log(b)
    return jnp.broadcast_to(value, batch_shape)


def _raw_moment(n: float, a: Array, b: Array) -> Array:
    """E[z^n] = b · B(1 + n/a, b)."""
    return jnp.exp(jnp.log(b) + betaln(1.0 + n / a, b))


def mean(concentration1, concentration0) -> Array:
    """b · B(1 + 1/a, b), with B the beta function."""
    a, b, batch_shape = _params("mean", concentration1, concentration0)
    return jnp.broadcast_to(_raw_moment(1.0, a, b), batch_shape)


def variance(concentration1, concentration0) -> Array:
    """b · B(1 + 2/a, b) − mean²."""
    a, b, batch_shape = _params("variance", concentration1, concentration0)
    return jnp.broadcast_to(_raw_moment(2.0, a, b) - _raw_moment(1.0, a, b) ** 2, batch_shape)


__all__ = [
    "EVENT_NDIMS",
    "PARAMS",
    "cdf",
    "entropy",
    "log_prob",
    "mean",
    "noise",
    "noise_shape",
    "sample",
    "sample_and_log_prob",
    "transform",
    "variance",
]
