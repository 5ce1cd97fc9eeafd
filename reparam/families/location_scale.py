"""Location-scale families z = loc + scale · ε: the shared implementation of their contract.

Normal, Laplace, logistic, Gumbel and Cauchy differ only in the law of the standard noise ε (and
half_normal, half_cauchy are the same with loc fixed at 0). Each
of those modules states that law as a `Law` (its name, how to draw ε, log p(ε)) and defines its
contract functions (`noise`, `transform`, `sample`, `sample_and_log_prob`, `log_prob`,
`noise_shape`) explicitly, each a one-line call into the helpers below, so the arithmetic and the
argument checks live here once; what is particular to the law (cdf, entropy, moments) stays in
the module.

Shapes: parameters broadcast to a batch shape B; samples and ε have shape `sample_shape + B`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from reparam import checks

Array = jax.Array


class Law(NamedTuple):
    """The standard noise of one location-scale family.

    name: the module's short name, for error messages ("reparam.<name>.<function>").
    draw: (key, shape, dtype) -> standard noise ε; must be finite for every draw.
    standard_log_prob: ε (any shape) -> log p(ε), elementwise.
    """

    name: str
    draw: Callable[[Array, tuple[int, ...], jnp.dtype], Array]
    standard_log_prob: Callable[[Array], Array]


def _where(law: Law, function: str) -> str:
    return f"reparam.{law.name}.{function}"


def params(law: Law, function: str, loc, scale) -> tuple[Array, Array, tuple[int, ...]]:
    """(loc, scale, batch shape), broadcast to one float dtype, with scale > 0 checked."""
    where = _where(law, function)
    (loc, scale), batch_shape = checks.broadcast(where, loc=loc, scale=scale)
    checks.positive(where, "scale", scale)
    return loc, scale, batch_shape


def noise(key: Array, law: Law, shape, dtype) -> Array:
    """Standard noise ε of `shape`; dtype defaults to JAX's default float."""
    where = _where(law, "noise")
    key = checks.key(key, where)
    return law.draw(key, checks.sample_shape(where, shape, "shape"), checks.noise_dtype(dtype))


def transform(law: Law, eps, loc, scale) -> Array:
    """z = loc + scale · ε, with ε's shape checked against the parameters' batch shape."""
    loc, scale, batch_shape = params(law, "transform", loc, scale)
    checks.broadcastable(_where(law, "transform"), "eps", jnp.shape(eps), batch_shape)
    return loc + scale * eps


def noise_shape(law: Law, sample_shape, loc, scale) -> tuple[int, ...]:
    """`sample_shape + B`, the shape of the ε that `sample` draws."""
    _, _, batch_shape = params(law, "noise_shape", loc, scale)
    return checks.sample_shape(_where(law, "noise_shape"), sample_shape) + batch_shape


def sample(key: Array, law: Law, loc, scale, sample_shape) -> Array:
    """loc + scale · ε with ε drawn at the parameters' dtype, shape `sample_shape + B`."""
    where = _where(law, "sample")
    key = checks.key(key, where)
    loc, scale, batch_shape = params(law, "sample", loc, scale)
    shape = checks.sample_shape(where, sample_shape) + batch_shape
    return loc + scale * law.draw(key, shape, loc.dtype)


def sample_and_log_prob(key: Array, law: Law, loc, scale, sample_shape) -> tuple[Array, Array]:
    """The draw of `sample` and its log-density from ε (no subtraction of loc, no division)."""
    where = _where(law, "sample_and_log_prob")
    key = checks.key(key, where)
    loc, scale, batch_shape = params(law, "sample_and_log_prob", loc, scale)
    eps = law.draw(key, checks.sample_shape(where, sample_shape) + batch_shape, loc.dtype)
    return loc + scale * eps, law.standard_log_prob(eps) - jnp.log(scale)


def log_prob(law: Law, x, loc, scale) -> Array:
    """log p_ε((x − loc)/scale) − log(scale), with x's shape checked."""
    loc, scale, batch_shape = params(law, "log_prob", loc, scale)
    checks.broadcastable(_where(law, "log_prob"), "x", jnp.shape(x), batch_shape)
    return law.standard_log_prob((x - loc) / scale) - jnp.log(scale)


__all__ = [
    "Law",
    "log_prob",
    "noise",
    "noise_shape",
    "params",
    "sample",
    "sample_and_log_prob",
    "transform",
]
