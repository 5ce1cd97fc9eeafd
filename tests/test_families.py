"""The family contract (docs/DESIGN.md), checked for every family in tests/specs/.

Layers: 1 identity, 2 local derivatives (check_grads), 3 global Monte-Carlo gradients against
scipy quadrature with a standard-error tolerance, 4 log_prob / moments / KS against scipy and
implicit gradients against finite differences of scipy's CDF, 5 hypothesis extremes; plus
jit/vmap/grad, dtypes, shapes and bad input.
"""

from __future__ import annotations

import json

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from jax.test_util import check_grads
from scipy import stats

from tests import child
from tests.specs import TEST_FUNCTIONS, FamilySpec, all_specs

SPECS = all_specs()
Z_THRESHOLD = 5.0  # |MC mean − reference| ≤ 5 standard errors: fixed keys, so deterministic


def params_for(spec: FamilySpec, dtype=np.float64) -> tuple[jax.Array, ...]:
    return tuple(jnp.asarray(p, dtype) for p in spec.params)


# Eagerly drawn samples have this sample shape in every test that needs a few: each new shape
# recompiles every primitive on the eager path (and the gamma-based samplers as a whole), one
# shape reuses them across tests.
DRAWS = (8,)


def family_group(spec: FamilySpec) -> pytest.MarkDecorator:
    """All tests of one family on one worker under `--dist loadgroup`: they share its compiled
    code (eager primitives at its shapes, samplers, the Monte-Carlo gradients)."""
    return pytest.mark.xdist_group(f"family-{spec.name}")


def with_specs(predicate=lambda spec: True, grouped=True):
    return pytest.mark.parametrize(
        "spec",
        [
            pytest.param(spec, id=spec.name, marks=family_group(spec) if grouped else ())
            for spec in SPECS
            if predicate(spec)
        ],
    )


