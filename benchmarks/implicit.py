"""Implicit-gradient families' sampling speed: reparam against jax.random, NumPyro, TFP-on-JAX,
distrax and PyTorch, all in one process.

    python -m benchmarks.implicit [--n 1000000] [--dirichlet-n 100000] [--slow-factor 10]
                                  [--repeats 5] [--warmup 1] [--clock wall|process]
                                  [--only NAME ...] [--rows ROW ...] [--json PATH] [--quick]

Rows: gamma (concentration 0.7 and 3.0, rate 1), beta (both concentrations 0.7, resp. 3.0),
Dirichlet (10 dims, all concentrations 0.7, resp. 3.0; --dirichlet-n draws of 10), Student-t
(df 2.7 and 30, loc 0, scale 1), von Mises (loc 0, concentration 0.7 and 3.0). float32, one key,
scalar (vector for Dirichlet) parameters, CPU. Two workloads per row:

  draws   z = sample(key, params, (N,)), the draws alone;
  grad    d/dθ mean(f(z)) with respect to the concentration (df for Student-t): the draws plus the
          pathwise (implicit) gradient; f(z) = z² (cos z for von Mises).

Contenders: reparam; jax.random (jax.random.gamma/beta/dirichlet/t: gradients through jax's own
implicit rule; like NumPyro's, its CPU sampler loops over elements one by one, so both draw
N/--slow-factor per call to keep the run short, and their rates are per draw as for the others);
NumPyro (`rsample`); TFP-on-JAX (`tfd.X(...).sample(N, seed=key)`); distrax
(Gamma, Beta, Dirichlet, VonMises); torch (`torch.distributions.X(...).rsample`, then
`backward()` for the gradient, float32 tensors, `torch.set_num_threads` = usable cores). A
contender without the family (or without reparameterized samples for it) shows "—"; one that
fails to import or to run is reported as skipped, not fatal.

Timing: every callable runs `--warmup` times (compilation), then `--repeats` rounds; in each round
every contender runs once, in a rotated order, timed to `block_until_ready` (torch is eager and
synchronous). Reported: millions of draws per second from the median time, and the median of the
per-round paired ratios reparam ÷ TFP (>1: reparam is faster) and reparam ÷ torch. `--json`
writes every raw time with the machine description, so the README's table is backed by a record.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.sampling import CLOCKS, _version, machine_lines

DIRICHLET_DIMS = 10

# (family, concentration) rows, in the table's order.
ROWS: list[tuple[str, float]] = [
    ("gamma", 0.7),
    ("gamma", 3.0),
    ("beta", 0.7),
    ("beta", 3.0),
    ("dirichlet", 0.7),
    ("dirichlet", 3.0),
    ("student_t", 2.7),
    ("student_t", 30.0),
    ("von_mises", 0.7),
    ("von_mises", 3.0),
]
CONTENDERS = ["reparam", "jax.random", "numpyro", "tfp", "distrax", "torch"]
VERSIONS = {
    "reparam": "reparam",
    "jax.random": None,
    "numpyro": "numpyro",
    "tfp": "tfp-nightly",
    "distrax": "distrax",
    "torch": "torch",
}

# A JAX sampler: (key, concentration, n) -> draws; concentration is a scalar (a vector of
# DIRICHLET_DIMS for dirichlet).
Sampler = Callable[[jax.Array, jax.Array, int], jax.Array]


# ---------------------------------------------------------------- contenders' samplers
def _reparam(family: str) -> Sampler | None:
    from reparam import beta, dirichlet, gamma, student_t, von_mises

    return {
        "gamma": lambda key, a, n: gamma.sample(key, a, 1.0, (n,)),
        "beta": lambda key, a, n: beta.sample(key, a, a, (n,)),
        "dirichlet": lambda key, a, n: dirichlet.sample(key, a, (n,)),
        "student_t": lambda key, a, n: student_t.sample(key, a, 0.0, 1.0, (n,)),
        "von_mises": lambda key, a, n: von_mises.sample(key, 0.0, a, (n,)),
    }[family]


def _jax_random(family: str) -> Sampler | None:
    return {
        "gamma": lambda key, a, n: jax.random.gamma(key, a, (n,), a.dtype),
        "beta": lambda key, a, n: jax.random.beta(key, a, a, (n,), a.dtype),
        "dirichlet": lambda key, a, n: jax.random.dirichlet(key, a, (n,), a.dtype),
        "student_t": lambda key, a, n: jax.random.t(key, a, (n,), a.dtype),
    }.get(family)


def _numpyro(family: str) -> Sampler | None:
    import numpyro.distributions as dist

    make = {
        "gamma": lambda a: dist.Gamma(a, 1.0),
        "beta": lambda a: dist.Beta(a, a),
        "dirichlet": dist.Dirichlet,
        "student_t": lambda a: dist.StudentT(a, 0.0, 1.0),
    }.get(family)  # numpyro's VonMises has no rsample
    return None if make is None else (lambda key, a, n: make(a).rsample(key, (n,)))


def _tfp(family: str) -> Sampler | None:
    from tensorflow_probability.substrates import jax as tfp

    tfd = tfp.distributions
    make = {
        "gamma": lambda a: tfd.Gamma(a, 1.0),
        "beta": lambda a: tfd.Beta(a, a),
        "dirichlet": tfd.Dirichlet,
        "student_t": lambda a: tfd.StudentT(a, 0.0, 1.0),
        "von_mises": lambda a: tfd.VonMises(0.0, a),
    }[family]
    return lambda key, a, n: make(a).sample(n, seed=key)


def _distrax(family: str) -> Sampler | None:
    import distrax

    make = {
        "gamma": lambda a: distrax.Gamma(a, 1.0),
        "beta": lambda a: distrax.Beta(a, a),
        "dirichlet": distrax.Dirichlet,
        "von_mises": lambda a: distrax.VonMises(0.0, a),
    }.get(family)
    return None if make is None else (lambda key, a, n: make(a).sample(seed=key, sample_shape=n))


JAX_FACTORIES: dict[str, Callable[[str], Sampler | None]] = {
    "reparam": _reparam,
    "jax.random": _jax_random,
    "numpyro": _numpyro,
    "tfp": _tfp,
    "distrax": _distrax,
}


def _objective(family: str, z):
    xp = jnp if isinstance(z, jax.Array) else None
    if xp is None:  # torch
        import torch

        return torch.mean(torch.cos(z)) if family == "von_mises" else torch.mean(z * z)
    return jnp.mean(jnp.cos(z)) if family == "von_mises" else jnp.mean(z * z)


def jax_callables(sampler: Sampler, family: str, n: int) -> dict[str, Callable]:
    draws = jax.jit(lambda key, a: sampler(key, a, n))
    grad = jax.jit(jax.grad(lambda a, key: _objective(family, sampler(key, a, n))))
    return {"draws": draws, "grad": lambda key, a: grad(a, key)}


def torch_callables(family: str, n: int) -> dict[str, Callable] | None:
    import torch

    dist = torch.distributions
    make = {
        "gamma": lambda a: dist.Gamma(a, torch.ones_like(a)),
        "beta": lambda a: dist.Beta(a, a),
        "dirichlet": dist.Dirichlet,
        "student_t": lambda a: dist.StudentT(a, torch.zeros_like(a), torch.ones_like(a)),
    }.get(family)  # torch's VonMises has no rsample
    if make is None:
        return None

    def draws(_, a):
        with torch.no_grad():
            return make(a).rsample((n,))

    def grad(_, a):
        a = a.detach().requires_grad_(True)
        _objective(family, make(a).rsample((n,))).backward()
        return a.grad

    return {"draws": draws, "grad": grad}


# ---------------------------------------------------------------- measurement
@dataclass
class Cell:
    """One (row, workload): each contender's times over the rounds."""

    family: str
    concentration: float
    workload: str
    draws_per_call: dict[str, int]
    times: dict[str, list[float]]

    def rate(self, name: str) -> float:
        return self.draws_per_call[name] / statistics.median(self.times[name]) / 1e6

    def paired(self, name: str, baseline: str) -> float:
        """Median over rounds of the rate ratio name/baseline: > 1 means `name` is faster."""
        pairs = zip(self.times[baseline], self.times[name], strict=True)
        scale = self.draws_per_call[name] / self.draws_per_call[baseline]
        return statistics.median(scale * b / t for b, t in pairs)


