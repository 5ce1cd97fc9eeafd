"""Argument checks shared by the whole library: families, estimators, objectives, VI, layers.

Key discipline: a function that needs randomness takes the key as its first argument, named
`key` (`sample(key, loc, scale)`, `estimators.pathwise(key, f, ...)`, `train.fit(key, state,
...)`, `vi.fit(key, log_joint, ...)`). A function that needs a key only on some paths (say
`kl.kl_divergence`, which draws only for its Monte-Carlo fallback) takes it as a keyword-only
`key=None`, equinox's convention, so that the deterministic call reads without one.

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
import numbers
from collections.abc import Callable
from types import ModuleType
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


def _is_int(value: Any) -> bool:
    """A Python or numpy integer, not a bool (True is not a count)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def sample_shape(where: str, shape: Any, name: str = "sample_shape") -> Shape:
    """`shape` as a tuple of non-negative ints: an int n means (n,).

    Strings, floats, bools and nested sequences are refused (no silent int() of "12" to (1, 2)
    or of 2.7 to 2): TypeError for the wrong kind, ValueError for a negative size.
    """
    items = (shape,) if _is_int(shape) else shape
    if isinstance(shape, str | bytes) or not isinstance(items, tuple | list):
        raise TypeError(
            f"{where}: `{name}` must be a tuple of non-negative ints or an int, got "
            f"{type(shape).__name__} {shape!r}"
        )
    bad = [d for d in items if not _is_int(d)]
    if bad:
        raise TypeError(
            f"{where}: `{name}` must be a tuple of non-negative ints or an int, got {shape!r} "
            f"({bad[0]!r} is a {type(bad[0]).__name__})"
        )
    if any(d < 0 for d in items):
        raise ValueError(f"{where}: `{name}` must be non-negative, got {tuple(items)}")
    return tuple(int(d) for d in items)


def broadcastable(where: str, name: str, shape: Shape, batch_shape: Shape, event_shape: Shape = ()):
    """Require an argument of `shape` (an ε or an x) to broadcast with the parameters.

    Its trailing `len(event_shape)` axes must equal `event_shape` and the rest must broadcast
    with `batch_shape`; otherwise a ValueError names the argument, the expected and the actual
    shape (instead of JAX's bare broadcasting error deep in the arithmetic).
    """
    shape, n = tuple(shape), len(event_shape)
    expected = f"(..., {', '.join(map(str, event_shape))})" if n else "(...)"
    ok = len(shape) >= n and shape[len(shape) - n :] == tuple(event_shape)
    if ok:
        try:
            np.broadcast_shapes(shape[: len(shape) - n], tuple(batch_shape))
        except ValueError:
            ok = False
    if not ok:
        raise ValueError(
            f"{where}: `{name}` must have shape {expected} with the leading part broadcastable "
            f"to the parameters' batch shape {tuple(batch_shape)}"
            + (f" and event shape {tuple(event_shape)}" if n else "")
            + f"; got shape {shape}"
        )


def choice(where: str, name: str, value: Any, choices: tuple) -> Any:
    """`value` if it is one of `choices`, else a ValueError listing them."""
    if value not in choices:
        raise ValueError(f"{where}: `{name}` must be one of {tuple(choices)}; got {value!r}")
    return value


def count(where: str, name: str, value: Any, minimum: int = 1, why: str = "") -> int:
    """`value` as an int >= `minimum` (a sample count, a rank, a number of steps).

    TypeError unless it is a Python/numpy int (not a bool, not 2.0); ValueError below `minimum`,
    with `why` appended to say what needs the minimum.
    """
    if not _is_int(value):
        raise TypeError(
            f"{where}: `{name}` must be a Python int, got {type(value).__name__} {value!r}"
        )
    if value < minimum:
        raise ValueError(f"{where}: `{name}` must be >= {minimum}{why}; got {value}")
    return int(value)


def function(where: str, name: str, fn: Any) -> Callable:
    """`fn` if it is callable, else a TypeError."""
    if not callable(fn):
        raise TypeError(f"{where}: `{name}` must be callable, got {type(fn).__name__} {fn!r}")
    return fn


def family(where: str, module: Any, *needs: str, name: str = "family") -> ModuleType:
    """`module` if it has the callables `needs` (a family module such as reparam.normal)."""
    missing = [need for need in needs if not callable(getattr(module, need, None))]
    if missing:
        raise TypeError(
            f"{where}: `{name}` must be a family module such as reparam.normal with "
            f"{', '.join(needs)}; {module!r} lacks {', '.join(missing)}"
        )
    return module


def per_sample(where: str, name: str, values: Any, num_samples: int) -> Array:
    """`values` (what `name` returned) as an array with a leading axis of `num_samples`."""
    values = jnp.asarray(values)
    if values.ndim < 1 or values.shape[0] != num_samples:
        raise ValueError(
            f"{where}: `{name}` must return one value per sample, an array of shape "
            f"(num_samples={num_samples}, ...); got shape {values.shape}"
        )
    return values


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


__all__ = [
    "broadcast",
    "broadcastable",
    "checked",
    "choice",
    "count",
    "event_size",
    "family",
    "finite",
    "float_dtype",
    "function",
    "key",
    "less",
    "noise_dtype",
    "numeric",
    "per_sample",
    "positive",
    "require",
    "sample_shape",
]
