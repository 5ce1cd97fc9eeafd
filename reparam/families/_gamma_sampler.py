"""Log-space Gamma(α, 1) draws written for XLA: one vectorized proposal round, then compaction.

Private: :func:`reparam.gamma.log_sample` (and through it beta, dirichlet and student_t) calls
:func:`log_gamma`; :mod:`reparam.families._von_mises_sampler` reuses :func:`batched_rejection`. No
gradients here: the families attach their implicit-reparameterization JVPs to the drawn values.

Why not `jax.random.gamma`/`loggamma`: on CPU they run one scalar `while_loop` per element
(`lax.map` over the array), 7-8x slower than TFP-on-JAX (jax#18984). TFP's
`_random_gamma_rejection` (tensorflow_probability/python/distributions/gamma.py, run through
`batched_las_vegas_algorithm` in internal/batched_rejection_sampler.py) proposes for the whole
array at once and repeats whole-array rounds while any element is still rejected; with 10^6
elements that is ~5 full rounds of random numbers although only ~5 % of them are needed after
the first. :func:`batched_rejection` keeps TFP's first whole-array round and then proposes only
for the elements still rejected, gathered into ever smaller fixed-size lists (static shapes),
ending in a `lax.while_loop` over a small list for the last few.

Ideas taken, and from where:

* Marsaglia & Tsang (2000), as in TFP and in PyTorch's CPU `sample_gamma`
  (aten/src/ATen/native/Distributions.h): for α' ≥ 1, d = α' − 1/3, c = 1/√(9d), x ~ N(0, 1),
  v = (1 + c x)³, accept if v > 0 and log U < x²/2 + d (1 − v + log v); the draw is d·v.
* From TFP: the v > 0 test is folded into the acceptance mask (no inner loop), and the squeeze
  test U < 1 − 0.0331 x⁴ is left out (vectorized code computes the logarithms anyway); the draw
  is kept in log space, log(d v) = log d + 3 log1p(c x).
* From PyTorch and TFP: α < 1 is boosted, G = G'·U^(1/α) with G' ~ Gamma(α + 1), done in log
  space, log G = log G' + log(U)/α (finite for every α > 0, so tiny concentrations stay exact
  where G underflows), with log U = log1p(−u) for u ~ U[0, 1) so that it is never −inf.
* Ours: the log acceptance ratio x²/2 + d (1 − v + log v) equals 3d·h(t), t = c x,
  h(t) = log1p(t) − t + t²/2 − t³/3 (using x² = 9d t²). Formed directly it cancels: float32 at
  α = 10⁶ loses ~0.06 of it (a 6 % error in the acceptance probability); h's Taylor series
  −t⁴/4 + t⁵/5 − … is used where |t| is small, so the test is exact to the float for every α.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

Array = jax.Array

# A proposal in two parts: `draw(key, m)` returns a tuple of parameter-free noise arrays of
# shape (m,) (independent across keys), and `test(noise, params)` maps noise and parameters, all
# of one shape (n,), to (values, accepted).
Draw = Callable[[Array, int], tuple[Array, ...]]
Test = Callable[[tuple[Array, ...], tuple[Array, ...]], tuple[Array, Array]]

_MIN_LIST = 4096  # lists stop shrinking here; the final while loop works on a list this long
# The final while loop's rounds are capped (see `_max_rounds`): a test that can never accept
# (a NaN in a parameter the caller did not replace) ends in NaN instead of an endless loop.
_SPARE_ROUNDS = 256


def _max_rounds(n: int) -> int:
    """A cap on the final loop's rounds that a valid element never reaches.

    Each round proposes for up to `_MIN_LIST` listed elements, so draining n pending elements
    takes about n / _MIN_LIST rounds (4x that allows for rejections); after that, an element
    rejected `_SPARE_ROUNDS` more times in a row has probability below 0.35^256 ≈ 1e-117 for
    the rejection rates used here.
    """
    return 4 * -(-n // _MIN_LIST) + _SPARE_ROUNDS


def _list_sizes(n: int, rejection_rate: float) -> list[int]:
    """Static sizes of the compacted lists after the first round, for `n` elements.

    List l holds the elements still rejected after l rounds, expected n·p^l for rejection rate
    ≤ p; the sizes leave room for 1.25x that plus 4 standard deviations (an overflowing list only
    delays its extra elements to the final while loop, it never loses them).
    """
    sizes = []
    expected = float(n)
    size = n
    while size > _MIN_LIST:
        expected *= rejection_rate
        size = min(size, math.ceil(1.25 * expected + 4 * math.sqrt(expected) + 16))
        size = max(size, min(_MIN_LIST, n))
        sizes.append(size)
    return sizes


def _cumsum(flags: Array, block: int = 1024) -> Array:
    """Inclusive int32 cumsum of a 1-d bool array, in blocks: XLA's CPU cumsum over 10^6
    elements is ~3x slower than cumsums within rows of 1024 plus one over the row totals."""
    n = flags.shape[0]
    if n <= 4 * block:
        return jnp.cumsum(flags, dtype=jnp.int32)
    rows = -(-n // block)
    within = jnp.cumsum(
        jnp.pad(flags, (0, rows * block - n)).reshape(rows, block), axis=1, dtype=jnp.int32
    )
    totals = within[:, -1]
    offsets = jnp.cumsum(totals) - totals
    return (within + offsets[:, None]).reshape(-1)[:n]


def _compact(pending: Array, index: Array, size: int, fill: int) -> Array:
    """The entries of `index` where `pending`, in order, in a list of `size` (padded by `fill`).

    Those beyond `size` are left out (they stay pending). O(len(pending)): a cumsum and a scatter.
    """
    rank = _cumsum(pending) - 1
    target = jnp.where(pending, rank, size)  # `size` is out of bounds: dropped
    return jnp.full((size,), fill, jnp.int32).at[target].set(index, mode="drop")


def _draw_aligned(draw: Draw, key: Array, m: int) -> tuple[Array, ...]:
    """`draw(key, m)`, drawn at m rounded up to a multiple of 128 and cut back to m.

    jax.random's threefry on CPU is ~6x slower for an odd number of values than for an even one
    (1,679,095 float32 uniforms: 43.5 ms, 1,679,104: 5.6 ms, 2-core machine, jax 0.10.2). With
    jax's default partitionable threefry a value depends only on the key and its position, so
    the first m values, and the samplers' draws, are the same bits either way.
    """
    aligned = -(-m // 128) * 128
    if aligned == m:
        return draw(key, m)
    return tuple(x[:m] for x in draw(key, aligned))


def batched_rejection(
    key: Array,
    draw: Draw,
    test: Test,
    params: tuple[Array, ...],
    rejection_rate: float,
    dtype,
) -> Array:
    """Accepted values for every element: a Las Vegas loop over a flat batch, XLA-friendly.

    Args:
      key: a PRNG key.
      draw: `draw(key, m)`, the proposals' parameter-free noise: a tuple of arrays of shape (m,).
      test: `test(noise, params) -> (values, accepted)`, elementwise over shape (n,).
      params: per-element parameters, each of shape (N,). Every element must be accepted with
        positive probability (the caller replaces bad parameters by safe ones).
      rejection_rate: an upper bound on any element's rejection probability; sizes the lists.
      dtype: dtype of the values.

    Returns:
      values of shape (N,): for each element an accepted proposal; distinct proposals use
      distinct noise, so the result has the target distribution. An element whose test never
      accepts (after `_max_rounds(N)` rounds of the final loop) is NaN: never an endless loop.

    Round 0 proposes for all N elements. Round l ≥ 1 gathers the elements still rejected into a
    list of static size n_l (≈ 1.25 N p^l, see :func:`_list_sizes`) by a cumsum over the previous
    list, proposes for its n_l slots, and scatters the accepted values back, so the noise drawn
    totals ≈ N/(1 − p) instead of TFP's N per round. (Round 0's and these rounds' noise comes
    from one `draw` call, cut into pieces: one copy of the random-number code to compile.) Then
    a `lax.while_loop` repeats rounds on a list of `_MIN_LIST` slots, refilled from the whole
    array when it runs dry while elements remain (after a list overflowed), until every element
    is accepted. Deterministic in the key: same key → same bits, under jit and vmap.
    """
    n = params[0].shape[0]
    sizes = _list_sizes(n, rejection_rate)
    key_rounds, key_loop = jax.random.split(key)
    noise = _draw_aligned(draw, key_rounds, n + sum(sizes))
    values, accepted = test(tuple(x[:n] for x in noise), params)
    values = values.astype(dtype)

    def round_(noise, values, accepted, index):
        """Propose for the elements listed in `index` (n is padding) and keep the accepted."""
        gathered = tuple(p.at[index].get(mode="clip") for p in params)
        candidates, ok = test(noise, gathered)
        target = jnp.where(ok, index, n)  # padding and rejections are dropped
        values = values.at[target].set(candidates.astype(dtype), mode="drop", unique_indices=True)
        accepted = accepted.at[target].set(True, mode="drop", unique_indices=True)
        return values, accepted

    index = jnp.arange(n, dtype=jnp.int32)
    start = n
    for level, size in enumerate(sizes):
        if level == 0:
            pending = ~accepted
        else:  # the padding (index n) reads as accepted
            pending = ~accepted.at[index].get(mode="fill", fill_value=True)
        index = _compact(pending, index, size, n)
        piece = tuple(x[start : start + size] for x in noise)
        values, accepted = round_(piece, values, accepted, index)
        start += size

    max_rounds = _max_rounds(n)

    def cond(state):
        _, _, accepted, _, rounds = state
        return ~jnp.all(accepted) & (rounds < max_rounds)

    def body(state):
        key, values, accepted, index, rounds = state
        key, key_round = jax.random.split(key)
        listed = ~accepted.at[index].get(mode="fill", fill_value=True)
        # Refill from the whole array only when the list has run dry (rare: O(N) work).
        index = jax.lax.cond(
            jnp.any(listed),
            lambda: index,
            lambda: _compact(~accepted, jnp.arange(n, dtype=jnp.int32), index.shape[0], n),
        )
        noise = _draw_aligned(draw, key_round, index.shape[0])
        values, accepted = round_(noise, values, accepted, index)
        return key, values, accepted, index, rounds + 1

    # n ≤ _MIN_LIST: no static lists, the while loop works on the whole array.
    state = (key_loop, values, accepted, index, jnp.zeros((), jnp.int32))
    _, values, accepted, _, _ = jax.lax.while_loop(cond, body, state)
    return jnp.where(accepted, values, jnp.nan)


# ------------------------------------------------------------------ Marsaglia–Tsang in log space
def _series_settings(dtype) -> tuple[float, int]:
    """(|t| below which h(t) comes from its Taylor series, number of series terms)."""
    # The first omitted term relative to the first is ≈ |t|^terms: 0.05^12 ≈ 2e-16 for float64,
    # 0.25^12 ≈ 6e-8 for float32. Beyond the threshold the direct form's absolute error,
    # 3d·eps·O(|t|), is small because |t| = |x|/(3√d) that large needs a small d.
    if jnp.dtype(dtype) == jnp.float64:
        return 0.05, 12
    return 0.25, 12


def _log_acceptance_ratio(d: Array, t: Array) -> Array:
    """x²/2 + d (1 − v + log v) = 3d·h(t), h(t) = log1p(t) − t + t²/2 − t³/3; NaN if t ≤ −1."""
    threshold, terms = _series_settings(t.dtype)
    small = jnp.abs(t) < threshold
    ts = jnp.where(small, t, 0.0)
    # h(t) = −t⁴ Σ_j (−t)^j/(j + 4): Horner from the last term.
    series = jnp.zeros_like(ts)
    for j in reversed(range(terms)):
        series = 1.0 / (j + 4) - ts * series
    series = -(ts * ts) * (ts * ts) * series
    direct = jnp.log1p(t) - t * (1 - t * (0.5 - t / 3))
    # d·(3h), not 3d·h: 3d overflows for d near the largest float (then inf·0 = NaN at t = 0,
    # a test that never accepts); d·h stays small there (h = O(t⁴), t² = x²/(9d)).
    return d * (3 * jnp.where(small, series, direct))


def _mt_draw(dtype) -> Draw:
    def draw(key: Array, m: int) -> tuple[Array, Array]:
        """Marsaglia–Tsang's noise: x ~ N(0, 1) and u ~ U[0, 1), each of shape (m,)."""
        key_normal, key_uniform = jax.random.split(key)
        return jax.random.normal(key_normal, (m,), dtype), jax.random.uniform(
            key_uniform, (m,), dtype
        )

    return draw


