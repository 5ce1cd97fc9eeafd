"""Centred von Mises angles ω ~ VM(0, κ) by Best & Fisher's (1979) rejection sampler, for XLA.

Private: :func:`reparam.von_mises._best_fisher` calls :func:`best_fisher`; no gradients here (the
family attaches its implicit-reparameterization JVP to the drawn angle).

The proposal and acceptance test are Best & Fisher's, as in TFP's
`_von_mises_sample_no_gradient` (tensorflow_probability/python/distributions/von_mises.py),
rewritten without cancellation for κ → 0 and κ → ∞ (below). TFP, like this module's predecessor,
repeats whole-array rounds while any element is rejected: with 10^6 elements and the acceptance
rate ≈ 0.66-0.75 of κ ≳ 1 that is ~12 full rounds of random numbers where ~1.5 suffice. Here
the rounds after the first propose only for the elements still rejected, compacted into
fixed-size lists (`_gamma_sampler.batched_rejection`), so ~1/(acceptance rate)
proposals per element are drawn.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from reparam.families._gamma_sampler import batched_rejection

Array = jax.Array

# Best–Fisher's acceptance probability falls from 1 (κ → 0) to √(e/(2π)) ≈ 0.658 (κ → ∞); the
# compacted lists are sized for a rejection rate of at most this.
_REJECTION_RATE = 0.35


def _draw(dtype):
    def draw(key: Array, m: int) -> tuple[Array, Array]:
        """Best–Fisher's noise: U₁ ~ U[−1, 1) and U₂ ~ U[0, 1), each of shape (m,)."""
        key_angle, key_accept = jax.random.split(key)
        u1 = jax.random.uniform(key_angle, (m,), dtype, minval=-1.0, maxval=1.0)
        return u1, jax.random.uniform(key_accept, (m,), dtype)

    return draw


def _test(noise: tuple[Array, Array], params: tuple[Array, Array]) -> tuple[Array, Array]:
    """Best–Fisher's proposal and test, elementwise: (sin(ω/2), accepted), shapes (n,).

    `noise` is (U₁, U₂) and `params` is (κ, r − 1), all of shape (n,), with r the
    wrapped-Cauchy envelope's parameter. Proposal: w = (1 + r c)/(r + c) with c = cos(πU₁),
    y = κ (r − w); accept if y(2 − y) > U₂ or log(y/U₂) + 1 − y ≥ 0; then ω = ±arccos(w),
    written as
      1 ∓ c = 2 sin²/cos²(πU₁/2),   r + c = (r − 1) + (1 + c),   1 − w = (r − 1)(1 − c)/(r + c),
      y = κ (r − 1)(r + 1)/(r + c),   arccos(w) = 2 arcsin(√((1 − w)/2)).
    The sign of ω is the sign of U₁ ∈ [−1, 1) (c is even in U₁), saving a third uniform.
    """
    u1, u2 = noise
    kappa, r_minus_1 = params
    half = 0.5 * math.pi * u1
    sine, cosine = jnp.sin(half), jnp.cos(half)
    r_plus_c = r_minus_1 + 2 * cosine**2
    y = kappa * r_minus_1 * ((r_minus_1 + 2) / r_plus_c)
    accepted = (y * (2 - y) > u2) | (jnp.log(y / u2) + 1 - y >= 0)
    # sin(ω/2) = ±√((1 − w)/2) = ±|sin(πU₁/2)|·√((r − 1)/(r + c)); the arcsin is taken once on
    # the accepted values (best_fisher). Not √((1 − w)/2) itself: 1 − w ≈ 1/κ is below the
    # smallest normal float (flushed to zero) for κ ≳ 1e308 (float64), 1e38 (float32).
    # (This order of operations also gives the same bits under vmap as without: √ of the
    # quotient did not, under XLA's -O0 CPU build.)
    root = jnp.sqrt(r_minus_1) * jnp.abs(sine) / jnp.sqrt(r_plus_c)
    half_sine = jnp.sign(u1) * jnp.minimum(root, 1.0)
    return half_sine, accepted


def best_fisher(key: Array, concentration: Array) -> Array:
    """Centred angles ω ~ VM(0, κ) in [−π, π], elementwise; no gradient.

    Args:
      key: a PRNG key.
      concentration: κ of any shape S, a float array (float16/bfloat16 computed in float32).

    Returns:
      ω of shape S and κ's dtype. Non-positive, infinite or NaN κ (possible only under jit
      without `checks.checked`) yields NaN instead of looping forever.

    Best & Fisher's envelope is a wrapped Cauchy with parameter r = (1 + ρ²)/(2ρ),
    ρ = (τ − √(2τ))/(2κ), τ = 1 + √(1 + 4κ²), rewritten without cancellation (both κ → 0,
    where r ≈ 1/κ, and κ → ∞, where r → 1):
      ρ = 2κ / (τ + √(2τ)),   1 − ρ = (1 + 1/(√(1 + 4κ²) + 2κ) + √(2τ)) / (τ + √(2τ)),
      r − 1 = (1 − ρ)² / (2ρ).
    """
    dtype = concentration.dtype
    compute = jnp.float32 if jnp.finfo(dtype).bits < 32 else dtype
    shape = concentration.shape
    raw = concentration.reshape(-1).astype(compute)
    if raw.shape[0] == 0:
        return jnp.zeros(shape, dtype)
    finfo = np.finfo(compute)
    valid = (raw > 0) & (raw < jnp.inf)
    # Below √tiny, κ·(r − 1) and friends would under/overflow; VM(0, κ) is uniform there anyway.
    # Above `largest`, 2κ and friends would overflow (NaN: a test that never accepts): the draw
    # for `largest` is scaled by √(largest/κ), exact to O(1/κ) because VM(0, κ) is N(0, 1/κ)
    # to that order.
    largest = float(finfo.max) / 16
    kappa = jnp.where(valid, jnp.clip(raw, np.sqrt(finfo.tiny), largest), 1.0).astype(compute)
    root = jnp.hypot(jnp.ones_like(kappa), 2 * kappa)  # √(1 + 4κ²), overflow-free
    tau = 1 + root
    sqrt_2tau = jnp.sqrt(2 * tau)
    rho = 2 * kappa / (tau + sqrt_2tau)
    one_minus_rho = (1 + 1 / (root + 2 * kappa) + sqrt_2tau) / (tau + sqrt_2tau)
    r_minus_1 = one_minus_rho**2 / (2 * rho)
    half_sine = batched_rejection(
        key, _draw(compute), _test, (kappa, r_minus_1), _REJECTION_RATE, compute
    )
    omega = 2 * jnp.arcsin(half_sine)
    omega = omega * jnp.where(raw > largest, jnp.sqrt(largest / jnp.where(valid, raw, 1.0)), 1.0)
    omega = jnp.where(valid, omega, jnp.nan)
    return omega.astype(dtype).reshape(shape)
