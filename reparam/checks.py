"""Argument checks shared by every family.

Concrete values (plain arrays, and the values seen under `jax.grad`) are checked eagerly and a
bad one raises a `ValueError`/`TypeError` naming the function, the argument, what was expected
and what came. Inside `jax.jit` values are abstract, so the same checks run only when the caller
opts in with :func:`checked`, which functionalizes them through `jax.experimental.checkify`:

    >>> err, z = jax.jit(reparam.checks.checked(reparam.normal.sample))(key, 0.0, -1.0)
    >>> err.throw()  # ValueError: reparam.normal.sample: `scale` must be > 0 ...

Shapes are always static, so broadcasting and key checks run everywhere, jit included.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

Array = jax.Array
Shape = tuple[int, ...]

_TRACED_CHECKS = contextvars.ContextVar("reparam_traced_checks", default=False)


def checked(fn: Callable[..., Any]) -> Callable[..., tuple[checkify.Error, Any]]:
    """Return `fn` with value checks enabled on traced arrays.

    The result returns `(error, output)`; call `error.throw()` to raise the first failed check.
    Wrap the un-jitted function (`jax.jit(checked(f))`), so that tracing happens with checks on.
    """

    @functools.wraps(fn)
    def with_traced_checks(*args, **kwargs):
        token = _TRACED_CHECKS.set(True)
        try:
            return fn(*args, **kwargs)
        finally:
            _TRACED_CHECKS.reset(token)

    return checkify.checkify(with_traced_checks, errors=checkify.user_checks)


def _concrete(value: Any) -> np.ndarray | None:
    """The value as numpy if it is known now (also under grad/jvp), else None (jit/vmap)."""
    if isinstance(value, jax.core.Tracer):
        concrete = value.to_concrete_value()
        return None if concrete is None else np.asarray(concrete)
    return np.asarray(value)


def _describe(value: Any) -> str:
    dtype = getattr(value, "dtype", type(value).__name__)
    shape = getattr(value, "shape", None)
    return f"{dtype}{list(shape)}" if shape is not None else f"{dtype} {value!r}"


def key(key: Any, where: str) -> Array:
    """Return `key` if it is a PRNG key (typed, or a legacy uint32[2]); else raise TypeError."""
    dtype = getattr(key, "dtype", None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise TypeError(
                f"{where}: `key` must be a single PRNG key (shape ()), got a batch of shape "
                f"{key.shape}; use jax.vmap over keys, or pass sample_shape instead"
            )
        return key
    if dtype == jnp.uint32 and getattr(key, "shape", None) == (2,):
        return key
    raise TypeError(
        f"{where}: `key` must be a PRNG key from jax.random.key(seed), got {_describe(key)}"
    )


def float_dtype(*values: Any) -> np.dtype:
    """Common floating dtype of the parameters (ints and bools become the default float)."""
    return jnp.result_type(float, *values)


def noise_dtype(dtype: Any = None) -> np.dtype:
    """The dtype for ε: as given, else JAX's default float (float32 unless x64 is enabled)."""
    dtype = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"noise `dtype` must be a floating dtype, got {dtype}")
    return dtype


