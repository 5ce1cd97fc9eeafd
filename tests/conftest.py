"""Tests run in float64 (DESIGN.md) with key-reuse checking on; float32 is tested explicitly."""

import jax
import pytest
from hypothesis import settings

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_debug_key_reuse", True)

# Hypothesis: deterministic (derandomized) so CI is repeatable, no per-example deadline (jit).
settings.register_profile("reparam", max_examples=30, deadline=None, derandomize=True)
settings.load_profile("reparam")


@pytest.fixture
def key():
    return jax.random.key(0)
