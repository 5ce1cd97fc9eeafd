"""Linear algebra shared by the multivariate families and their KL divergences (private)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax
from jax.scipy.linalg import solve_triangular

Array = jax.Array

# float32 matmuls may run in reduced precision (TF32/bf16 passes) on accelerators; samples and
# densities are checked against closed forms, so ask for full precision.
PRECISION = lax.Precision.HIGHEST


def matvec(matrix: Array, vector: Array) -> Array:
    """matrix @ vector over broadcast batch axes: (..., m, n), (..., n) -> (..., m)."""
    return jnp.matmul(matrix, vector[..., None], precision=PRECISION)[..., 0]


def solve_lower(tril: Array, rhs: Array) -> Array:
    """L⁻¹ b for lower-triangular L (..., n, n) and b (..., n); shape broadcast(...) + (n,).

    `lax.linalg.triangular_solve` needs equal batch axes, and broadcasting L to every sample would
    copy it sample_shape times. Instead the leading axes that only b has (typically the sample
    axes) are moved into the columns of one right-hand side, so L is read once per batch element.
    """
    n = tril.shape[-1]
    batch = jnp.broadcast_shapes(tril.shape[:-2], rhs.shape[:-1])
    outer, inner = batch[: len(batch) - (tril.ndim - 2)], batch[len(batch) - (tril.ndim - 2) :]
    tril = jnp.broadcast_to(tril, (*inner, n, n))
    columns = math.prod(outer)
    rhs = jnp.broadcast_to(rhs, (*batch, n)).reshape((columns, *inner, n))
    rhs = jnp.moveaxis(rhs, 0, -1)  # inner + (n, columns)
    solution = lax.linalg.triangular_solve(tril, rhs, left_side=True, lower=True)
    return jnp.moveaxis(solution, -1, 0).reshape((*batch, n))


def solve_lower_matrix(tril: Array, rhs: Array) -> Array:
    """L⁻¹ B for lower-triangular L (..., n, n) and a matrix B (..., n, m), batch axes broadcast
    (the solver wants them equal)."""
    batch = jnp.broadcast_shapes(tril.shape[:-2], rhs.shape[:-2])
    tril = jnp.broadcast_to(tril, batch + tril.shape[-2:])
    rhs = jnp.broadcast_to(rhs, batch + rhs.shape[-2:])
    return solve_triangular(tril, rhs, lower=True)
