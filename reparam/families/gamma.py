"""Gamma(concentration, rate): density rate^a z^(a−1) e^(−rate·z) / Γ(a) on z > 0.

Sampling: z = exp(log G − log rate) with G ~ Gamma(concentration, 1). There is no
parameter-free ε with an explicit, differentiable map to z (the gamma inverse CDF has no closed
form), so this module defines no `noise`/`transform`: `sample(key, concentration, rate,
sample_shape=())` is the entry point, and gradients with respect to the concentration come from
implicit reparameterization (Figurnov et al., 2018), dz/da = −(∂F/∂a)(a, z) / p(z; a), through
`jax.custom_jvp` on the log-gamma draw (:func:`log_sample`), never from finite differences.

Why our own JVP instead of `jax.random.loggamma`'s: when the gamma sample underflows the float
type (it starts to happen at concentration ≲ 0.1 in float32, ≲ 0.01 in float64), jax evaluates
its gradient at the smallest normal float instead of at the sample, so d log z/da saturates at one
wrong constant (in float32 at a = 0.01: 8677.6 for every such draw, while the true value
(ψ(a + 1) − log z)/a grows without bound as log z decreases). We differentiate in log
space: where z is a normal float we use jax's own `lax.random_gamma_grad(a, z) / z`, which is
correct there; where it is not, the small-z expansion F(z; a) = z^a / Γ(a + 1) · (1 + O(z)) gives

    d log z / da = −(∂F/∂a) / (z p(z)) = (ψ(a + 1) − log z) / a · (1 + O(z)),

since z p(z) = z^a e^(−z) / Γ(a) = a F (1 + O(z)) and ∂ log F/∂a = log z − ψ(a + 1) + O(z).

Shapes: parameters broadcast to a batch shape B; samples have shape `sample_shape + B`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import digamma, gammainc, gammaln, xlogy

from reparam import checks
from reparam.families._chunks import in_chunks
from reparam.families._gamma_sampler import log_gamma

Array = jax.Array

PARAMS = ("concentration", "rate")
EVENT_NDIMS = 0

# Below log(tiny) + _UNDERFLOW_MARGIN the asymptotic formula is used. At that point z ≤ e^8·tiny
# (≈ 3e-35 in float32), so its O(z) relative error is far below the float's resolution, and the
# margin keeps `lax.random_gamma_grad` away from subnormal inputs, which the CPU flushes to zero.
_UNDERFLOW_MARGIN = 8.0


def _d_log_z_d_concentration(concentration: Array, log_z: Array) -> Array:
    """d log z / da for z = G ~ Gamma(a, 1) held at fixed CDF; elementwise, shape of `log_z`."""
    tiny = np.finfo(log_z.dtype).tiny
    underflows = log_z < np.log(tiny) + _UNDERFLOW_MARGIN
    # Evaluate jax's rule only where z is a normal float; elsewhere feed it a harmless z = 1 so
    # that the unused branch of `where` cannot produce NaN (which would leak into gradients).
    z = jnp.exp(jnp.where(underflows, jnp.zeros_like(log_z), log_z))
    # In chunks (same values): its series and continued fraction are `while` loops that run until
    # the slowest element of the array has converged (reparam/families/_chunks.py).
    exact = in_chunks(jax.lax.random_gamma_grad, concentration, z) / z
    asymptotic = (digamma(concentration + 1) - log_z) / concentration
    return jnp.where(underflows, asymptotic, exact)


@jax.custom_jvp
def _implicit_log_gamma(concentration: Array, log_z: Array) -> Array:
    """Returns `log_z` (drawn with stop_gradient(concentration)); its JVP is the implicit one."""
    return log_z


@_implicit_log_gamma.defjvp
def _implicit_log_gamma_jvp(primals, tangents):
    concentration, log_z = primals
    concentration_dot, _ = tangents  # log_z is drawn under stop_gradient: no tangent of its own
    return log_z, _d_log_z_d_concentration(concentration, log_z) * concentration_dot


def _log_gamma(key: Array, concentration: Array, shape: tuple[int, ...]) -> Array:
    """Unchecked core of :func:`log_sample`: log G of `shape`, concentration broadcast to it."""
    concentration = jnp.broadcast_to(concentration, shape)
    # Our own XLA-friendly sampler (reparam/families/_gamma_sampler.py): jax.random.loggamma runs a
    # sequential per-element loop on CPU. stop_gradient: the draw carries no gradient of its own;
    # the implicit JVP below supplies it.
    log_z = log_gamma(key, jax.lax.stop_gradient(concentration))
    return _implicit_log_gamma(concentration, log_z)


def log_sample(key: Array, concentration, shape=None) -> Array:
    """log G with G ~ Gamma(concentration, 1), implicitly reparameterized in `concentration`.

    Drawn in log space (stable where G underflows: log G is finite for every concentration > 0).
    Shared by the beta, dirichlet and student_t families.

    Args:
      key: a PRNG key.
      concentration: positive, any shape C.
      shape: output shape; C must broadcast to it (defaults to C).

    Returns:
      log G of `shape`, in the concentration's float dtype.
    """
    where = "reparam.gamma.log_sample"
    key = checks.key(key, where)
    (concentration,), batch_shape = checks.broadcast(where, concentration=concentration)
    checks.positive(where, "concentration", concentration)
    shape = batch_shape if shape is None else checks.sample_shape(where, shape)
    try:
        fits = np.broadcast_shapes(shape, batch_shape) == shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(
            f"{where}: `concentration` of shape {batch_shape} does not broadcast to `shape` {shape}"
        )
    return _log_gamma(key, concentration, shape)


def _params(where: str, concentration, rate) -> tuple[Array, Array, tuple[int, ...]]:
    where = f"reparam.gamma.{where}"
    (concentration, rate), batch_shape = checks.broadcast(
        where, concentration=concentration, rate=rate
    )
    checks.positive(where, "concentration", concentration)
    checks.positive(where, "rate", rate)
    return concentration, rate, batch_shape


def sample(key: Array, concentration, rate, sample_shape=()) -> Array:
    """Reparameterized draw of shape `sample_shape + broadcast(concentration, rate).shape`.

    May be exactly 0 where the draw underflows the dtype; its gradients stay finite there.
    """
    key = checks.key(key, "reparam.gamma.sample")
    concentration, rate, batch_shape = _params("sample", concentration, rate)
    shape = checks.sample_shape("reparam.gamma.sample", sample_shape) + batch_shape
    return jnp.exp(_log_gamma(key, concentration, shape) - jnp.log(rate))


def sample_and_log_prob(key: Array, concentration, rate, sample_shape=()) -> tuple[Array, Array]:
    """Draw z and log p(z), the latter from log z (exact even where z underflows to 0)."""
    key = checks.key(key, "reparam.gamma.sample_and_log_prob")
    concentration, rate, batch_shape = _params("sample_and_log_prob", concentration, rate)
    shape = checks.sample_shape("reparam.gamma.sample_and_log_prob", sample_shape) + batch_shape
    log_z = _log_gamma(key, concentration, shape) - jnp.log(rate)
    z = jnp.exp(log_z)
    return z, concentration * jnp.log(rate) + (concentration - 1) * log_z - rate * z - gammaln(
        concentration
    )


def log_prob(x, concentration, rate) -> Array:
    """log Gamma(x; concentration, rate), shape broadcast(x, concentration, rate); −inf if x < 0."""
    concentration, rate, batch_shape = _params("log_prob", concentration, rate)
    checks.broadcastable("reparam.gamma.log_prob", "x", jnp.shape(x), batch_shape)
    x = jnp.asarray(x, concentration.dtype)
    # xlogy: (a − 1)·log 0 is 0 at a = 1, where the density at 0 is `rate`, not NaN.
    value = (
        concentration * jnp.log(rate)
        + xlogy(concentration - 1, x)
        - rate * x
        - gammaln(concentration)
    )
    return jnp.where(x < 0, -jnp.inf, value)


def cdf(x, concentration, rate) -> Array:
    """P(z ≤ x) = P(a, rate·x), the regularized lower incomplete gamma function."""
    concentration, rate, _ = _params("cdf", concentration, rate)
    x = jnp.asarray(x, concentration.dtype)
    return gammainc(concentration, rate * jnp.maximum(x, 0))


def entropy(concentration, rate) -> Array:
    concentration, rate, batch_shape = _params("entropy", concentration, rate)
    value = (
        concentration
        - jnp.log(rate)
        + gammaln(concentration)
        + (1 - concentration) * digamma(concentration)
    )
    return jnp.broadcast_to(value, batch_shape)


def mean(concentration, rate) -> Array:
    concentration, rate, batch_shape = _params("mean", concentration, rate)
    return jnp.broadcast_to(concentration / rate, batch_shape)


def variance(concentration, rate) -> Array:
    concentration, rate, batch_shape = _params("variance", concentration, rate)
    return jnp.broadcast_to(concentration / rate**2, batch_shape)


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
