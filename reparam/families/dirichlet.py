"""Dirichlet(concentration) on the simplex; one event axis, the last, of size K.

Sampling: z = G / ΣG with independent G_k ~ Gamma(concentration_k), computed as
log z = log_softmax(log G) from the log-gamma draws (:func:`reparam.gamma.log_sample`): at tiny
concentrations every G_k underflows to 0 even in float64, and the ratio G / ΣG would be 0/0, while
log-softmax of the (finite) log G stays exact. There is no parameter-free ε with an explicit map
to z, so there is no `noise`/`transform`: `sample(key, concentration, sample_shape=())` is the
entry point, and gradients are the implicit reparameterization gradients of the gammas carried
through the softmax by ordinary autodiff.

Shapes: `concentration` has shape B + (K,); samples have shape `sample_shape + B + (K,)`;
`log_prob` has shape `sample_shape + B`; mean and variance B + (K,); entropy B.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import digamma, gammaln, xlogy

from reparam import checks
from reparam.families.gamma import log_sample

Array = jax.Array

PARAMS = ("concentration",)
EVENT_NDIMS = 1
PARAM_EVENT_NDIMS = {"concentration": 1}


def _params(where: str, concentration) -> tuple[Array, tuple[int, ...]]:
    where = f"reparam.dirichlet.{where}"
    (concentration,), batch_shape = checks.broadcast(
        where, event_ndims=PARAM_EVENT_NDIMS, concentration=concentration
    )
    checks.positive(where, "concentration", concentration)
    return concentration, batch_shape


def _log_sample(key: Array, concentration: Array, sample_shape) -> Array:
    shape = sample_shape + concentration.shape
    return jax.nn.log_softmax(log_sample(key, concentration, shape), axis=-1)


def sample(key: Array, concentration, sample_shape=()) -> Array:
    """Reparameterized draw of shape `sample_shape + concentration.shape`.

    Components may round to exactly 0 at tiny concentrations; gradients stay finite there.
    """
    key = checks.key(key, "reparam.dirichlet.sample")
    concentration, _ = _params("sample", concentration)
    sample_shape = checks.sample_shape("reparam.dirichlet.sample", sample_shape)
    return jnp.exp(_log_sample(key, concentration, sample_shape))


def sample_and_log_prob(key: Array, concentration, sample_shape=()) -> tuple[Array, Array]:
    """Draw z and log p(z), the latter from log z (exact where components round to 0)."""
    where = "reparam.dirichlet.sample_and_log_prob"
    key = checks.key(key, where)
    concentration, _ = _params("sample_and_log_prob", concentration)
    log_z = _log_sample(key, concentration, checks.sample_shape(where, sample_shape))
    log_p = jnp.sum((concentration - 1) * log_z, axis=-1) - _log_normalizer(concentration)
    return jnp.exp(log_z), log_p


def _log_normalizer(concentration: Array) -> Array:
    """log B(α) = Σ log Γ(α_k) − log Γ(Σα_k); shape B."""
    return jnp.sum(gammaln(concentration), axis=-1) - gammaln(jnp.sum(concentration, axis=-1))


def log_prob(x, concentration) -> Array:
    """log Dirichlet(x; α), shape broadcast(x.shape[:-1], B); x's last axis must have size K.

    Does not check that x lies on the simplex (that is a property of the data, and a traced x
    cannot be checked without `checks.checked`).
    """
    where = "reparam.dirichlet.log_prob"
    concentration, batch_shape = _params("log_prob", concentration)
    checks.broadcastable(
        "reparam.dirichlet.log_prob", "x", jnp.shape(x), batch_shape, concentration.shape[-1:]
    )
    x = jnp.asarray(x, concentration.dtype)
    if x.ndim < 1:
        raise ValueError(
            f"{where}: `x` must have an event axis of size "
            f"{concentration.shape[-1]}, got shape {x.shape}"
        )
    checks.event_size(where, "x", x, concentration.shape[-1])
    # xlogy: (α − 1)·log 0 is 0 at α = 1 (a face of the simplex where the density is finite).
    return jnp.sum(xlogy(concentration - 1, x), axis=-1) - _log_normalizer(concentration)


def entropy(concentration) -> Array:
    concentration, batch_shape = _params("entropy", concentration)
    total = jnp.sum(concentration, axis=-1)
    k = concentration.shape[-1]
    value = (
        _log_normalizer(concentration)
        + (total - k) * digamma(total)
        - jnp.sum((concentration - 1) * digamma(concentration), axis=-1)
    )
    return jnp.broadcast_to(value, batch_shape)


def mean(concentration) -> Array:
    concentration, _ = _params("mean", concentration)
    return concentration / jnp.sum(concentration, axis=-1, keepdims=True)


def variance(concentration) -> Array:
    concentration, _ = _params("variance", concentration)
    total = jnp.sum(concentration, axis=-1, keepdims=True)
    return concentration * (total - concentration) / (total**2 * (total + 1))


__all__ = [
    "EVENT_NDIMS",
    "PARAMS",
    "PARAM_EVENT_NDIMS",
    "entropy",
    "log_prob",
    "mean",
    "sample",
    "sample_and_log_prob",
    "variance",
]
