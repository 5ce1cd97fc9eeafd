"""The family contract (docs/DESIGN.md), checked for every family in tests/specs/.

Layers: 1 identity, 2 local derivatives (check_grads), 3 global Monte-Carlo gradients against
scipy quadrature with a standard-error tolerance, 4 log_prob / moments / KS against scipy and
implicit gradients against finite differences of scipy's CDF, 5 hypothesis extremes; plus
jit/vmap/grad, dtypes, shapes and bad input.
"""

from __future__ import annotations

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from jax.test_util import check_grads
from scipy import stats

from tests.specs import TEST_FUNCTIONS, FamilySpec, all_specs

SPECS = all_specs()
IDS = [spec.name for spec in SPECS]
Z_THRESHOLD = 5.0  # |MC mean − reference| ≤ 5 standard errors: fixed keys, so deterministic


def params_for(spec: FamilySpec, dtype=np.float64) -> tuple[jax.Array, ...]:
    return tuple(jnp.asarray(p, dtype) for p in spec.params)


def with_specs(predicate=lambda spec: True):
    chosen = [spec for spec in SPECS if predicate(spec)]
    return pytest.mark.parametrize("spec", chosen, ids=[spec.name for spec in chosen])


# ---------------------------------------------------------------- layer 1: identity
@with_specs(lambda spec: spec.has_noise)
def test_sample_is_transform_of_noise_bit_for_bit(spec):
    module, params = spec.module, params_for(spec)
    key = jax.random.key(1)
    with jax.debug_key_reuse(False):
        z = module.sample(key, *params, sample_shape=(4,), **spec.sample_kwargs)
        eps = module.noise(key, (4, *spec.batch_shape, *spec.noise_event), z.dtype)
        z_again = module.transform(eps, *params, **spec.sample_kwargs)
    np.testing.assert_array_equal(np.asarray(z), np.asarray(z_again))


@with_specs()
def test_same_key_same_bits_other_key_other_bits(spec):
    module, params = spec.module, params_for(spec)
    with jax.debug_key_reuse(False):
        a = module.sample(jax.random.key(3), *params, sample_shape=(5,), **spec.sample_kwargs)
        b = module.sample(jax.random.key(3), *params, sample_shape=(5,), **spec.sample_kwargs)
    c = module.sample(jax.random.key(4), *params, sample_shape=(5,), **spec.sample_kwargs)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))


# ---------------------------------------------------------------- layer 2: local derivatives
@with_specs(lambda spec: spec.has_noise and spec.transform_jvp_is_pathwise)
def test_check_grads_transform(spec):
    module, params = spec.module, params_for(spec)
    eps = module.noise(jax.random.key(2), (*spec.batch_shape, *spec.noise_event), jnp.float64)
    diff = spec.diff_indices

    def transform_of(*diff_params):
        full = list(params)
        for i, p in zip(diff, diff_params, strict=True):
            full[i] = p
        return module.transform(eps, *full, **spec.sample_kwargs)

    check_grads(
        transform_of,
        tuple(params[i] for i in diff),
        order=2,
        modes=("fwd", "rev"),
        atol=1e-5,
        rtol=1e-5,
        eps=1e-6,
    )


@with_specs(lambda spec: not spec.sample_kwargs.get("straight_through", False))
def test_check_grads_log_prob(spec):
    module, params = spec.module, params_for(spec)
    with jax.debug_key_reuse(False):
        x = module.sample(jax.random.key(5), *params, sample_shape=(3,))
    diff = spec.diff_indices

    def log_prob_of(*diff_params):
        full = list(params)
        for i, p in zip(diff, diff_params, strict=True):
            full[i] = p
        return module.log_prob(x, *full)

    check_grads(
        log_prob_of,
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
                        # one worker per family under `--dist loadgroup`, so the compiled
                        # per-sample gradients are shared by that family's tests
                        marks=pytest.mark.xdist_group(f"mc-{spec.name}"),
                    )
                )
    return cases


def _expectation(spec: FamilySpec, f, params) -> float:
    if spec.expectation is not None:
        return spec.expectation(f, params)
    return spec.scipy_dist(*params).expect(f, epsabs=1e-13, epsrel=1e-12, limit=500)


_GRADIENTS: dict[tuple[str, int], dict[str, np.ndarray]] = {}


def _per_sample_gradients(spec: FamilySpec, index: int, f_name: str) -> np.ndarray:
    """Per-sample ∂f(z_n)/∂θ_index for n < N: θ_index is broadcast to (N,) so z_n sees θ_n.

    One compiled program per (family, parameter) serves every test function (compilation is
    most of the cost), cached for the other f's of the same parameter.
    """
    cache_key = (spec.name, index)
    if cache_key not in _GRADIENTS:
        params = [jnp.asarray(p, jnp.float64) for p in spec.grad_params]

        @jax.jit
        def grads(theta_vector):
            def draw(theta):
                full = list(params)
                full[index] = theta
                return spec.module.sample(jax.random.key(7), *full, **spec.sample_kwargs)

            z, pullback = jax.vjp(draw, theta_vector)
            # ∂f(z_n)/∂θ_n = f'(z_n)·∂z_n/∂θ_n: one pullback per f through the same sample.
            return {
                name: pullback(jax.grad(lambda z: jnp.sum(TEST_FUNCTIONS[name](z)))(z))[0]
                for name in spec.functions
            }

        with jax.debug_key_reuse(False):
            result = grads(jnp.full((spec.mc_samples,), params[index]))
        _GRADIENTS[cache_key] = {name: np.asarray(g) for name, g in result.items()}
    return _GRADIENTS[cache_key][f_name]


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
        x = np.asarray(spec.module.sample(jax.random.key(8), *params, sample_shape=(7,)))
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
    z = np.asarray(
        spec.module.sample(jax.random.key(9), *params, sample_shape=(20_000,), **spec.sample_kwargs)
    )
    batch = np.broadcast_shapes(*(np.shape(p) for p in spec.params))
    for index in np.ndindex(batch):
        element_params = tuple(np.broadcast_to(p, batch)[index] for p in spec.params)
        column = z[(slice(None), *index)]
        p_value = stats.kstest(column, spec.scipy_dist(*element_params).cdf).pvalue
        assert p_value > 1e-4, f"KS p={p_value:.2g} at {element_params}"


