"""Location-scale families z = loc + scale · ε: the family contract written once.

Normal, Laplace, logistic, Gumbel and Cauchy differ only in the law of the standard noise ε.
Each of those modules states that law (how to draw ε, log p(ε)) and gets `noise`, `transform`,
`sample`, `sample_and_log_prob` and `log_prob` from `contract`; what is particular to the law
(cdf, entropy, moments) stays in the module.

Shapes: parameters broadcast to a batch shape B; samples have shape `sample_shape + B`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from reparam import checks

Array = jax.Array


class Contract(NamedTuple):
    """The checked parameter reader and the five contract functions of one family."""

    params: Callable[..., tuple[Array, Array, tuple[int, ...]]]
    noise: Callable[..., Array]
    transform: Callable[..., Array]
    sample: Callable[..., Array]
    sample_and_log_prob: Callable[..., tuple[Array, Array]]
    log_prob: Callable[..., Array]


def contract(
    name: str,
    draw: Callable[[Array, tuple[int, ...], jnp.dtype], Array],
    standard_log_prob: Callable[[Array], Array],
) -> Contract:
    """The contract functions of the family `reparam.<name>` with ε ~ `draw`.

    Args:
      name: the module's name, used in error messages ("reparam.<name>.<function>").
      draw: (key, shape, dtype) -> standard noise ε; must be finite for every draw.
      standard_log_prob: ε (any shape) -> log p(ε), elementwise.

    Returns:
      `Contract(params, noise, transform, sample, sample_and_log_prob, log_prob)`, where
      `params(where, loc, scale)` broadcasts and checks (scale > 0) the parameters and returns
      (loc, scale, batch_shape).
    """
    prefix = f"reparam.{name}"

    def params(where: str, loc, scale) -> tuple[Array, Array, tuple[int, ...]]:
        (loc, scale), batch_shape = checks.broadcast(f"{prefix}.{where}", loc=loc, scale=scale)
        checks.positive(f"{prefix}.{where}", "scale", scale)
        return loc, scale, batch_shape

    def noise(key: Array, shape: tuple[int, ...] = (), dtype=None) -> Array:
        """Standard noise ε of `shape`; dtype defaults to JAX's default float (float32 w/o x64)."""
        key = checks.key(key, f"{prefix}.noise")
        return draw(key, shape, checks.noise_dtype(dtype))

    def transform(eps: Array, loc, scale) -> Array:
        """z = loc + scale · ε; shape broadcast(ε, loc, scale)."""
        loc, scale, _ = params("transform", loc, scale)
        return loc + scale * eps

    def sample(key: Array, loc, scale, sample_shape=()) -> Array:
        """Reparameterized draw of shape `sample_shape + broadcast(loc, scale).shape`."""
        key = checks.key(key, f"{prefix}.sample")
        loc, scale, batch_shape = params("sample", loc, scale)
        shape = checks.sample_shape(f"{prefix}.sample", sample_shape) + batch_shape
        return loc + scale * draw(key, shape, loc.dtype)

    def sample_and_log_prob(key: Array, loc, scale, sample_shape=()) -> tuple[Array, Array]:
        """Draw z and its log-density, computed from ε (no subtraction of loc, no division)."""
        where = f"{prefix}.sample_and_log_prob"
        key = checks.key(key, where)
        loc, scale, batch_shape = params("sample_and_log_prob", loc, scale)
        eps = draw(key, checks.sample_shape(where, sample_shape) + batch_shape, loc.dtype)
        return loc + scale * eps, standard_log_prob(eps) - jnp.log(scale)

    def log_prob(x, loc, scale) -> Array:
        """log p(x) = log p_ε((x − loc)/scale) − log(scale); shape broadcast(x, loc, scale)."""
        loc, scale, _ = params("log_prob", loc, scale)
        return standard_log_prob((x - loc) / scale) - jnp.log(scale)

    functions = Contract(params, noise, transform, sample, sample_and_log_prob, log_prob)
    for function in functions:
        # Tracebacks and help() name the family's module, where users call these from.
        function.__module__ = prefix
        function.__qualname__ = function.__name__
    return functions
