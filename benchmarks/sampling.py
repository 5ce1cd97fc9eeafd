"""Normal sampling speed: reparam.normal.sample against raw jax.random and three libraries.

    python -m benchmarks.sampling [--n 4000000] [--repeats 21] [--warmup 3] [--dtype float32]
                                  [--clock wall|process] [--only NAME ...] [--compare-hlo]
                                  [--json benchmarks/records/sampling.json]

Two workloads, each for N draws from N(loc, scale²) with scalar loc and scale, under `jax.jit`:

  forward   z = sample(key, loc, scale, (N,)), the draws alone;
  grad      jax.grad(lambda loc, scale: mean(z²))(loc, scale): the draws plus the pathwise
            gradient to both parameters (the reparameterization trick's whole cost).

Contenders (all in this one process, on the same device, with the same key and parameters):

  reparam      reparam.normal.sample(key, loc, scale, sample_shape=(N,))
  jax.random   loc + scale * jax.random.normal(key, (N,)) written by hand: the baseline
  distrax      distrax.Normal(loc, scale).sample(seed=key, sample_shape=(N,))
  numpyro      numpyro.distributions.Normal(loc, scale).rsample(key, (N,))
  tfp          tensorflow_probability.substrates.jax Normal(loc, scale).sample((N,), seed=key)

Peers missing from the environment are reported as such (they are in the `bench` extra).
Timing: each compiled function runs `--warmup` times, then `--repeats` rounds; in each round
every contender runs once, in a rotated order, timed to `block_until_ready`. Interleaving keeps
slow drifts of a shared machine from favouring whoever ran first; the table reports the median
rate, the ratio of medians to jax.random, and the median of the per-round paired ratios.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

Sampler = Callable[[jax.Array, jax.Array, jax.Array, int], jax.Array]


# ---------------------------------------------------------------- contenders
def _reparam() -> Sampler:
    from reparam import normal

    return lambda key, loc, scale, n: normal.sample(key, loc, scale, sample_shape=(n,))


def _raw() -> Sampler:
    return lambda key, loc, scale, n: loc + scale * jax.random.normal(key, (n,), loc.dtype)


def _distrax() -> Sampler:
    import distrax

    return lambda key, loc, scale, n: distrax.Normal(loc, scale).sample(seed=key, sample_shape=(n,))


def _numpyro() -> Sampler:
    import numpyro.distributions as dist

    return lambda key, loc, scale, n: dist.Normal(loc, scale).rsample(key, (n,))


def _tfp() -> Sampler:
    from tensorflow_probability.substrates import jax as tfp

    normal = tfp.distributions.Normal
    return lambda key, loc, scale, n: normal(loc, scale).sample((n,), seed=key)


CONTENDERS: dict[str, tuple[Callable[[], Sampler], str | None]] = {
    # name: (factory, distribution whose version is reported)
    "reparam": (_reparam, "reparam"),
    "jax.random": (_raw, None),
    "distrax": (_distrax, "distrax"),
    "numpyro": (_numpyro, "numpyro"),
    "tfp": (_tfp, "tfp-nightly"),
}
BASELINE = "jax.random"


def forward_fn(sampler: Sampler, n: int) -> Callable:
    return jax.jit(lambda key, loc, scale: sampler(key, loc, scale, n))


def grad_fn(sampler: Sampler, n: int) -> Callable:
    def objective(loc, scale, key):
        return jnp.mean(sampler(key, loc, scale, n) ** 2)

    grad = jax.grad(objective, argnums=(0, 1))
    return jax.jit(lambda key, loc, scale: grad(loc, scale, key))


WORKLOADS: dict[str, Callable[[Sampler, int], Callable]] = {"forward": forward_fn, "grad": grad_fn}
TITLES = {"forward": "draws only", "grad": "draws + pathwise gradient of mean(z²)"}


# ---------------------------------------------------------------- measurement
@dataclass
class Result:
    name: str
    times: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    def spread(self) -> float:
        """Interquartile range relative to the median."""
        q1, _, q3 = statistics.quantiles(self.times, n=4)
        return (q3 - q1) / self.median


CLOCKS: dict[str, Callable[[], float]] = {
    # wall: what a user waits for. process: CPU seconds of all this process's threads, steadier
    # on a shared machine where other jobs steal cores (CPU backend only; a GPU's work is not
    # counted in it).
    "wall": time.perf_counter,
    "process": time.process_time,
}


def _run_once(fn: Callable, args: tuple, clock: Callable[[], float]) -> float:
    start = clock()
    jax.block_until_ready(fn(*args))
    return clock() - start


def measure(
    fns: dict[str, Callable],
    args: tuple,
    repeats: int,
    warmup: int,
    clock: Callable[[], float] = time.perf_counter,
) -> list[Result]:
    for fn in fns.values():  # compile, then warm caches and thread pools
        for _ in range(warmup):
            jax.block_until_ready(fn(*args))
    names = list(fns)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(_run_once(fns[name], args, clock))
    return [Result(name, times[name]) for name in names]


def sanity_check(fns: dict[str, Callable], args: tuple, workload: str) -> list[str]:
    """Same key and formula: reparam must equal the hand-written baseline bit for bit (so the
    comparison is like for like); every contender must return finite values. A peer that fails
    to run (an API change in a nightly) is dropped from `fns` with a note, not fatal."""
    notes = []
    outputs = {}
    for name, fn in list(fns.items()):
        try:
            outputs[name] = jax.tree.map(np.asarray, fn(*args))
        except Exception as error:  # a broken peer must not stop the others' measurement
            if name in ("reparam", BASELINE):
                raise
            del fns[name]
            notes.append(
                f"{workload}: {name} failed and was skipped: {type(error).__name__}: "
                f"{str(error).splitlines()[0][:200]}"
            )
    for name, out in outputs.items():
        if not all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(out)):
            raise RuntimeError(f"{name} ({workload}) returned non-finite values")
    if "reparam" in outputs and BASELINE in outputs:
        same = all(
            np.array_equal(a, b)
            for a, b in zip(
                jax.tree.leaves(outputs["reparam"]), jax.tree.leaves(outputs[BASELINE]), strict=True
            )
        )
        notes.append(f"{workload}: reparam output identical to jax.random's: {same}")
    return notes


def _optimized_hlo(fn: Callable, args: tuple) -> str:
    """Compiled HLO without metadata and instruction names, to compare programs."""
    text = fn.lower(*args).compile().as_text()
    # The program starts at the first computation; before it are module attributes and the
    # source-location tables (file and function names), which differ between call sites.
    text = text[text.index("\n%") :]
    text = re.sub(r", metadata=\{[^}]*\}", "", text)
    text = re.sub(r"%[\w.\-]+", "%_", text)
    return "\n".join(line for line in text.splitlines() if line.strip())


# ---------------------------------------------------------------- report
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args],
            capture_output=True,
            text=True,
            check=True,
            cwd=os.path.dirname(__file__),
        ).stdout.strip()

    if os.environ.get("REPARAM_GIT_COMMIT"):  # a copy of the tree without .git (remote runs)
        return os.environ["REPARAM_GIT_COMMIT"]
    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + (" (+ uncommitted changes)" if dirty else "")


def _version(distribution: str | None) -> str:
    if distribution is None:
        return jax.__version__
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        if distribution == "reparam":  # run from a source tree that is not installed
            import reparam

            return reparam.__version__
        return "?"


def machine_lines() -> list[str]:
    device = jax.devices()[0]
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return [
        f"- date: {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {_cpu_model()}, {os.cpu_count()} cores ({affinity} usable), "
        f"load average {load} at start",
        f"- device: {device.platform} ({device.device_kind}), jax {jax.__version__}, "
        f"jaxlib {importlib.metadata.version('jaxlib')}, numpy {np.__version__}, "
        f"Python {platform.python_version()}",
        f"- git commit: {_git_commit()}",
    ]


def table(results: list[Result], n: int) -> list[str]:
    by_name = {r.name: r for r in results}
    base = by_name.get(BASELINE)
    lines = [
        "| library | samples/s (median) | ms/call (median) | × jax.random (medians) "
        "| × jax.random (paired) | IQR/median |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        rate = n / r.median
        if base is not None:
            ratio = f"{base.median / r.median:.3f}"
            paired = statistics.median(b / t for b, t in zip(base.times, r.times, strict=True))
            paired_text = f"{paired:.3f}"
        else:
            ratio = paired_text = "–"
        lines.append(
            f"| {r.name} | {rate:.3e} | {1e3 * r.median:.2f} | {ratio} | {paired_text} "
            f"| {100 * r.spread():.1f}% |"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=4_000_000, help="draws per call")
    parser.add_argument("--repeats", type=int, default=21, help="timed rounds (>= 15)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument(
        "--clock",
        default="wall",
        choices=list(CLOCKS),
        help="wall time, or CPU time of the process (steadier on a loaded CPU-only machine)",
    )
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        help=f"contenders to run (default: all of {list(CONTENDERS)})",
    )
    parser.add_argument(
        "--compare-hlo",
        action="store_true",
        help="also say whether reparam and jax.random "
        "compile to the same optimized HLO (metadata and names stripped)",
    )
    parser.add_argument(
        "--json",
        default=None,
        help="also write the run's record (header, raw times, checks) here, e.g. "
        "benchmarks/records/sampling.json, which `python -m benchmarks.report` renders",
    )
    args = parser.parse_args(argv)
    if args.repeats < 15:
        parser.error("--repeats must be >= 15 (medians of fewer rounds are too noisy)")
    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)

    samplers: dict[str, Sampler] = {}
    missing = []
    for name, (factory, _) in CONTENDERS.items():
        if args.only and name not in args.only:
            continue
        try:
            samplers[name] = factory()
        except ImportError as error:
            missing.append(f"{name} ({error.name or error})")

    dtype = jnp.dtype(args.dtype)
    call_args = (jax.random.key(0), jnp.asarray(0.5, dtype), jnp.asarray(2.0, dtype))
    started, started_cpu = time.perf_counter(), time.process_time()
    header = [
        f"# Normal sampling: {args.n:,} draws per call, {args.dtype}, median of "
        f"{args.repeats} interleaved rounds after {args.warmup} warm-up calls, {args.clock} "
        "clock",
        "",
        *machine_lines(),
    ]
    versions = ", ".join(f"{name} {_version(CONTENDERS[name][1])}" for name in samplers)
    header.append(f"- contenders: {versions}")
    if missing:
        header.append(f"- not installed (skipped): {', '.join(missing)}")
    header.append(f"- command: python -m benchmarks.sampling {' '.join(argv or sys.argv[1:])}")
    header[-1] = header[-1].rstrip()
    print("\n".join(header), flush=True)
    notes: list[str] = []
    times: dict[str, dict[str, list[float]]] = {}
    for workload, make in WORKLOADS.items():
        fns = {name: make(sampler, args.n) for name, sampler in samplers.items()}
        notes += sanity_check(fns, call_args, workload)
        if args.compare_hlo and "reparam" in fns and BASELINE in fns:
            same = _optimized_hlo(fns["reparam"], call_args) == _optimized_hlo(
                fns[BASELINE], call_args
            )
            notes.append(f"{workload}: same optimized HLO as jax.random: {same}")
        results = measure(fns, call_args, args.repeats, args.warmup, CLOCKS[args.clock])
        times[workload] = {r.name: r.times for r in results}
    record = {
        "header": header,
        "args": vars(args),
        "times": times,
        "notes": notes,
        "wall_seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - started_cpu,
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
    }
    print("\n".join(render(record)[len(header) :]))
    if args.json:
        with open(args.json, "w") as f:
            f.write(json.dumps(record, indent=1) + "\n")


def render(record: dict) -> list[str]:
    """The markdown of a run (`--json`'s record): its header, a table per workload, the checks."""
    title, *rest = record["header"]
    lines = ["### " + title.lstrip("# "), *rest]
    for workload, times in record["times"].items():
        results = [Result(name, t) for name, t in times.items()]
        lines += ["", f"#### {workload}: {TITLES[workload]}", ""]
        lines += table(results, record["args"]["n"])
    end = ", ".join(f"{x:.1f}" for x in record["load_average_end"])
    lines += ["", f"Wall time {record['wall_seconds']:.0f} s; load average at the end {end}."]
    return [*lines, "", "Checks:", *(f"- {note}" for note in record["notes"])]


if __name__ == "__main__":
    main()
