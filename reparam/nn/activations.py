"""The activation functions the modules accept by name (`activation="tanh"`), in one table."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from reparam import checks

Array = jax.Array

ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "softplus": jax.nn.softplus,
    "elu": jax.nn.elu,
    "gelu": jax.nn.gelu,
}


def activation(name: str, where: str = "reparam.nn") -> Callable[[Array], Array]:
    """The activation called `name`; a ValueError from `where` listing the names otherwise."""
    return ACTIVATIONS[checks.choice(where, "activation", name, tuple(ACTIVATIONS))]


__all__ = ["ACTIVATIONS", "activation"]