def _block(x):
    return jax.block_until_ready(x) if not hasattr(x, "detach") else x


def measure(fns: dict[str, Callable], args: dict[str, tuple], repeats, warmup, clock):
    for name, fn in fns.items():
        for _ in range(warmup):
            _block(fn(*args[name]))
    names = list(fns)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            start = clock()
            _block(fns[name](*args[name]))
            times[name].append(clock() - start)
    return times


def _finite(out) -> bool:
    if hasattr(out, "detach"):
        return bool(np.all(np.isfinite(out.detach().numpy())))
    return all(np.all(np.isfinite(np.asarray(leaf))) for leaf in jax.tree.leaves(out))


SLOW = ("jax.random", "numpyro")  # a sequential per-element loop on CPU: timed at fewer draws
_CACHE: dict[tuple[str, str, int], dict[str, Callable] | None] = {}  # one compile per family


def _callables(name: str, family: str, n: int) -> dict[str, Callable] | None:
    if (name, family, n) not in _CACHE:
        if name == "torch":
            _CACHE[name, family, n] = torch_callables(family, n)
        else:
            sampler = JAX_FACTORIES[name](family)
            fns = None if sampler is None else jax_callables(sampler, family, n)
            _CACHE[name, family, n] = fns
    return _CACHE[name, family, n]