def _marsaglia_tsang(noise: tuple[Array, Array], params: tuple[Array]) -> tuple[Array, Array]:
    """Marsaglia–Tsang's test, elementwise: (log(d v), accepted), shapes (n,).

    `noise` is (x, u) and `params` is (α',) with α' ≥ 1 (already boosted), all of shape (n,).
    """
    x, u = noise
    (alpha,) = params
    d = alpha - 1 / 3
    c = jax.lax.rsqrt(d) / 3  # not rsqrt(9d): 9d overflows for α near the largest float
    t = c * x
    log_ratio = _log_acceptance_ratio(d, t)
    # log(0) = −inf for u = 0 accepts, as it should (0 < ratio); t ≤ −1 (v ≤ 0) rejects.
    accepted = (t > -1) & (jnp.log(u) < log_ratio)
    return jnp.log(d) + 3 * jnp.log1p(t), accepted


# α' ≥ 1 after the boost: the acceptance probability is lowest at α' = 1 (≈ 0.951 with the
# v > 0 test folded in); 0.06 leaves margin.
_GAMMA_REJECTION_RATE = 0.06


def log_gamma(key: Array, concentration: Array) -> Array:
    """log G for G ~ Gamma(concentration, 1), elementwise; no gradient.

    Args:
      key: a PRNG key.
      concentration: α of any shape S, a float array (float16/bfloat16 computed in float32).

    Returns:
      log G of shape S and α's dtype. α = +inf gives +inf, α = 0 gives −inf, α < 0 or NaN
      gives NaN (never an endless loop; `reparam.gamma` rejects these before they get here
      when it can see the values).

    Key use: one key for the boost uniforms of α < 1, one for the rejection rounds.
    """
    dtype = concentration.dtype
    compute = jnp.float32 if jnp.finfo(dtype).bits < 32 else dtype
    shape = concentration.shape
    alpha = concentration.reshape(-1).astype(compute)
    n = alpha.shape[0]
    if n == 0:
        return jnp.zeros(shape, dtype)
    valid = (alpha > 0) & (alpha < jnp.inf)
    alpha = jnp.where(valid, alpha, 1.0)
    boost = alpha < 1
    key_rounds, key_boost = jax.random.split(key)
    log_g = batched_rejection(
        key_rounds,
        _mt_draw(compute),
        _marsaglia_tsang,
        (jnp.where(boost, alpha + 1, alpha),),
        _GAMMA_REJECTION_RATE,
        compute,
    )

    def boost_term(key):
        # log U / α with log U = log1p(−u), u ∈ [0, 1): in (−17, 0] for float32, never −inf.
        u = jax.random.uniform(key, (n,), compute)
        return jnp.where(boost, jnp.log1p(-u) / alpha, 0.0)

    # Skip the uniforms when no α < 1 (under vmap both branches run; the result is the same).
    log_g = log_g + jax.lax.cond(
        jnp.any(boost), boost_term, lambda key: jnp.zeros((n,), compute), key_boost
    )
    raw = concentration.reshape(-1).astype(compute)
    special = jnp.where(raw == 0, -jnp.inf, jnp.where(raw > 0, jnp.inf, jnp.nan))
    log_g = jnp.where(valid, log_g, special)
    return log_g.astype(dtype).reshape(shape)
