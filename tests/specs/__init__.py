"""Family specs: what the generic contract tests in tests/test_families.py need to know.

Each module in this package defines `SPECS: list[FamilySpec]`; they are collected here, so a new
family adds one file and touches nothing shared.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def _xp(z):
    """numpy for scipy's quadrature, jax.numpy for sampled (possibly traced) z."""
    return jnp if isinstance(z, jax.Array) else np


# Test functions f for the global gradient check E[f(z)] (docs/DESIGN.md, testing layer 3), k = 1.
TEST_FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "z": lambda z: z,
    "z2": lambda z: z**2,
    "gauss": lambda z: _xp(z).exp(-(z**2)),
    "cos": lambda z: _xp(z).cos(z),
}


@dataclass(frozen=True)
class FamilySpec:
    """How to exercise one family.

    Attributes:
      module: the family module (reparam.<name>).
      params: example parameters in PARAMS order, batched (float64 numpy), all valid.
      scipy_dist: params -> frozen scipy.stats distribution (elementwise over the batch), for
        univariate families; None where scipy has no such distribution.
      grad_params: scalar parameters for the Monte-Carlo gradient check (univariate families).
      differentiable: indices of params that carry gradients (continuous ones).
      functions: names from TEST_FUNCTIONS whose expectation exists for this family.
      expectation: optional (f, params) -> E[f(z)] replacing scipy_dist(*params).expect(f).
      has_noise: whether the family has a parameter-free ε (noise/transform).
      transform_jvp_is_pathwise: False where transform's JVP is an implicit gradient on purpose
        (a mixture's component choice), so finite differences at fixed ε cannot check it.
      implicit: per-sample implicit gradients to compare with finite differences of scipy's CDF
        (indices into params); empty for explicit families.
      bad_params: (params, name) pairs that must raise ValueError naming `name`.
      extreme_params: per-parameter (low, high) ranges for hypothesis, log-uniform when both > 0.
      extreme_strategy: a hypothesis strategy of parameter tuples, replacing extreme_params
        where parameters constrain each other (low < high).
      batch_shape, event_shape: of a sample drawn with `params`.
      noise_event_shape: event shape of ε when it differs from the sample's (mixtures).
      sample_kwargs: extra keyword arguments for sample/transform.
    """

    module: ModuleType
    params: tuple[np.ndarray, ...]
    scipy_dist: Callable[..., Any] | None = None
    grad_params: tuple[float, ...] | None = None
    differentiable: tuple[int, ...] | None = None
    functions: tuple[str, ...] = ("z", "z2", "gauss", "cos")
    expectation: Callable[[Callable, tuple], float] | None = None
    has_noise: bool = True
    transform_jvp_is_pathwise: bool = True
    implicit: tuple[int, ...] = ()
    bad_params: tuple[tuple[tuple, str], ...] = ()
    extreme_params: tuple[tuple[float, float], ...] | None = None
    extreme_strategy: Any = None
    batch_shape: tuple[int, ...] = (3,)
    event_shape: tuple[int, ...] = ()
    noise_event_shape: tuple[int, ...] | None = None
    sample_kwargs: dict[str, Any] = field(default_factory=dict)
    mc_samples: int = 200_000
    id: str | None = None

    @property
    def name(self) -> str:
        return self.id or self.module.__name__.split(".")[-1]

    @property
    def noise_event(self) -> tuple[int, ...]:
        return self.event_shape if self.noise_event_shape is None else self.noise_event_shape

    @property
    def diff_indices(self) -> tuple[int, ...]:
        if self.differentiable is not None:
            return self.differentiable
        return tuple(range(len(self.params)))


def all_specs() -> list[FamilySpec]:
    specs: list[FamilySpec] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        specs.extend(module.SPECS)
    return specs
