"""Tests run in float64 (docs/DESIGN.md) with key-reuse checking on; float32 is tested apart."""

import gc
import os

from tests import child

# Most of the suite's time is XLA compiling many small programs, not running them.
# child.FAST_COMPILE_FLAGS (LLVM at -O0, the legacy fusion emitters, ...) compile them faster
# from the same HLO. Set before jax starts its backend; child processes inherit them, except
# those started with `child.env(optimized=True)`: the family identities (sample ==
# transform(noise) bit for bit) and one end-to-end training run are checked as users compile.
os.environ["XLA_FLAGS"] = " ".join(
    (os.environ.get("XLA_FLAGS", ""), *child.FAST_COMPILE_FLAGS)
).strip()
# One XLA compilation cache for the whole session: the two xdist workers and every child process
# (the experiments' quick runs, the README's commands, the fault-injection runs) compile many of
# the same programs; each is compiled once and read back by the others. The cache lives only as
# long as the session (a fresh `make test` compiles everything once, as CI does).
child.share_compilation_cache()

import jax  # noqa: E402 (after the XLA settings above, which jax reads at import)
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_debug_key_reuse", True)


def _lower_in_one_mlir_context() -> None:
    """Every lowering of this session builds its MLIR module in one context.

    jax makes a new MLIR context for each program it lowers and loads every dialect into it:
    about 4 ms per program, a tenth of the suite's CPU time (py-spy, tests/test_kl.py), and each
    context stays alive with the cached lowering that holds it (1.6 GB resident for
    tests/test_kl.py alone, 0.6 GB with one context). The programs are the same text either
    way; a context only interns their types and attributes. Test-session only: the child
    processes (experiments as users run them) lower as jax does. jax 0.10 (pyproject.toml);
    without `make_ir_context` nothing changes.
    """
    from jax._src.interpreters import mlir

    make_ir_context = getattr(mlir, "make_ir_context", None)
    if make_ir_context is None:
        return
    context = make_ir_context()
    mlir.make_ir_context = lambda: context


_lower_in_one_mlir_context()

# Hypothesis: deterministic (derandomized) so CI is repeatable, no per-example deadline (jit).
settings.register_profile("reparam", max_examples=30, deadline=None, derandomize=True)
settings.load_profile("reparam")


# Tracing and lowering create many short-lived objects, which at Python's default thresholds
# (700 allocations) start thousands of young-generation collections; the objects that live
# (imported modules, collected tests, jax's caches) are rescanned by every full collection.
# Fewer, larger young collections, and everything alive after collection moved out of the
# collector's sight (`pytest_collection_finish`): garbage is still collected, less often.
gc.set_threshold(50_000, 20, 20)


@pytest.fixture
def key():
    return jax.random.key(0)


# `make test` runs `pytest -n 2 --dist loadgroup --no-loadscope-reorder`: work units (a test, or
# all tests of one xdist_group) go to the two workers in collection order, each worker taking the
# next when it is done. The longest units come first (child processes that train, then the
# families' groups of tests/test_families.py and the groups of tests sharing a module-scoped
# fixture, below), so that short tests fill in at the end and both
# workers finish together; by default xdist orders groups by their number of tests, which says
# little about their cost.
LONG_MODULES = ("test_sharding.py", "test_multiprocess.py", "_experiment.py")
LONG_GROUPS = ("identity", "family-", "module-")


def _order(item: pytest.Item) -> int:
    if item.path.name.endswith(LONG_MODULES):
        return 0
    group = item.get_closest_marker("xdist_group")
    return 1 if group is not None and str(group.args[0]).startswith(LONG_GROUPS) else 2


def _uses_a_module_fixture(item: pytest.Item) -> bool:
    definitions = getattr(item, "_fixtureinfo", None)
    if definitions is None:
        return False
    return any(
        defs and defs[-1].scope == "module" for defs in definitions.name2fixturedefs.values()
    )


# tryfirst: before pytest-xdist's own hook, which reads the xdist_group marks into node ids.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A module-scoped fixture (an experiment's quick run, a module's large sample) runs once per
    # worker that runs one of its tests: the tests that use one go to one worker together, unless
    # they name a group of their own.
    for item in items:
        if item.get_closest_marker("xdist_group") is None and _uses_a_module_fixture(item):
            item.add_marker(pytest.mark.xdist_group(f"module-{item.path.stem}"))
    items.sort(key=_order)  # stable: file order otherwise


def pytest_collection_finish(session: pytest.Session) -> None:
    gc.collect()
    gc.freeze()