# ---------------------------------------------------------------- layer 1: identity
# Checked as users compile: the session compiles with fast-compile settings (tests/child.py),
# and an optimizing compiler that fused or reassociated one path differently would break
# bit-equality only there.
# One child process at XLA's default optimization level checks every family with `sample` and
# `transform(noise(·))` each compiled by jax.jit, and reports mismatches per family. (Eagerly,
# each operation is a program of its own, which no optimization fuses or reorders: the eager
# identity is checked in this session, tests/test_contract.py, at two sample shapes.)
IDENTITY_CHILD = r"""
import json
import jax, numpy as np
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_debug_key_reuse", True)
from tests.specs import all_specs

def mismatch(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return f"{a.shape} {a.dtype} vs {b.shape} {b.dtype}"
    bad = np.argwhere(~((a == b) | (np.isnan(a) & np.isnan(b))))
    if bad.size:
        i = tuple(bad[0])
        return f"{len(bad)} of {a.size} differ, first at {i}: {a[i]!r} vs {b[i]!r}"
    return None

out = {}
for spec in all_specs():
    if not spec.has_noise:
        continue
    module, kwargs = spec.module, spec.sample_kwargs
    params = tuple(np.asarray(p, np.float64) for p in spec.params)
    shape = (4, *spec.batch_shape, *spec.noise_event)
    key = jax.random.key(1)
    with jax.debug_key_reuse(False):
        jit_z = jax.jit(lambda k, p: module.sample(k, *p, sample_shape=(4,), **kwargs))(key, params)
        jit_z_again = jax.jit(
            lambda k, p: module.transform(module.noise(k, shape, np.float64), *p, **kwargs)
        )(key, params)
    out[spec.name] = mismatch(jit_z, jit_z_again)
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def identities_at_default_optimization() -> dict:
    completed = child.run(["-c", IDENTITY_CHILD], timeout=300, optimized=True)
    line = next(line for line in completed.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


@with_specs(lambda spec: spec.has_noise, grouped=False)
@pytest.mark.xdist_group("identity")  # one worker: the child process runs once
def test_sample_is_transform_of_noise_bit_for_bit(spec, identities_at_default_optimization):
    mismatch = identities_at_default_optimization[spec.name]
    assert mismatch is None, f"{spec.name}, jitted: {mismatch}"


@with_specs()
def test_same_key_same_bits_other_key_other_bits(spec):
    module, params = spec.module, params_for(spec)
    with jax.debug_key_reuse(False):
        a = module.sample(jax.random.key(3), *params, sample_shape=DRAWS, **spec.sample_kwargs)
        b = module.sample(jax.random.key(3), *params, sample_shape=DRAWS, **spec.sample_kwargs)
    c = module.sample(jax.random.key(4), *params, sample_shape=DRAWS, **spec.sample_kwargs)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))


# ---------------------------------------------------------------- layer 2: local derivatives
def _checks_transform(spec: FamilySpec) -> bool:
    return spec.has_noise and spec.transform_jvp_is_pathwise


def _checks_log_prob(spec: FamilySpec) -> bool:
    return not spec.sample_kwargs.get("straight_through", False)


@with_specs(lambda spec: _checks_transform(spec) or _checks_log_prob(spec))
def test_check_grads_of_transform_and_log_prob(spec):
    """check_grads (order 2, forward and reverse) of `transform(ε, θ)` at fixed ε and of
    `log_prob(x, θ)` at fixed draws x, in θ.

    One function returns both, so check_grads compiles one set of programs per family, not two
    (jvp compares each output with its finite difference; vjp projects both outputs onto one
    random cotangent, where an error in one would cancel one in the other only by accident).
    """
    module, params = spec.module, params_for(spec)
    key_noise, key_draws = jax.random.split(jax.random.key(2))
    parts = {}
    if _checks_transform(spec):
        eps = module.noise(key_noise, (*spec.batch_shape, *spec.noise_event), jnp.float64)
        parts["transform"] = lambda full: module.transform(eps, *full, **spec.sample_kwargs)
    if _checks_log_prob(spec):
        x = module.sample(key_draws, *params, sample_shape=DRAWS)
        parts["log_prob"] = lambda full: module.log_prob(x, *full)
    diff = spec.diff_indices

    def outputs(*diff_params):
        full = list(params)
        for i, p in zip(diff, diff_params, strict=True):
            full[i] = p
        return {name: part(full) for name, part in parts.items()}

    # Jitted: check_grads' jvp/vjp/finite differences of it compile a few whole programs, which
    # costs less than dispatching (and compiling) every primitive of every pass eagerly.
    check_grads(
        jax.jit(outputs),
        tuple(params[i] for i in diff),
        order=2,
        modes=("fwd", "rev"),
        atol=1e-5,
        rtol=1e-5,
        eps=1e-6,
    )


# ---------------------------------------------------------------- layer 3: global MC gradients
def _mc_cases():
    cases = []
    for spec in SPECS:
        if spec.grad_params is None:
            continue
        for i in spec.diff_indices:
            for f in spec.functions:
                cases.append(
                    pytest.param(
                        spec,
                        i,
                        f,
                        id=f"{spec.name}-{spec.module.PARAMS[i]}-{f}",
                        # one worker per family: the compiled gradients are shared
                        marks=family_group(spec),
                    )
                )
    return cases


def _expectation(spec: FamilySpec, f, params) -> float:
    if spec.expectation is not None:
        return spec.expectation(f, params)
    return spec.scipy_dist(*params).expect(f, epsabs=1e-13, epsrel=1e-12, limit=500)


_GRADIENTS: dict[str, dict[str, dict[int, np.ndarray]]] = {}


def _per_sample_gradients(spec: FamilySpec, index: int, f_name: str) -> np.ndarray:
    """Per-sample ∂f(z_n)/∂θ_index for n < N: every θ_i is broadcast to (N,) so z_n sees θ_{i,n}.

    One compiled program per family serves every parameter and every test function (compilation
    is most of the cost): one draw, one pullback per f to all parameters at once; the results
    are cached for the family's other tests (one worker per family: `family_group`). The
    draws are the same as with only θ_index broadcast: the sample's shape is (N,) either way.
    """
    if spec.name not in _GRADIENTS:
        params = tuple(jnp.full((spec.mc_samples,), p, jnp.float64) for p in spec.grad_params)
        diff = spec.diff_indices

        @jax.jit
        def grads(params):
            def draw(*diff_params):
                full = list(params)
                for i, p in zip(diff, diff_params, strict=True):
                    full[i] = p
                return spec.module.sample(jax.random.key(7), *full, **spec.sample_kwargs)

            z, pullback = jax.vjp(draw, *(params[i] for i in diff))
            # ∂f(z_n)/∂θ_{i,n} = f'(z_n)·∂z_n/∂θ_{i,n}: one pullback per f through the same sample.
            return {
                name: pullback(jax.grad(lambda z: jnp.sum(TEST_FUNCTIONS[name](z)))(z))
                for name in spec.functions
            }

        with jax.debug_key_reuse(False):
            result = grads(params)
        _GRADIENTS[spec.name] = {
            name: dict(zip(diff, (np.asarray(g) for g in per_param), strict=True))
            for name, per_param in result.items()
        }
    return _GRADIENTS[spec.name][f_name][index]


@pytest.mark.parametrize(("spec", "index", "f_name"), _mc_cases())
def test_monte_carlo_gradient_matches_quadrature(spec, index, f_name):
    per_sample = _per_sample_gradients(spec, index, f_name)
    assert np.all(np.isfinite(per_sample)), "non-finite per-sample gradient"
    estimate = per_sample.mean()
    standard_error = per_sample.std(ddof=1) / np.sqrt(per_sample.size)
    step = 1e-4 * max(1.0, abs(spec.grad_params[index]))
    up, down = list(spec.grad_params), list(spec.grad_params)
    up[index] += step
    down[index] -= step
    f = TEST_FUNCTIONS[f_name]
    reference = (_expectation(spec, f, tuple(up)) - _expectation(spec, f, tuple(down))) / (2 * step)
    tolerance = Z_THRESHOLD * standard_error + 1e-6 * (1 + abs(reference))
    assert abs(estimate - reference) <= tolerance, (
        f"MC {estimate:.6g} ± {standard_error:.2g} vs quadrature {reference:.6g}"
    )


# ---------------------------------------------------------------- layer 4: distribution
@with_specs(lambda spec: spec.scipy_dist is not None)
def test_log_prob_matches_scipy(spec):
    params = params_for(spec)
    with jax.debug_key_reuse(False):
        x = np.asarray(spec.module.sample(jax.random.key(8), *params, sample_shape=DRAWS))
    reference = spec.scipy_dist(*spec.params).logpdf(x)
    np.testing.assert_allclose(
        np.asarray(spec.module.log_prob(x, *params)), reference, rtol=1e-9, atol=1e-9
    )


@with_specs(lambda spec: spec.scipy_dist is not None)
def test_moments_and_entropy_match_scipy(spec):
    params = params_for(spec)
    dist = spec.scipy_dist(*spec.params)
    for name, reference in (("mean", dist.mean), ("variance", dist.var), ("entropy", dist.entropy)):
        fn = getattr(spec.module, name, None)
        if fn is None:
            continue
        np.testing.assert_allclose(
            np.asarray(fn(*params)), reference(), rtol=1e-7, atol=1e-9, err_msg=name
        )


@with_specs(lambda spec: spec.scipy_dist is not None)
def test_samples_follow_the_cdf(spec):
    """Kolmogorov–Smirnov per batch element with fixed keys; p > 1e-4 (deterministic)."""
    params = params_for(spec)
    # Jitted: one program, where eagerly every primitive would compile again at this shape.
    draw = jax.jit(
        lambda key, p: spec.module.sample(key, *p, sample_shape=(20_000,), **spec.sample_kwargs)
    )
    z = np.asarray(draw(jax.random.key(9), params))
    batch = np.broadcast_shapes(*(np.shape(p) for p in spec.params))
    for index in np.ndindex(batch):
        element_params = tuple(np.broadcast_to(p, batch)[index] for p in spec.params)
        column = z[(slice(None), *index)]
        p_value = stats.kstest(column, spec.scipy_dist(*element_params).cdf).pvalue
        assert p_value > 1e-4, f"KS p={p_value:.2g} at {element_params}"


_IMPLICIT: dict[str, tuple[np.ndarray, dict[int, np.ndarray]]] = {}


def _draws_and_implicit_gradients(spec: FamilySpec) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """z (64 draws at grad_params) and per-sample dz/dθ_i for every i in `implicit`: one compiled
    program per family, every parameter broadcast to (64,) (the same draws as broadcasting one)."""
    if spec.name not in _IMPLICIT:
        params = tuple(jnp.full((64,), p, jnp.float64) for p in spec.grad_params)

        @jax.jit
        def draw_and_grads(params):
            def draw(*implicit_params):
                full = list(params)
                for i, p in zip(spec.implicit, implicit_params, strict=True):
                    full[i] = p
                return spec.module.sample(jax.random.key(10), *full)

            z, pullback = jax.vjp(draw, *(params[i] for i in spec.implicit))
            return z, pullback(jnp.ones_like(z))

        with jax.debug_key_reuse(False):
            z, grads = draw_and_grads(params)
        _IMPLICIT[spec.name] = (
            np.asarray(z),
            dict(zip(spec.implicit, (np.asarray(g) for g in grads), strict=True)),
        )
    return _IMPLICIT[spec.name]


@pytest.mark.parametrize(
    ("spec", "index"),
    [
        pytest.param(
            s,
            i,
            id=f"{s.name}-{s.module.PARAMS[i]}",
            marks=family_group(s),
        )
        for s in SPECS
        for i in s.implicit
    ],
)
def test_implicit_gradient_matches_cdf_finite_differences(spec, index):
    """dz/dθ = −(∂F/∂θ)/p(z), with ∂F/∂θ by central differences of scipy's CDF."""
    z, grads = _draws_and_implicit_gradients(spec)
    dz = grads[index]
    step = 1e-6 * max(1.0, abs(spec.grad_params[index]))
    up, down = list(spec.grad_params), list(spec.grad_params)
    up[index] += step
    down[index] -= step
    d_cdf = (spec.scipy_dist(*up).cdf(z) - spec.scipy_dist(*down).cdf(z)) / (2 * step)
    reference = -d_cdf / spec.scipy_dist(*spec.grad_params).pdf(z)
    np.testing.assert_allclose(dz, reference, rtol=1e-4, atol=1e-7)


