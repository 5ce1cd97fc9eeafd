"""truncated_normal far in the tails, where a naive Φ⁻¹(Φ(α) + ε Z) loses everything.

The generic layers (tests/test_families.py, tests/specs/truncated_normal.py) run at moderate
intervals; here truncations 10 standard deviations out, on either side, one-sided and two-sided:
samples inside the interval and distributed as scipy's truncnorm (KS), log_prob, mean and variance
against scipy, sample_and_log_prob equal to sample and log_prob, −inf with zero gradients off the
support, and per-sample gradients in all four parameters against −(∂F/∂θ)/p(z) with ∂F/∂θ
from central differences of scipy's CDF. One compiled program for all cases.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from reparam import truncated_normal

# (loc, scale, low, high): N(0, 1) on [10, 12]; N(0, 1) on (−inf, −10]; N(3, 0.5²) on [8, inf)
# (10 standard deviations); N(−1, 2²) on [−25, −21] (12 to 10 standard deviations below);
# N(0, 1) on [40, 41].
TAIL_CASES = np.array(
    [
        [0.0, 1.0, 10.0, 12.0],
        [0.0, 1.0, -np.inf, -10.0],
        [3.0, 0.5, 8.0, np.inf],
        [-1.0, 2.0, -25.0, -21.0],
        [0.0, 1.0, 40.0, 41.0],  # past float64's ndtri range: Newton on log Φ
    ]
).T
# float32: past ndtri's range from ≈ 13 standard deviations on.
FLOAT32_CASES = np.array([[0.0, 1.0, 10.0, 12.0], [0.0, 1.0, -np.inf, -20.0]]).T
NUM_SAMPLES = 4000


def _scipy(loc, scale, low, high):
    return stats.truncnorm((low - loc) / scale, (high - loc) / scale, loc=loc, scale=scale)


@jax.jit
def _draws_log_probs_and_gradients(params):
    # Every parameter broadcast to (NUM_SAMPLES, cases): the pullback of ones gives per-sample
    # dz_n/dθ_n, since z_n depends on its own copy of θ only.
    per_sample = tuple(jnp.broadcast_to(p, (NUM_SAMPLES, *p.shape)) for p in params)
    z, pullback = jax.vjp(lambda ps: truncated_normal.sample(jax.random.key(30), *ps), per_sample)
    (grads,) = pullback(jnp.ones_like(z))
    z_again, log_p_again = truncated_normal.sample_and_log_prob(jax.random.key(30), *per_sample)
    # Off the support: one scale below a finite low and above a finite high (two scales beyond the
    # other end where one is infinite: ±inf itself is the support's limit, not off it).
    _, scale, low, high = params
    below = jnp.where(jnp.isfinite(low), low - scale, high + 2 * scale)
    above = jnp.where(jnp.isfinite(high), high + scale, low - 2 * scale)
    off_support = jnp.stack([below, above])
    log_p_off, grads_off = jax.value_and_grad(
        lambda ps: truncated_normal.log_prob(off_support, *ps).sum()
    )(params)
    return (
        z,
        truncated_normal.log_prob(z, *params),
        grads,
        z_again,
        log_p_again,
        log_p_off,
        grads_off,
    )


def test_truncations_ten_standard_deviations_out():
    params = tuple(jnp.asarray(p) for p in TAIL_CASES)
    with jax.debug_key_reuse(False):
        z, log_p, grads, z_again, log_p_again, log_p_off, grads_off = jax.tree.map(
            np.asarray, _draws_log_probs_and_gradients(params)
        )
    # sample_and_log_prob draws the same z and gives log_prob's value; off the support −inf,
    # with zero (not NaN) gradients
    np.testing.assert_array_equal(z_again, z)
    np.testing.assert_allclose(log_p_again, log_p, rtol=1e-10, atol=1e-12)
    assert log_p_off == -np.inf
    for name, g in zip(truncated_normal.PARAMS, grads_off, strict=True):
        np.testing.assert_array_equal(g, 0.0, err_msg=f"d/d{name} off the support")
    assert np.all(np.isfinite(z)) and np.all(np.isfinite(log_p))
    for name, g in zip(truncated_normal.PARAMS, grads, strict=True):
        assert np.all(np.isfinite(g)), f"non-finite d/d{name}"

    mean = np.asarray(truncated_normal.mean(*params))
    variance = np.asarray(truncated_normal.variance(*params))
    for b, case in enumerate(TAIL_CASES.T):
        loc, scale, low, high = case
        dist, column = _scipy(*case), z[:, b]
        assert np.all((column >= low) & (column <= high)), f"sample outside [low, high] at {case}"
        np.testing.assert_allclose(log_p[:, b], dist.logpdf(column), rtol=1e-9, atol=1e-9)
        # The variance is a difference of terms ≈ α² for a result ≈ 1/α² (module docstring):
        # ≈ 10 digits at 10 standard deviations, ≈ 4 at 40 (checked against mpmath by hand).
        far = min(abs(low - loc), abs(high - loc)) / scale > 20
        np.testing.assert_allclose(mean[b], dist.mean(), rtol=1e-10 if far else 1e-12)
        np.testing.assert_allclose(variance[b], dist.var(), rtol=1e-4 if far else 1e-7)
        p_value = stats.kstest(column, dist.cdf).pvalue
        assert p_value > 1e-4, f"KS p={p_value:.2g} at {case}"

        # dz/dθ_i = −(∂F/∂θ_i)(z)/p(z), at the first 16 draws.
        head = column[:16]
        for i, name in enumerate(truncated_normal.PARAMS):
            if not np.isfinite(case[i]):
                np.testing.assert_array_equal(grads[i][:16, b], 0.0, err_msg=name)
                continue
            step = 1e-6 * max(1.0, abs(case[i]))
            up, down = case.copy(), case.copy()
            up[i] += step
            down[i] -= step
            d_cdf = (_scipy(*up).cdf(head) - _scipy(*down).cdf(head)) / (2 * step)
            reference = -d_cdf / dist.pdf(head)
            np.testing.assert_allclose(
                grads[i][:16, b], reference, rtol=1e-4, atol=1e-7, err_msg=f"{name} at {case}"
            )


def test_float32_tails_are_sampled_exactly():
    params = tuple(jnp.asarray(p, jnp.float32) for p in FLOAT32_CASES)
    z = np.asarray(
        jax.jit(lambda ps: truncated_normal.sample(jax.random.key(31), *ps, sample_shape=(4000,)))(
            params
        )
    )
    assert z.dtype == np.float32 and np.all(np.isfinite(z))
    for b, case in enumerate(FLOAT32_CASES.T):
        column = z[:, b].astype(np.float64)
        low, high = case[2:]
        assert np.all((column >= np.float32(low)) & (column <= np.float32(high)))
        p_value = stats.kstest(column, _scipy(*case).cdf).pvalue
        assert p_value > 1e-4, f"KS p={p_value:.2g} at {case} in float32"