def run_row(family, concentration, args, available, notes) -> list[Cell]:
    shape = (DIRICHLET_DIMS,) if family == "dirichlet" else ()
    conc = jnp.full(shape, concentration, jnp.float32)
    key = jax.random.key(0)
    per_workload: dict[str, dict[str, Callable]] = {"draws": {}, "grad": {}}
    call_args: dict[str, tuple] = {}
    sizes: dict[str, int] = {}
    for name in available:
        n = args.dirichlet_n if family == "dirichlet" else args.n
        if name in SLOW:
            n = max(1, n // args.slow_factor)
        sizes[name] = n * (DIRICHLET_DIMS if family == "dirichlet" else 1)
        try:
            fns = _callables(name, family, n)
            if name == "torch":
                import torch

                call_args[name] = (None, torch.full(shape, concentration, dtype=torch.float32))
            else:
                call_args[name] = (key, conc)
        except Exception as error:  # an API change in a nightly must not stop the others
            notes.append(f"{family} {concentration}: {name} failed to build: {error!r:.200}")
            continue
        if fns is None:
            continue
        for workload, fn in fns.items():
            try:
                start = time.perf_counter()
                out = fn(*call_args[name])
                _block(out)
                print(
                    f"  {family} {concentration} {workload} {name}: first call (compile) "
                    f"{time.perf_counter() - start:.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
                if not _finite(out):
                    notes.append(f"{family} {concentration} {workload}: {name} non-finite output")
                per_workload[workload][name] = fn
            except Exception as error:
                notes.append(
                    f"{family} {concentration} {workload}: {name} failed and was skipped: "
                    f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"
                )
    cells = []
    for workload, fns in per_workload.items():
        times = measure(fns, call_args, args.repeats, args.warmup, CLOCKS[args.clock])
        cells.append(Cell(family, concentration, workload, sizes, times))
        print(f"  {family} {concentration} {workload}: done", file=sys.stderr, flush=True)
    return cells


# ---------------------------------------------------------------- report
def _fmt(cells: dict[str, Cell], name: str) -> str:
    parts = []
    for workload in ("draws", "grad"):
        cell = cells.get(workload)
        parts.append(f"{cell.rate(name):.2f}" if cell and name in cell.times else "—")
    return "—" if parts == ["—", "—"] else "/".join(parts)


def _ratio(cells: dict[str, Cell], baseline: str) -> str:
    parts = []
    for workload in ("draws", "grad"):
        cell = cells.get(workload)
        ok = cell and "reparam" in cell.times and baseline in cell.times
        parts.append(f"{cell.paired('reparam', baseline):.2f}" if ok else "—")
    return "—" if parts == ["—", "—"] else "/".join(parts)


def table(all_cells: list[Cell], contenders: list[str]) -> list[str]:
    head = " | ".join(contenders)
    lines = [
        f"| family, conc | {head} | reparam ÷ TFP | reparam ÷ torch |",
        "|---" * (len(contenders) + 3) + "|",
    ]
    for family, concentration in dict.fromkeys((c.family, c.concentration) for c in all_cells):
        cells = {
            c.workload: c
            for c in all_cells
            if c.family == family and c.concentration == concentration
        }
        label = {"student_t": "Student-t df", "von_mises": "von Mises"}.get(family, family)
        row = [f"{label} {concentration:g}"] + [_fmt(cells, name) for name in contenders]
        row += [_ratio(cells, "tfp"), _ratio(cells, "torch")]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="draws per call")
    parser.add_argument("--dirichlet-n", type=int, default=100_000, help="Dirichlet draws (x10)")
    parser.add_argument(
        "--slow-factor",
        type=int,
        default=10,
        help="jax.random and NumPyro (per-element loops: time ∝ N) draw N/this per call",
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--clock", default="wall", choices=list(CLOCKS))
    parser.add_argument("--only", nargs="*", default=None, help=f"contenders ({CONTENDERS})")
    parser.add_argument(
        "--rows", nargs="*", default=None, help="families to run (gamma beta dirichlet ...)"
    )
    parser.add_argument("--json", default=None, help="write the raw times and machine here")
    parser.add_argument(
        "--quick", action="store_true", help="tiny run (checks the script, not the speed)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.dirichlet_n, args.repeats, args.warmup = 2000, 200, 3, 1
        args.slow_factor = 1

    available, missing = [], []
    for name in CONTENDERS:
        if args.only and name not in args.only:
            continue
        try:
            if name == "torch":
                import os

                import torch

                torch.set_num_threads(len(os.sched_getaffinity(0)))
            elif name != "jax.random":
                JAX_FACTORIES[name]("von_mises" if name != "numpyro" else "gamma")
            available.append(name)
        except ImportError as error:
            missing.append(f"{name} ({error.name or error})")

    command = f"python -m benchmarks.implicit {' '.join(argv or sys.argv[1:])}".rstrip()
    header = [
        f"# Implicit-gradient families: {args.n:,} draws per call ({args.dirichlet_n:,} x "
        f"{DIRICHLET_DIMS} for Dirichlet), float32, median of {args.repeats} interleaved rounds "
        f"after {args.warmup} warm-up call(s), {args.clock} clock; jax.random and NumPyro "
        f"at 1/{args.slow_factor} of the draws (their per-element loops cost ∝ N)",
        "",
        *machine_lines(),
        "- contenders: " + ", ".join(f"{name} {_version(VERSIONS[name])}" for name in available),
    ]
    if missing:
        header.append(f"- not installed (skipped): {', '.join(missing)}")
    header.append(f"- command: {command}")
    print("\n".join(header), flush=True)

    notes: list[str] = []
    cells: list[Cell] = []
    for family, concentration in ROWS:
        if args.rows and family not in args.rows:
            continue
        cells += run_row(family, concentration, args, available, notes)

    print(
        "\nMillions of draws per second, draws / draws + gradient (median); reparam ÷ X: "
        "median of per-round paired time ratios, > 1 means reparam is faster.\n"
    )
    print("\n".join(table(cells, available)))
    if notes:
        print("\nNotes:")
        print("\n".join(f"- {note}" for note in notes))
    if args.json:
        record = {
            "header": header,
            "args": vars(args),
            "notes": notes,
            "cells": [
                {
                    "family": c.family,
                    "concentration": c.concentration,
                    "workload": c.workload,
                    "draws_per_call": c.draws_per_call,
                    "times_s": c.times,
                    "mdraws_per_s": {name: c.rate(name) for name in c.times},
                }
                for c in cells
            ],
        }
        with open(args.json, "w") as f:
            json.dump(record, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