@pytest.mark.parametrize(
    ("spec", "index"),
    [pytest.param(s, i, id=f"{s.name}-{s.module.PARAMS[i]}") for s in SPECS for i in s.implicit],
)
def test_implicit_gradient_matches_cdf_finite_differences(spec, index):
    """dz/dθ = −(∂F/∂θ)/p(z), with ∂F/∂θ by central differences of scipy's CDF."""
    params = [jnp.asarray(p, jnp.float64) for p in spec.grad_params]
    n = 64

    def draw(theta_vector):
        full = list(params)
        full[index] = theta_vector
        return spec.module.sample(jax.random.key(10), *full)

    theta = jnp.full((n,), params[index])
    with jax.debug_key_reuse(False):
        z = np.asarray(draw(theta))
        dz = np.asarray(jax.grad(lambda t: jnp.sum(draw(t)))(theta))
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
    module, params = spec.module, params_for(spec, dtype)
    z = module.sample(jax.random.key(12), *params, sample_shape=(2, 3), **spec.sample_kwargs)
    assert z.shape == (2, 3, *spec.batch_shape, *spec.event_shape)
    assert z.dtype == dtype
    lp = module.log_prob(z, *params)
    assert lp.shape == (2, 3, *spec.batch_shape)
    assert lp.dtype == dtype
    for name in ("entropy", "mean", "variance"):
        fn = getattr(module, name, None)
        if fn is not None:
            assert fn(*params).dtype == dtype, name


@with_specs()
def test_jit_vmap_grad(spec):
    module, params = spec.module, params_for(spec)
    jitted = jax.jit(lambda k, p: module.sample(k, *p, sample_shape=(3,), **spec.sample_kwargs))
    with jax.debug_key_reuse(False):
        key = jax.random.key(13)
        eager = module.sample(key, *params, sample_shape=(3,), **spec.sample_kwargs)
        np.testing.assert_allclose(np.asarray(jitted(key, params)), np.asarray(eager), rtol=1e-12)
    keys = jax.random.split(jax.random.key(14), 4)
    batched = jax.vmap(lambda k: module.sample(k, *params, **spec.sample_kwargs))(keys)
    assert batched.shape[0] == 4
    lp = jax.jit(jax.vmap(lambda x: module.log_prob(x, *params)))(eager)
    np.testing.assert_allclose(
        np.asarray(lp), np.asarray(module.log_prob(eager, *params)), rtol=1e-10, atol=1e-12
    )
    grads = jax.grad(lambda ps: jnp.sum(module.log_prob(eager, *ps)))(params)
    assert all(np.all(np.isfinite(np.asarray(grads[i]))) for i in spec.diff_indices)
    for name in ("entropy", "mean", "variance"):
        fn = getattr(module, name, None)
        if fn is not None:
            np.testing.assert_allclose(
                np.asarray(jax.jit(fn)(*params)), np.asarray(fn(*params)), rtol=1e-12
            )
            grads = jax.grad(lambda ps: jnp.sum(fn(*ps)))(params)
            assert all(np.all(np.isfinite(np.asarray(g))) for g in grads)


# ---------------------------------------------------------------- bad input
@with_specs()
@pytest.mark.parametrize("not_a_key", [0, np.float32(1.0), jnp.ones(3), "seed"])
def test_non_key_is_a_type_error_naming_key(spec, not_a_key):
    with pytest.raises(TypeError, match="`key`"):
        spec.module.sample(not_a_key, *params_for(spec), **spec.sample_kwargs)


@pytest.mark.parametrize(
    ("spec", "bad", "name"),
    [
        pytest.param(s, bad, name, id=f"{s.name}-{name}-{j}")
        for s in SPECS
        for j, (bad, name) in enumerate(s.bad_params)
    ],
)
def test_out_of_range_parameters_name_the_argument(spec, bad, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        spec.module.sample(jax.random.key(0), *bad, **spec.sample_kwargs)
    with pytest.raises(ValueError, match=f"`{name}`"):
        spec.module.log_prob(0.5, *bad)


@with_specs(lambda spec: spec.bad_params)
def test_checkify_path_catches_bad_values_inside_jit(spec):
    from reparam.checks import checked

    bad, name = spec.bad_params[0]
    bad = tuple(jnp.asarray(p, jnp.float64) for p in bad)
    fn = jax.jit(checked(lambda k, p: spec.module.sample(k, *p, **spec.sample_kwargs)))
    err, _ = fn(jax.random.key(0), bad)
    with pytest.raises(Exception, match=f"`{name}`"):
        err.throw()
    err, _ = fn(jax.random.key(0), params_for(spec))
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