def numeric(where: str, name: str, value: Any) -> Array:
    """`value` as a jax array, or a TypeError naming `name` if it is not numbers."""
    try:
        array = jnp.asarray(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{where}: `{name}` must be an array of numbers, got {value!r}") from error
    if not (jnp.issubdtype(array.dtype, jnp.number) or array.dtype == jnp.bool_):
        raise TypeError(f"{where}: `{name}` must be an array of numbers, got {_describe(value)}")
    return array


def broadcast(
    where: str, event_ndims: dict[str, int] | None = None, **params: Any
) -> tuple[list[Array], Shape]:
    """Cast `params` to one float dtype and check their batch shapes broadcast.

    Args:
      where: the public function name used in error messages, e.g. "reparam.normal.sample".
      event_ndims: trailing event dimensions per parameter (0 when absent): 1 for a vector
        `loc`, 2 for a `scale_tril`; these are excluded from the batch shape.
      **params: the parameters, in order.

    Returns:
      The parameters as arrays of a common float dtype, and the broadcast batch shape.
    """
    event_ndims = event_ndims or {}
    arrays = [numeric(where, name, value) for name, value in params.items()]
    dtype = float_dtype(*arrays)
    arrays = [array.astype(dtype) for array in arrays]
    batch_shapes = []
    for (name, _), array in zip(params.items(), arrays, strict=True):
        ndims = event_ndims.get(name, 0)
        if array.ndim < ndims:
            raise ValueError(
                f"{where}: `{name}` must have at least {ndims} dimension(s) "
                f"(its event shape), got shape {array.shape}"
            )
        batch_shapes.append(array.shape[: array.ndim - ndims])
        require(where, name, array, lambda x, xp: ~xp.isnan(x), "a number, not NaN")
    try:
        batch_shape = jnp.broadcast_shapes(*batch_shapes)
    except ValueError:
        described = ", ".join(
            f"`{name}` {shape}" for name, shape in zip(params, batch_shapes, strict=True)
        )
        raise ValueError(f"{where}: parameter batch shapes do not broadcast: {described}") from None
    return arrays, tuple(batch_shape)


def sample_shape(where: str, shape: Any) -> Shape:
    """Normalize `sample_shape` (an int or a sequence of non-negative ints) to a tuple."""
    if isinstance(shape, int | np.integer):
        shape = (int(shape),)
    try:
        shape = tuple(int(d) for d in shape)
    except TypeError:
        raise TypeError(f"{where}: `sample_shape` must be a tuple of ints, got {shape!r}") from None
    if any(d < 0 for d in shape):
        raise ValueError(f"{where}: `sample_shape` must be non-negative, got {shape}")
    return shape


def require(
    where: str,
    name: str,
    value: Any,
    predicate: Callable[[Any, Any], Any],
    expected: str,
) -> None:
    """Raise ValueError unless `predicate(value)` holds everywhere (NaN never holds).

    `predicate(x, xp)` gets numpy (`xp=np`) for concrete values and jax.numpy for traced ones;
    `expected` completes the sentence "`name` must be ...".
    """
    concrete = _concrete(value)
    if concrete is not None:
        ok = np.asarray(predicate(concrete, np), dtype=bool)
        if not ok.all():
            index = tuple(int(i) for i in np.argwhere(~ok)[0])
            bad = np.broadcast_to(concrete, ok.shape)[index]
            at = f" at index {index} of shape {ok.shape}" if ok.ndim else ""
            raise ValueError(f"{where}: `{name}` must be {expected}; got {bad.item()!r}{at}")
    elif _TRACED_CHECKS.get():
        value = jnp.asarray(value)
        ok = jnp.asarray(predicate(value, jnp), dtype=bool)
        checkify.check(
            jnp.all(ok),
            f"{where}: `{name}` must be {expected}; got {{bad}}",
            bad=jnp.where(ok, jnp.zeros((), value.dtype), value).ravel()[jnp.argmin(ok.ravel())],
        )


def positive(where: str, name: str, value: Any) -> None:
    require(where, name, value, lambda x, xp: x > 0, "> 0 (and finite-or-inf, not NaN)")


def finite(where: str, name: str, value: Any) -> None:
    require(where, name, value, lambda x, xp: xp.isfinite(x), "finite")


def less(where: str, low_name: str, low: Any, high_name: str, high: Any) -> None:
    """Require low < high elementwise."""
    concrete_low, concrete_high = _concrete(low), _concrete(high)
    if concrete_low is not None and concrete_high is not None:
        ok = np.asarray(concrete_low < concrete_high)
        if not ok.all():
            index = tuple(int(i) for i in np.argwhere(~ok)[0])
            lo = np.broadcast_to(concrete_low, ok.shape)[index]
            hi = np.broadcast_to(concrete_high, ok.shape)[index]
            at = f" at index {index}" if ok.ndim else ""
            raise ValueError(
                f"{where}: `{low_name}` must be < `{high_name}`; got {low_name}={lo.item()!r}, "
                f"{high_name}={hi.item()!r}{at}"
            )
    elif _TRACED_CHECKS.get():
        checkify.check(
            jnp.all(jnp.asarray(low) < jnp.asarray(high)),
            f"{where}: `{low_name}` must be < `{high_name}`",
        )


def event_size(where: str, name: str, value: Array, expected: int, axis: int = -1) -> None:
    if value.shape[axis] != expected:
        raise ValueError(
            f"{where}: `{name}` must have size {expected} on axis {axis} (the event axis), "
            f"got shape {value.shape}"
        )
