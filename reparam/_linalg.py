"""Linear algebra shared by the multivariate families and their KL divergences (private)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

Array = jax.Array

# float32 matmuls may run in reduced precision (TF32/bf16 passes) on accelerators; samples and
# densities are checked against closed forms, so ask for full precision.
PRECISION = lax.Precision.HIGHEST


def matvec(matrix: Array, vector: Array) -> Array:
    """matrix @ vector over broadcast batch axes: (..., m, n), (..., n) -> (..., m)."""
    return jnp.matmul(matrix, vector[..., None], precision=PRECISION)[..., 0]


# Systems up to this size are solved by substitution in plain XLA operations, not by LAPACK's
# trsm. Why: on CPU, jaxlib 0.10's batched LAPACK kernels split the batch over the intra-op
# thread pool (`ParallelBatchMap`) and block a pool thread until the pieces finish. Two such
# solves running at once on a 2-thread pool (a 2-core machine) each hold one thread and wait
# for the other: the process hangs for good (seen in tests/test_mvn_mixture.py, one run in
# two: both `tf_XLAEigen` threads in `lapack_dtrsm_ffi` → `ParallelBatchMap` →
# `BlockingCounter::Wait`). `--xla_cpu_multi_thread_eigen=false` does not prevent it. For
# small n substitution also costs no more: n² fused multiply-adds, no custom call.
SUBSTITUTION_MAX_SIZE = 16


def triangular_solve(tril: Array, rhs: Array, unit_diagonal: bool = False) -> Array:
    """L⁻¹ B for lower-triangular L (..., n, n) and B (..., n, m), batch axes broadcast.

    Only the lower triangle of L is read (and not its diagonal if `unit_diagonal`). Forward
    substitution, unrolled over the n rows, for n ≤ SUBSTITUTION_MAX_SIZE; LAPACK beyond.
    Differentiable to any order either way.
    """
    n = tril.shape[-1]
    if n > SUBSTITUTION_MAX_SIZE:
        batch = jnp.broadcast_shapes(tril.shape[:-2], rhs.shape[:-2])
        tril = jnp.broadcast_to(tril, batch + tril.shape[-2:])
        rhs = jnp.broadcast_to(rhs, batch + rhs.shape[-2:])
        return lax.linalg.triangular_solve(
            tril, rhs, left_side=True, lower=True, unit_diagonal=unit_diagonal
        )
    rows = []
    for j in range(n):
        row = rhs[..., j, :]
        for k in range(j):
            row = row - tril[..., j, k, None] * rows[k]
        if not unit_diagonal:
            row = row / tril[..., j, j, None]
        rows.append(row)
    return jnp.stack(rows, axis=-2)


def cholesky(matrix: Array) -> Array:
    """Lower Cholesky factor of symmetric positive-definite matrices (..., n, n).

    Only the lower triangle is read. Unrolled Cholesky–Banachiewicz in plain XLA operations for
    n ≤ SUBSTITUTION_MAX_SIZE (no batched LAPACK call: see the note above
    SUBSTITUTION_MAX_SIZE); LAPACK's beyond. Differentiable to any order.
    """
    n = matrix.shape[-1]
    if n > SUBSTITUTION_MAX_SIZE:
        return lax.linalg.cholesky(matrix, symmetrize_input=False)
    factor: list[list[Array | None]] = [[None] * n for _ in range(n)]
    for j in range(n):
        diagonal = matrix[..., j, j]
        for k in range(j):
            diagonal = diagonal - factor[j][k] ** 2
        factor[j][j] = jnp.sqrt(diagonal)
        for i in range(j + 1, n):
            entry = matrix[..., i, j]
            for k in range(j):
                entry = entry - factor[i][k] * factor[j][k]
            factor[i][j] = entry / factor[j][j]
    zero = jnp.zeros_like(matrix[..., 0, 0])
    rows = [jnp.stack([factor[i][j] if j <= i else zero for j in range(n)], -1) for i in range(n)]
    return jnp.stack(rows, axis=-2)


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
    solution = triangular_solve(tril, rhs)
    return jnp.moveaxis(solution, -1, 0).reshape((*batch, n))
