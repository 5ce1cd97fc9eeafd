"""Tests run in float64 (docs/DESIGN.md) with key-reuse checking on; float32 is tested explicitly."""

import os

# Most of the suite's time is XLA compiling many small programs, not running them. LLVM at -O0
# compiles them faster (test_families.py's beta/dirichlet/kumaraswamy cases: 84 -> 61 CPU-s)
# from the same HLO. Set before jax starts its backend; child processes inherit it.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"
).strip()

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