# ---------------------------------------------------------------- layer 5: extremes
def _extreme_strategy(spec):
    if spec.extreme_strategy is not None:
        return spec.extreme_strategy
    strategies = []
    for low, high in spec.extreme_params:
        if low > 0:
            strategies.append(st.floats(np.log(low), np.log(high)).map(np.exp))
        else:
            strategies.append(st.floats(low, high))
    return st.tuples(*strategies)


@with_specs(lambda spec: spec.extreme_params is not None or spec.extreme_strategy is not None)
def test_extreme_parameters_give_finite_samples_and_gradients(spec):
    @jax.jit
    def sample_and_grad(params):
        def total(ps):
            return jnp.sum(
                spec.module.sample(
                    jax.random.key(11), *ps, sample_shape=(64,), **spec.sample_kwargs
                )
            )

        return spec.module.sample(
            jax.random.key(11), *params, sample_shape=(64,), **spec.sample_kwargs
        ), jax.grad(total)(params)

    @given(_extreme_strategy(spec))
    def check(raw):
        params = tuple(
            jnp.asarray(np.broadcast_to(value, np.shape(example)), jnp.float64)
            for value, example in zip(raw, spec.params, strict=True)
        )
        with jax.debug_key_reuse(False):
            z, grads = sample_and_grad(params)
        assert np.all(np.isfinite(np.asarray(z))), f"non-finite sample at {raw}"
        for i in spec.diff_indices:
            assert np.all(np.isfinite(np.asarray(grads[i]))), f"non-finite d/d{i} at {raw}"

    check()


