"""HalfStudentT(df, scale): z = |T| with T ~ Student's t(df, 0, scale), density 2·t(z; df, 0, scale)
on z ≥ 0.

The t folded at 0 (TFP: HalfStudentT(df, loc=0, scale); scipy has no such distribution). The
draw is the absolute value of :func:`reparam.student_t.sample` at loc = 0: explicit in the
scale and implicitly reparameterized in df through the gamma draw, with that module's
saturation of draws beyond the float range (never ±inf or NaN). There is no parameter-free ε
(the gamma's law depends on df), so this module defines no `noise`/`transform`.

Moments: the mean is infinite for df ≤ 1 and the variance for df ≤ 2.

Shapes: parameters broadcast to a batch shape B; samples have shape `sample_shape + B`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import betainc, betaln, digamma, gammaln

from reparam import checks
from reparam.families import student_t

Array = jax.Array

PARAMS = ("df", "scale")
EVENT_NDIMS = 0


def _params(where: str, df, scale) -> tuple[Array, Array, tuple[int, ...]]:
    name = f"reparam.half_student_t.{where}"
    (df, scale), batch_shape = checks.broadcast(name, df=df, scale=scale)
    checks.positive(name, "df", df)
    checks.positive(name, "scale", scale)
    return df, scale, batch_shape


def sample(key: Array, df, scale, sample_shape=()) -> Array:
    """Reparameterized draw of shape `sample_shape + broadcast(df, scale).shape`, ≥ 0."""
    where = "reparam.half_student_t.sample"
    key = checks.key(key, where)
    df, scale, _ = _params("sample", df, scale)
    sample_shape = checks.sample_shape(where, sample_shape)
    return jnp.abs(student_t.sample(key, df, jnp.zeros_like(df), scale, sample_shape))


def sample_and_log_prob(key: Array, df, scale, sample_shape=()) -> tuple[Array, Array]:
    """Draw z (the same bits as `sample` with this key) and log p(z) = log 2 + log t(z), the
    latter from the draw as in :func:`reparam.student_t.sample_and_log_prob`."""
    where = "reparam.half_student_t.sample_and_log_prob"
    key = checks.key(key, where)
    df, scale, _ = _params("sample_and_log_prob", df, scale)
    sample_shape = checks.sample_shape(where, sample_shape)
    t, log_t = student_t.sample_and_log_prob(key, df, jnp.zeros_like(df), scale, sample_shape)
    return jnp.abs(t), log_t + math.log(2.0)


def log_prob(x, df, scale) -> Array:
    """log 2 + log t(x; df, 0, scale) for x ≥ 0, −inf for x < 0; shape broadcast(x, df, scale)."""
    df, scale, batch_shape = _params("log_prob", df, scale)
    checks.broadcastable("reparam.half_student_t.log_prob", "x", jnp.shape(x), batch_shape)
    x = jnp.asarray(x, df.dtype)
    value = math.log(2.0) + student_t.log_prob(x, df, jnp.zeros_like(df), scale)
    return jnp.where(x >= 0, value, -jnp.inf)


def cdf(x, df, scale) -> Array:
    """P(z ≤ x) = 1 − I_{df/(df + t²)}(df/2, ½) for t = x/scale ≥ 0 (twice the t's mass in
    [0, x]); 0 for x < 0."""
    df, scale, _ = _params("cdf", df, scale)
    t = jnp.maximum(jnp.asarray(x, df.dtype), 0.0) / scale
    # df/(df + t²) rather than 1/(1 + t²/df): 0, not inf/inf, when t² overflows.
    return 1.0 - betainc(df / 2, 0.5, df / (df + t**2))


def entropy(df, scale) -> Array:
    """The t's entropy minus log 2: (df+1)/2·(ψ((df+1)/2) − ψ(df/2)) + ½ log df + log B(df/2, ½)
    + log scale − log 2."""
    df, scale, batch_shape = _params("entropy", df, scale)
    value = (
        (df + 1) / 2 * (digamma((df + 1) / 2) - digamma(df / 2))
        + 0.5 * jnp.log(df)
        + betaln(df / 2, 0.5)
        + jnp.log(scale)
        - math.log(2.0)
    )
    return jnp.broadcast_to(value, batch_shape)


def _standard_mean(df: Array) -> Array:
    """E|T| for T ~ t(df), df > 1: 2·√(df/π)·Γ((df+1)/2) / (Γ(df/2)·(df − 1))."""
    return (
        2.0 * jnp.sqrt(df / math.pi) * jnp.exp(gammaln((df + 1) / 2) - gammaln(df / 2)) / (df - 1.0)
    )


def mean(df, scale) -> Array:
    """scale·E|T| for df > 1, +inf otherwise."""
    df, scale, batch_shape = _params("mean", df, scale)
    # The formula at a safe df where it is not used, so that its gradient stays finite.
    safe = jnp.where(df > 1.0, df, 2.0)
    value = jnp.where(df > 1.0, scale * _standard_mean(safe), jnp.inf)
    return jnp.broadcast_to(value, batch_shape)


def variance(df, scale) -> Array:
    """scale²·(df/(df − 2) − (E|T|)²) for df > 2, +inf otherwise."""
    df, scale, batch_shape = _params("variance", df, scale)
    safe = jnp.where(df > 2.0, df, 3.0)
    value = jnp.where(
        df > 2.0, scale**2 * (safe / (safe - 2.0) - _standard_mean(safe) ** 2), jnp.inf
    )
    return jnp.broadcast_to(value, batch_shape)


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
