"""Elementwise functions evaluated chunk by chunk (`lax.map`), for the implicit gradients.

Private: gamma's and von Mises' implicit JVPs call :func:`in_chunks`. Same values as one call on
the whole array; faster on CPU for two reasons, both measured on 10^6 float32 elements:

* `while` loops over the whole array (`lax.random_gamma_grad`'s series and continued fraction)
  run until the slowest element has converged, touching every element each iteration; per chunk,
  each stops at that chunk's slowest (2.5-3x faster);
* loops whose state is several arrays (von Mises' CDF series: the Bessel ratios, the partial sum,
  their κ-tangents and the sines) stream that state through memory each step over the whole
  array, and stay in cache over a chunk (2.4x faster).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

Array = jax.Array

# Elements per chunk: 4096-20000 measured alike; 10^3 and 10^5 were slower.
CHUNK = 8192


def in_chunks(fn: Callable[..., Array], *arrays: Array, chunk: int = CHUNK) -> Array:
    """`fn(*arrays)` for an elementwise `fn` and arrays of one shape, `chunk` elements at a time.

    The last chunk is padded with ones (each caller's `fn` is finite and quick there).
    """
    shape = arrays[0].shape
    size = arrays[0].size
    if size <= 2 * chunk:
        return fn(*arrays)
    chunks = -(-size // chunk)
    pad = chunks * chunk - size

    def pieces(x: Array) -> Array:
        return jnp.pad(x.reshape(-1), (0, pad), constant_values=1).reshape(chunks, chunk)

    out = jax.lax.map(lambda xs: fn(*xs), tuple(pieces(x) for x in arrays))
    return out.reshape(-1)[:size].reshape(shape)