# ---------------------------------------------------------------- transformations, dtypes, shapes
@with_specs()
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtypes_and_shapes(spec, dtype):
    """Shapes and dtypes as traced (jax.eval_shape: what any compiled program returns), without
    compiling a program per family and dtype; the values are checked by the other tests."""
    module, params = spec.module, params_for(spec, dtype)
    statistics = [name for name in ("entropy", "mean", "variance") if hasattr(module, name)]

    def everything(key, params):
        z = module.sample(key, *params, sample_shape=(2, 3), **spec.sample_kwargs)
        return z, module.log_prob(z, *params), [getattr(module, n)(*params) for n in statistics]

    z, lp, moments = jax.eval_shape(everything, jax.random.key(12), params)
    assert z.shape == (2, 3, *spec.batch_shape, *spec.event_shape)
    assert z.dtype == dtype
    assert lp.shape == (2, 3, *spec.batch_shape)
    assert lp.dtype == dtype
    for name, value in zip(statistics, moments, strict=True):
        assert value.dtype == dtype, name


@with_specs()
def test_jit_vmap_grad(spec):
    module, params = spec.module, params_for(spec)
    statistics = [name for name in ("entropy", "mean", "variance") if hasattr(module, name)]
    keys = jax.random.split(jax.random.key(14), 4)

    # Every transformation in one compiled program (one per family, not one per transformation):
    # eager vmap and grad would compile every batched or differentiated primitive on its own.
    @jax.jit
    def transformed(key, keys, x, params):
        return {
            "sample": module.sample(key, *params, sample_shape=DRAWS, **spec.sample_kwargs),
            "vmap_sample": jax.vmap(lambda k: module.sample(k, *params, **spec.sample_kwargs))(
                keys
            ),
            "vmap_log_prob": jax.vmap(lambda x: module.log_prob(x, *params))(x),
            "grad_log_prob": jax.grad(lambda ps: jnp.sum(module.log_prob(x, *ps)))(params),
            **{name: getattr(module, name)(*params) for name in statistics},
            **{
                f"grad_{name}": jax.grad(lambda ps, n=name: jnp.sum(getattr(module, n)(*ps)))(
                    params
                )
                for name in statistics
            },
        }

    with jax.debug_key_reuse(False):
        key = jax.random.key(13)
        eager = module.sample(key, *params, sample_shape=DRAWS, **spec.sample_kwargs)
        out = transformed(key, keys, eager, params)
    np.testing.assert_allclose(np.asarray(out["sample"]), np.asarray(eager), rtol=1e-12)
    assert out["vmap_sample"].shape == (4, *spec.batch_shape, *spec.event_shape)
    np.testing.assert_allclose(
        np.asarray(out["vmap_log_prob"]),
        np.asarray(module.log_prob(eager, *params)),
        rtol=1e-10,
        atol=1e-12,
    )
    assert all(np.all(np.isfinite(np.asarray(out["grad_log_prob"][i]))) for i in spec.diff_indices)
    for name in statistics:
        fn = getattr(module, name)
        np.testing.assert_allclose(np.asarray(out[name]), np.asarray(fn(*params)), rtol=1e-12)
        assert all(np.all(np.isfinite(np.asarray(g))) for g in out[f"grad_{name}"]), name


