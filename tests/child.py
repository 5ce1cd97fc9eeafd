"""Child Python processes for the tests: experiments run as users run them, and runs that need a
fresh jax (fake device counts, several processes, SIGKILL).

A child gets the test session's environment on the CPU backend, with matplotlib's Agg backend
and without the session's float64 switch: experiments run in float32, as users run them. The
session's XLA settings (`FAST_COMPILE_FLAGS`, set by tests/conftest.py) carry over: these short
runs are mostly compilation, which they make cheaper from the same HLO. `optimized=True` drops
them: the checks that must hold for programs as users compile them (a family's sample ==
transform(noise) bit for bit, one end-to-end training run) compile with XLA's defaults.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# Set by tests/conftest.py for the session and, unless `optimized`, inherited by children: XLA
# settings that compile the suite's many small programs faster from the same HLO (the suite is
# compile-bound). Measured on tests/test_families.py's gamma, beta and normal cases, one process
# on the 2-core machine: 97.8 CPU-s with LLVM at -O0 alone, 72.7 with the legacy (non-MLIR)
# fusion emitters as well, 57 with all five.
FAST_COMPILE_FLAGS = (
    "--xla_backend_optimization_level=0",
    "--xla_cpu_use_fusion_emitters=false",
    "--xla_cpu_parallel_codegen_split_count=1",
    "--xla_llvm_disable_expensive_passes=true",
    "--xla_cpu_enable_concurrency_optimized_scheduler=false",
)


CACHE_VARIABLE = "JAX_COMPILATION_CACHE_DIR"


def share_compilation_cache() -> None:
    """Point this process, its xdist workers and its children at one JAX compilation cache.

    The first process of the session (pytest's controller, or the only process without xdist)
    creates a temporary directory and removes it at exit; processes it starts inherit the
    variables (JAX reads them at its first compilation), so a program compiled by one worker or
    child is loaded, not recompiled, by the others. Every program is cached (no minimum compile
    time or size): most of the suite's are small and compiled in fractions of a second, which is
    exactly the cost repeated across processes. A cache directory set by the user is kept as is.
    """
    if CACHE_VARIABLE in os.environ:
        return
    directory = tempfile.mkdtemp(prefix="reparam-test-xla-cache-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    os.environ[CACHE_VARIABLE] = directory
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "-1"


def env(optimized: bool = False, **extra: str) -> dict[str, str]:
    """The child's environment; `XLA_FLAGS` in `extra` is added to the session's flags.

    optimized: compile as users do, at XLA's defaults (drop the session's FAST_COMPILE_FLAGS).
    """
    base = {**os.environ, "JAX_PLATFORMS": "cpu", "MPLBACKEND": "Agg"}
    base.pop("JAX_ENABLE_X64", None)
    if optimized:
        flags = [f for f in base.get("XLA_FLAGS", "").split() if f not in FAST_COMPILE_FLAGS]
        base["XLA_FLAGS"] = " ".join(flags)
    if "XLA_FLAGS" in extra:
        extra["XLA_FLAGS"] = f"{base.get('XLA_FLAGS', '')} {extra['XLA_FLAGS']}".strip()
    return {**base, **extra}


def run(
    args: list[str], timeout: float = 600, optimized: bool = False, **extra_env: str
) -> subprocess.CompletedProcess:
    """Run `python ARGS` in the repository root; assert that it exits 0 (stderr's tail if not)."""
    completed = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env(optimized, **extra_env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert completed.returncode == 0, f"python {' '.join(args)}:\n{completed.stderr[-3000:]}"
    return completed


def popen(args: list[str], **extra_env: str) -> subprocess.Popen:
    """Start `python ARGS` in the repository root with pipes for stdout and stderr."""
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env(**extra_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
