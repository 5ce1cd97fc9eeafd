"""Child Python processes for the tests: experiments run as users run them, and runs that need a
fresh jax (fake device counts, several processes, SIGKILL).

A child gets the test session's environment (tests/conftest.py puts XLA's LLVM backend at -O0
there: these short runs are mostly compilation, which -O0 makes cheaper, and the HLO is the
same) on the CPU backend, with matplotlib's Agg backend and without the session's float64
switch: experiments run in float32, as users run them. `optimized=True` drops the -O0 flag: the
checks that must hold for programs as users compile them (a family's sample == transform(noise)
bit for bit, one end-to-end training run) run at XLA's default optimization level.
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


# Set by tests/conftest.py for the session and, unless `optimized`, inherited by children.
UNOPTIMIZED_FLAG = "--xla_backend_optimization_level=0"


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

    optimized: compile at XLA's default optimization level (drop the session's -O0 flag).
    """
    base = {**os.environ, "JAX_PLATFORMS": "cpu", "MPLBACKEND": "Agg"}
    base.pop("JAX_ENABLE_X64", None)
    if optimized:
        flags = [f for f in base.get("XLA_FLAGS", "").split() if f != UNOPTIMIZED_FLAG]
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