# ---------------------------------------------------------------- bad input
@with_specs()
@pytest.mark.parametrize("not_a_key", [0, np.float32(1.0), jnp.ones(3), "seed"])
def test_non_key_is_a_type_error_naming_key(spec, not_a_key):
    with pytest.raises(TypeError, match="`key`"):
        spec.module.sample(not_a_key, *params_for(spec), **spec.sample_kwargs)


@pytest.mark.parametrize(
    ("spec", "bad", "name"),
    [
        pytest.param(s, bad, name, id=f"{s.name}-{name}-{j}", marks=family_group(s))
        for s in SPECS
        for j, (bad, name) in enumerate(s.bad_params)
    ],
)
def test_out_of_range_parameters_name_the_argument(spec, bad, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        spec.module.sample(jax.random.key(0), *bad, **spec.sample_kwargs)
    with pytest.raises(ValueError, match=f"`{name}`"):
        spec.module.log_prob(0.5, *bad)


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    try:
        return np.broadcast_shapes(shape, target) == target
    except ValueError:
        return False


@with_specs(lambda spec: spec.bad_params)
def test_checkify_path_catches_bad_values_inside_jit(spec):
    from reparam.checks import checked

    bad, name = spec.bad_params[0]
    good = params_for(spec)
    # The bad values at the good parameters' shapes where they broadcast: one compiled program
    # checks both.
    bad = tuple(
        jnp.broadcast_to(jnp.asarray(b, jnp.float64), g.shape)
        if _broadcasts_to(np.shape(b), g.shape)
        else jnp.asarray(b, jnp.float64)
        for b, g in zip(bad, good, strict=True)
    )
    fn = jax.jit(checked(lambda k, p: spec.module.sample(k, *p, **spec.sample_kwargs)))
    err, _ = fn(jax.random.key(0), bad)
    with pytest.raises(Exception, match=f"`{name}`"):
        err.throw()
    err, _ = fn(jax.random.key(0), good)
    err.throw()  # valid parameters pass


@with_specs(
    lambda spec: (
        len(spec.params) >= 2
        and spec.module.EVENT_NDIMS == 0
        and not getattr(spec.module, "PARAM_EVENT_NDIMS", None)
    )
)
def test_parameters_that_do_not_broadcast_are_a_value_error(spec):
    params = list(params_for(spec))
    params[0] = jnp.broadcast_to(params[0][..., :1], (2,))
    params[1] = jnp.broadcast_to(params[1][..., :1], (3,))
    with pytest.raises(ValueError, match="do not broadcast"):
        spec.module.sample(jax.random.key(0), *params, **spec.sample_kwargs)
