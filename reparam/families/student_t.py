"""Student's t(df, loc, scale): z = loc + scale · ε · sqrt(df / χ²), ε ~ N(0, 1), χ² ~ χ²(df).

Sampling: with G ~ Gamma(df/2, 1) (so χ² = 2G), z = loc + scale · ε · exp(½(log(df/2) − log G)),
where log G comes from :func:`reparam.gamma.log_sample`. The map is explicit in loc and scale and
implicitly reparameterized in df through the gamma draw (as in TFP): a valid pathwise gradient,
but one with no parameter-free ε (G's law depends on df), so this module defines no
`noise`/`transform`; `sample(key, df, loc, scale, sample_shape=())` is the entry point, and
`sample_and_log_prob` returns the density from the same draw.

Saturation: at tiny df the distribution's tails pass the float range (for df = 1e-4 about 93% of
draws exceed 1e308 in magnitude). Draws whose |z − loc|, or whose gradient with respect to scale
or df, would come within a factor 2^24 of the dtype's largest finite value are clamped to
z = loc ± finfo(dtype).max · 2^−24 (sums of up to 2^24 of them stay finite), with gradient 1 with
respect to loc and 0 with respect to df and scale, instead of returning ±inf and NaN gradients.
For df ≥ 1 and scale ≤ 1e6 such draws have probability < 1e-20, even in float32.

Shapes: parameters broadcast to a batch shape B; samples have shape `sample_shape + B`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import betainc, betaln, digamma, gammaln

from reparam import checks
from reparam.families.gamma import log_sample

Array = jax.Array

PARAMS = ("df", "loc", "scale")
EVENT_NDIMS = 0

_HEADROOM_BITS = 24


def _params(where: str, df, loc, scale) -> tuple[Array, Array, Array, tuple[int, ...]]:
    where = f"reparam.student_t.{where}"
    (df, loc, scale), batch_shape = checks.broadcast(where, df=df, loc=loc, scale=scale)
    checks.positive(where, "df", df)
    checks.positive(where, "scale", scale)
    return df, loc, scale, batch_shape


def _draw(key: Array, df: Array, loc: Array, scale: Array, shape: tuple[int, ...]):
    """(z, ε, log G, saturated) for one draw of `shape` (see the module docstring)."""
    key_normal, key_gamma = jax.random.split(key)
    eps = jax.random.normal(key_normal, shape, df.dtype)
    log_g = log_sample(key_gamma, df / 2, shape)
    log_width = 0.5 * (jnp.log(df / 2) - log_g)  # log sqrt(df / χ²)

    # Saturate where |z − loc| = scale·|ε|·e^w, |∂z/∂scale| = |ε|·e^w or |∂z/∂df| would overflow.
    # |∂w/∂df| ≤ (2 + |log G|)/df is a crude but safe bound (from d log G/da ≈ (ψ(a+1) − log G)/a
    # at small a, where saturation can happen at all); the mask itself carries no gradient.
    limit = np.finfo(df.dtype).max * 2.0**-_HEADROOM_BITS
    log_magnitude = jax.lax.stop_gradient(
        jnp.log(jnp.abs(eps))
        + log_width
        + jnp.maximum(jnp.log(scale), 0)
        + jnp.log1p((2 + jnp.abs(log_g)) / df)
    )
    saturated = log_magnitude > math.log(limit)
    # Double `where`: the unselected branch must stay finite, or its zero cotangent times an
    # infinite partial derivative would still give NaN gradients.
    safe_width = jnp.where(saturated, jnp.zeros_like(log_width), log_width)
    unsaturated = loc + scale * eps * jnp.exp(safe_width)
    return jnp.where(saturated, loc + jnp.sign(eps) * limit, unsaturated), eps, log_g, saturated


def _log_density(y2_over_df: Array, df: Array, scale: Array) -> Array:
    """log t at a point whose standardized square over df, ((x − loc)/scale)²/df, is given."""
    return (
        gammaln((df + 1) / 2)
        - gammaln(df / 2)
        - 0.5 * jnp.log(df * math.pi)
        - jnp.log(scale)
        - (df + 1) / 2 * jnp.log1p(y2_over_df)
    )


def sample(key: Array, df, loc, scale, sample_shape=()) -> Array:
    """Reparameterized draw of shape `sample_shape + broadcast(df, loc, scale).shape`.

    Draws beyond the float range saturate (see the module docstring); never ±inf or NaN.
    """
    where = "reparam.student_t.sample"
    key = checks.key(key, where)
    df, loc, scale, batch_shape = _params("sample", df, loc, scale)
    shape = checks.sample_shape(where, sample_shape) + batch_shape
    return _draw(key, df, loc, scale, shape)[0]


def sample_and_log_prob(key: Array, df, loc, scale, sample_shape=()) -> tuple[Array, Array]:
    """Draw z (the same bits as `sample` with this key) and log p(z), the latter from the draw:
    ((z − loc)/scale)²/df = ε²/(2G), with no subtraction of loc and no division by scale (as
    distrax reuses ε). Saturated draws get the density at their clamped value."""
    where = "reparam.student_t.sample_and_log_prob"
    key = checks.key(key, where)
    df, loc, scale, batch_shape = _params("sample_and_log_prob", df, loc, scale)
    shape = checks.sample_shape(where, sample_shape) + batch_shape
    z, eps, log_g, saturated = _draw(key, df, loc, scale, shape)
    safe_log_g = jnp.where(saturated, jnp.zeros_like(log_g), log_g)
    from_draw = 0.5 * eps**2 * jnp.exp(-safe_log_g)
    from_value = ((z - loc) / scale) ** 2 / df
    return z, _log_density(jnp.where(saturated, from_value, from_draw), df, scale)


def log_prob(x, df, loc, scale) -> Array:
    """log t(x; df, loc, scale), shape broadcast(x, df, loc, scale)."""
    df, loc, scale, batch_shape = _params("log_prob", df, loc, scale)
    checks.broadcastable("reparam.student_t.log_prob", "x", jnp.shape(x), batch_shape)
    y = (jnp.asarray(x, df.dtype) - loc) / scale
    return _log_density(y**2 / df, df, scale)


def cdf(x, df, loc, scale) -> Array:
    """P(z ≤ x) through the regularized incomplete beta function."""
    df, loc, scale, _ = _params("cdf", df, loc, scale)
    t = (jnp.asarray(x, df.dtype) - loc) / scale
    # ½·I_{df/(df+t²)}(df/2, ½) is the tail beyond |t|; written as df/(df + t²) it is 0, not
    # inf/inf, when t² overflows.
    tail = 0.5 * betainc(df / 2, 0.5, df / (df + t**2))
    return jnp.where(t < 0, tail, 1 - tail)


def entropy(df, loc, scale) -> Array:
    df, loc, scale, batch_shape = _params("entropy", df, loc, scale)
    value = (
        (df + 1) / 2 * (digamma((df + 1) / 2) - digamma(df / 2))
        + 0.5 * jnp.log(df)
        + betaln(df / 2, 0.5)
        + jnp.log(scale)
    )
    return jnp.broadcast_to(value, batch_shape)


def mean(df, loc, scale) -> Array:
    """loc for df > 1; NaN (undefined) otherwise, as TFP (scipy returns inf)."""
    df, loc, scale, batch_shape = _params("mean", df, loc, scale)
    return jnp.broadcast_to(jnp.where(df > 1, loc, jnp.nan), batch_shape)


def variance(df, loc, scale) -> Array:
    """scale²·df/(df − 2) for df > 2; inf for 1 < df ≤ 2; NaN for df ≤ 1, as scipy."""
    df, loc, scale, batch_shape = _params("variance", df, loc, scale)
    # Evaluate the formula at a safe df where it is not used, so its gradient stays finite.
    safe_df = jnp.where(df > 2, df, 3)
    value = jnp.where(
        df > 2, scale**2 * safe_df / (safe_df - 2), jnp.where(df > 1, jnp.inf, jnp.nan)
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
