"""How the costs grow: train steps/s vs batch size and vs K, samples/s vs N, compile time, memory.

    python -m benchmarks.scaling [--quick] [--repeats 5] [--out benchmarks] [--only NAME ...]

Sections (each printed as a markdown table; raw numbers go to the record --json, by default
benchmarks/records/scaling.json, which `python -m benchmarks.report` renders into
benchmarks/README.md, and plots to <out>/scaling_*.png):

  batch    the paper's VAE (784-200-200-50 tanh, analytic KL, Adam) on binarized MNIST, one
           compiled epoch (`reparam.train.make_train_epoch`: a lax.scan over the steps) against
           the Flax-example style loop (a jitted step called from Python once per step with a
           host batch), batch 32 … 4096. Steps/s, examples/s, CPU seconds per step, FLOPs per
           step (XLA's cost analysis), the fraction of the measured matmul FLOP/s, compile time.
  k        the IWAE (same networks) trained on the K-sample bound, K = 1 … 5000, batch 20, the
           decoder evaluated 500 samples at a time under jax.checkpoint for K > 500
           (`train.chunked_over_samples`), against the unchunked objective where it fits;
           steps/s, K·B samples/s, XLA's temporary memory, compile time.
  samples  `reparam.normal.sample` draws/s vs N = 10^3 … 10^7 against `loc + scale *
           jax.random.normal` (its peer in the same run).
  memory   peak resident memory (the child process's own max RSS) of the K = 5000 NLL evaluation
           (100 examples, chunk 500) and of an IWAE K = 5000 train step, chunked and unchunked
           (and chunked with the DReG gradient), next to a process that only builds the model.
  `--gradient-temporaries K BATCH CHUNK` (alone): XLA's temporaries of the compiled IWAE-K
           gradient for the standard, STL and DReG estimators, chunked and unchunked.
  profile  where a batch-100 train step's time goes: the whole step, forward only, forward and
           backward, the Adam update, the noise draws, and an empty scanned step.

Times are medians over `--repeats` runs after a warm-up (compilation) call; "cpu s/step" is
process CPU time (all threads), steadier than wall time on a shared machine. `--quick` runs a
subset in about a minute. Machine, jax version, load average and git commit are printed first.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

DIM, HIDDEN, LATENT = 784, (200, 200), 50
SECTIONS = ("batch", "k", "samples", "memory", "profile")
RECORD = Path(__file__).resolve().parent / "records" / "scaling.json"


# ---------------------------------------------------------------- timing
def timed(run: Callable[[], Any], repeats: int) -> tuple[float, float, float]:
    """(median wall s, median CPU s, first-call wall s) of `run`, which must block."""
    tic = time.perf_counter()
    run()
    first = time.perf_counter() - tic
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), first


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log y against log x (the exponent of a power law)."""
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def matmul_flops(repeats: int, n: int = 1024) -> tuple[float, float]:
    """(FLOP per wall second, FLOP per CPU second) of a float32 n×n matmul: the compute limit
    of this machine as measured (per CPU second is the steadier one on a shared machine)."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    wall, cpu, _ = timed(lambda: f(a).block_until_ready(), max(repeats, 7))
    return 2 * n**3 / wall, 2 * n**3 / cpu


def mlp_flops(batch: int, k: int = 1, train: bool = True) -> float:
    """Matmul FLOPs of the paper's model for one step: 2·multiply-adds, ×3 for the backward
    pass (two matmuls per forward one); the decoder runs on K·B latents. Elementwise work (tanh,
    softplus, noise, Adam) is not counted."""
    h1, h2 = HIDDEN
    encoder = DIM * h1 + h1 * h2 + h2 * 2 * LATENT
    decoder = LATENT * h2 + h2 * h1 + h1 * DIM
    forward = 2 * (batch * encoder + k * batch * decoder)
    return 3 * forward if train else forward


def flops_of(compiled) -> float:
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost.get("flops", float("nan")))


# ---------------------------------------------------------------- models
@functools.cache
def _mnist() -> np.ndarray:
    from reparam.train import data

    try:
        return data.load_binarized_mnist(splits=("train",))["train"]
    except (FileNotFoundError, data.DataError):
        return (np.random.default_rng(0).random((50_000, DIM)) < 0.13).astype(np.uint8)


def load_train(num: int) -> np.ndarray:
    """uint8 (num, 784) binarized MNIST (random binary images if the files are absent)."""
    images = _mnist()
    reps = math.ceil(num / len(images))
    return np.concatenate([images] * reps)[:num] if reps > 1 else images[:num]


def build(
    model_name: str = "vae", k: int = 1, chunk: int | None = None, gradient: str = "standard"
):
    """(model, params, optimizer, loss_fn) of the paper's VAE or IWAE-K (with `gradient`:
    "standard", "stl" or "dreg", for the chunked IWAE)."""
    from reparam import nn as rnn
    from reparam import train
    from reparam.models import objectives

    encoder = rnn.GaussianMLPEncoder(LATENT, HIDDEN, "tanh")
    decoder = rnn.BernoulliMLPDecoder(DIM, tuple(reversed(HIDDEN)), "tanh")
    if model_name == "vae":
        model = rnn.VAE(encoder, decoder, kl="analytic")
    else:
        model = rnn.IWAE(encoder, decoder, num_samples=k)
    key = jax.random.key(0)
    params = model.init(jax.random.fold_in(key, 1), key, jnp.zeros((2, DIM), jnp.float32))
    optimizer = train.adam(1e-3)

    def loss_fn(params, batch, key):
        x = batch.astype(jnp.float32)
        if model_name == "iwae" and chunk is not None and chunk < k:
            log_likelihood = train.chunked_over_samples(
                lambda z: model.apply(params, x, z, method=rnn.VAE.log_likelihood), chunk
            )
            surrogate, bound = objectives.iwae(
                key, x, lambda x_: model.apply(params, x_, method=rnn.VAE.encode),
                log_likelihood, k, gradient=gradient,
            )  # fmt: skip
        else:
            surrogate, bound = model.apply(params, key, x)
        return -jnp.mean(surrogate), {"bound": jnp.mean(bound)}

    return model, params, optimizer, loss_fn


def epoch_bench(loss_fn, params, optimizer, batch: int, steps: int, repeats: int) -> dict:
    """One compiled epoch of `steps` steps: time, CPU time, compile time, FLOPs per step."""
    from reparam import train

    data = jax.device_put(load_train(batch * steps))
    epoch = train.make_train_epoch(loss_fn, optimizer, batch)
    key = jax.random.key(0)
    fresh = lambda: train.create_state(jax.tree.map(jnp.copy, params), optimizer)
    tic = time.perf_counter()
    compiled = epoch.lower(fresh(), data, key, 0).compile()
    compile_s = time.perf_counter() - tic
    states = [fresh()]

    def run():
        states[0], metrics = compiled(states[0], data, key, 1)
        jax.block_until_ready(metrics)

    wall, cpu, _ = timed(run, repeats)
    temp = compiled.memory_analysis().temp_size_in_bytes
    return {
        "steps": steps,
        "step_s": wall / steps,
        "cpu_step_s": cpu / steps,
        "steps_per_s": steps / wall,
        "compile_s": compile_s,
        "temp_bytes": temp,
    }


def python_loop_bench(loss_fn, params, optimizer, batch: int, steps: int, repeats: int) -> dict:
    """The Flax example's loop: a jitted step, called from Python per step with a host batch."""
    from reparam import train

    images = load_train(batch * steps)
    step = jax.jit(train.make_train_step(loss_fn, optimizer), donate_argnums=0)
    states = [train.create_state(jax.tree.map(jnp.copy, params), optimizer)]
    key = jax.random.key(0)
    order = np.random.default_rng(0)

    def run():
        perm = order.permutation(len(images))
        for i in range(steps):
            batch_ = images[perm[i * batch : (i + 1) * batch]]
            states[0], metrics = step(states[0], batch_, key)
        jax.block_until_ready(metrics)

    wall, cpu, _ = timed(run, repeats)
    return {"step_s": wall / steps, "cpu_step_s": cpu / steps, "steps_per_s": steps / wall}


# ---------------------------------------------------------------- sections
def section_batch(quick: bool, repeats: int) -> dict:
    batches = [32, 256, 2048] if quick else [32, 64, 128, 256, 512, 1024, 2048, 4096]
    _, params, optimizer, loss_fn = build("vae")
    rows = []
    for batch in batches:
        steps = max(4, min(64, 8192 // batch)) if not quick else max(2, min(16, 2048 // batch))
        scan = epoch_bench(loss_fn, params, optimizer, batch, steps, repeats)
        loop = python_loop_bench(loss_fn, params, optimizer, batch, steps, repeats)
        scan["flops_per_step"] = mlp_flops(batch)
        rows.append({"batch": batch, "scan": scan, "loop": loop})
        print(
            f"  batch {batch}: {scan['steps_per_s']:.1f} steps/s (loop {loop['steps_per_s']:.1f})",
            file=sys.stderr,
            flush=True,
        )
    big = [r for r in rows if r["batch"] >= 256]
    b, bb = [r["batch"] for r in rows], [r["batch"] for r in big]
    return {
        "rows": rows,
        "slope_wall": slope(b, [r["scan"]["step_s"] for r in rows]),
        "slope_cpu": slope(b, [r["scan"]["cpu_step_s"] for r in rows]),
        "slope_cpu_ge_256": slope(bb, [r["scan"]["cpu_step_s"] for r in big])
        if len(big) >= 2
        else float("nan"),
    }


def section_k(quick: bool, repeats: int, batch: int = 20, chunk: int = 500) -> dict:
    ks = [1, 100, 1000] if quick else [1, 10, 100, 500, 1000, 2000, 5000]
    rows = []
    for k in ks:
        steps = max(1, min(16, 4000 // k)) if not quick else max(1, min(4, 1000 // k))
        reps = max(1, repeats if k <= 1000 else min(repeats, 3))
        _, params, optimizer, loss_fn = build("iwae", k, chunk)
        chunked = epoch_bench(loss_fn, params, optimizer, batch, steps, reps)
        chunked["flops_per_step"] = mlp_flops(batch, k)
        row = {"k": k, "chunked": chunked}
        if chunk < k <= 2000:  # the unchunked objective, for comparison, where it fits
            _, params, optimizer, loss_fn = build("iwae", k, None)
            row["whole"] = epoch_bench(loss_fn, params, optimizer, batch, steps, reps)
        rows.append(row)
        print(f"  K {k}: {chunked['steps_per_s']:.2f} steps/s", file=sys.stderr, flush=True)
    big = [r for r in rows if r["k"] >= 100]
    kk = [r["k"] for r in big]
    return {
        "batch": batch,
        "chunk": chunk,
        "rows": rows,
        "slope_wall_ge_100": slope(kk, [r["chunked"]["step_s"] for r in big]),
        "slope_cpu_ge_100": slope(kk, [r["chunked"]["cpu_step_s"] for r in big]),
    }


def section_samples(quick: bool, repeats: int) -> dict:
    from reparam import normal

    ns = [10**3, 10**4, 10**5, 10**6] if quick else [10**3, 10**4, 10**5, 10**6, 10**7]
    loc, scale = jnp.float32(0.5), jnp.float32(2.0)
    rows = []
    for n in ns:
        fns = {
            "reparam": jax.jit(lambda key, n=n: normal.sample(key, loc, scale, sample_shape=(n,))),
            "jax.random": jax.jit(
                lambda key, n=n: loc + scale * jax.random.normal(key, (n,), jnp.float32)
            ),
        }
        row = {"n": n}
        for name, fn in fns.items():
            keys = iter(jax.random.split(jax.random.key(n), 10 * repeats + 10))
            wall, cpu, _ = timed(
                lambda fn=fn, keys=keys: fn(next(keys)).block_until_ready(), repeats
            )
            row[name] = {"s": wall, "cpu_s": cpu, "samples_per_s": n / wall}
        rows.append(row)
    big = [r for r in rows if r["n"] >= 10**5]
    return {
        "rows": rows,
        "slope_cpu": slope([r["n"] for r in rows], [r["reparam"]["cpu_s"] for r in rows]),
        "slope_cpu_ge_1e5": slope([r["n"] for r in big], [r["reparam"]["cpu_s"] for r in big]),
    }


MEMORY_CASES = {
    "baseline": "imports, data, the paper's model and its parameters only",
    "nll_k5000": "importance-sampled NLL, K = 5000, chunk 500, 100 examples (one batch)",
    "iwae_k5000_chunked": "IWAE K = 5000 train step, batch 20, chunk 500 under jax.checkpoint",
    "iwae_k5000_whole": "IWAE K = 5000 train step, batch 20, unchunked",
    "iwae_k5000_dreg_chunked": "IWAE K = 5000 DReG train step, batch 20, chunk 500 under "
    "jax.checkpoint",
}


def memory_child(case: str) -> None:
    """Run one memory case in this (child) process and print its own peak RSS as JSON."""
    from reparam import nn as rnn
    from reparam import train
    from reparam.models import evaluate

    # Random binary images: reading the MNIST text files alone peaks near 2 GB of RSS, which
    # would hide what is measured here.
    x = (np.random.default_rng(0).random((100, DIM)) < 0.13).astype(np.uint8)
    info: dict[str, Any] = {"case": case}
    if case == "nll_k5000":
        model, params, _, _ = build("vae")
        encode = lambda x: model.apply(params, x, method=rnn.VAE.encode)
        log_likelihood = lambda x, z: model.apply(params, x, z, method=rnn.VAE.log_likelihood)
        fn = evaluate.log_px_function(encode, log_likelihood, num_samples=5000, chunk_size=500)
        info["xla_temp_bytes"] = fn.lower(jax.random.key(0), jnp.asarray(x)).compile()
        info["xla_temp_bytes"] = info["xla_temp_bytes"].memory_analysis().temp_size_in_bytes
        tic = time.perf_counter()
        values = evaluate.importance_sampled_log_likelihood(
            jax.random.key(0), x, encode, log_likelihood, num_samples=5000, chunk_size=500
        )
        info["seconds"] = time.perf_counter() - tic
        info["nll"] = float(-values.mean())
    elif case.startswith("iwae"):
        chunk = 500 if case.endswith("chunked") else None
        gradient = "dreg" if "_dreg" in case else "standard"
        _, params, optimizer, loss_fn = build("iwae", 5000, chunk, gradient)
        step = jax.jit(train.make_train_step(loss_fn, optimizer), donate_argnums=0)
        state = train.create_state(params, optimizer)
        batch = jnp.asarray(x[:20])
        compiled = step.lower(state, batch, jax.random.key(0)).compile()
        info["xla_temp_bytes"] = compiled.memory_analysis().temp_size_in_bytes
        tic = time.perf_counter()
        state, metrics = compiled(state, batch, jax.random.key(0))
        jax.block_until_ready(metrics)
        info["seconds"] = time.perf_counter() - tic
    else:
        build("vae")
    info["max_rss_bytes"] = _peak_rss_bytes()
    print("MEMORY " + json.dumps(info), flush=True)


def _peak_rss_bytes() -> int:
    """This process's peak resident set size. Linux: VmHWM of /proc/self/status, the peak of this
    program's own address space. Not getrusage's ru_maxrss: the kernel carries it over from the
    parent's address space across fork and exec, so a child started after the parent read the
    MNIST files (1.8 GB) reported at least that."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def gradient_temporaries(k: int, batch: int, chunk: int) -> list[dict]:
    """XLA's temporaries of the compiled IWAE-K gradient of the paper's model (random binary
    inputs), per gradient estimator, with the decoder chunked (`train.chunked_over_samples`,
    under jax.checkpoint) and unchunked: compiled only, nothing runs."""
    from reparam import nn as rnn
    from reparam import train
    from reparam.models import objectives

    model, params, _, _ = build("iwae", k)
    x = jnp.asarray((np.random.default_rng(0).random((batch, DIM)) < 0.13).astype(np.float32))
    rows = []
    for gradient in ("standard", "stl", "dreg"):
        for size in (chunk, None):

            def loss(params, key, size=size, gradient=gradient):
                log_likelihood = lambda z: model.apply(params, x, z, method=rnn.VAE.log_likelihood)
                if size is not None:
                    log_likelihood = train.chunked_over_samples(log_likelihood, size)
                surrogate, _ = objectives.iwae(
                    key, x, lambda x_: model.apply(params, x_, method=rnn.VAE.encode),
                    log_likelihood, k, gradient=gradient,
                )  # fmt: skip
                return -jnp.mean(surrogate)

            compiled = jax.jit(jax.grad(loss)).lower(params, jax.random.key(0)).compile()
            temp = compiled.memory_analysis().temp_size_in_bytes
            rows.append({"gradient": gradient, "chunk": size, "xla_temp_bytes": temp})
            what = f"K {k}, batch {batch}, {gradient}, chunk {size}"
            print(f"{what}: {temp / 1e6:.1f} MB of temporaries", flush=True)
    return rows


def section_memory() -> dict:
    rows = []
    for case, what in MEMORY_CASES.items():
        command = [sys.executable, "-m", "benchmarks.scaling", "--memory-child", case]
        root = Path(__file__).resolve().parent.parent
        proc = subprocess.run(command, capture_output=True, text=True, cwd=root, timeout=1800)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("MEMORY ")]
        if proc.returncode != 0 or not lines:
            rows.append({"case": case, "what": what, "error": proc.stderr[-500:]})
            continue
        rows.append({**json.loads(lines[-1][len("MEMORY ") :]), "what": what})
        print(f"  memory {case}: {rows[-1]['max_rss_bytes'] / 1e6:.0f} MB", file=sys.stderr)
    return {"rows": rows}


def section_profile(repeats: int, batch: int = 100, steps: int = 50) -> dict:
    """Time the parts of one train step, each a scan of `steps` like the epoch, with the
    parameters and data as arguments (not constants XLA could fold)."""
    from reparam import normal, train

    _, params, optimizer, loss_fn = build("vae")
    data = jnp.asarray(load_train(batch))
    key = jax.random.key(0)
    state = train.create_state(params, optimizer)
    grads = jax.tree.map(jnp.ones_like, params)
    step = train.make_train_step(loss_fn, optimizer)

    def scan(body):
        """jit(carry, params, data, grads, state -> carry after `steps` of body)."""

        def run(carry, params, data, grads, state):
            def one(c, i):
                return body(c, i, params, data, grads, state), None

            return jax.lax.scan(one, carry, jnp.arange(steps))[0]

        return jax.jit(run)

    def adam(s, i, p, d, g, st):
        updates, opt_state = optimizer.update(g, s.opt_state, s.params)
        return train.TrainState(s.step, optax.apply_updates(s.params, updates), opt_state)

    def forward_backward(c, i, p, d, g, st):
        grad = jax.grad(lambda p_: loss_fn(p_, d, jax.random.fold_in(key, i))[0])(p)
        return jax.tree.map(jnp.add, c, grad)

    def noise(c, i, p, d, g, st):
        return c + normal.noise(jax.random.fold_in(key, i), (1, batch, LATENT), jnp.float32).sum()

    zero = jnp.zeros((), jnp.float32)
    parts = {
        "whole step (reparam.train)": (scan(lambda s, i, p, d, g, st: step(s, d, key)[0]), state),
        "forward (loss)": (
            scan(lambda c, i, p, d, g, st: c + loss_fn(p, d, jax.random.fold_in(key, i))[0]),
            zero,
        ),
        "forward + backward": (scan(forward_backward), jax.tree.map(jnp.zeros_like, params)),
        "Adam update": (scan(adam), state),
        "noise draws (B×d)": (scan(noise), zero),
        "empty scanned step": (scan(lambda c, i, p, d, g, st: c + 1.0), zero),
    }
    rows = []
    for name, (fn, init) in parts.items():
        args = (init, params, data, grads, state)
        compiled = fn.lower(*args).compile()
        wall, cpu, _ = timed(lambda: jax.block_until_ready(compiled(*args)), repeats)
        rows.append({"part": name, "step_s": wall / steps, "cpu_step_s": cpu / steps})
    # XLA's own count for one unscanned step, against the matmul count used above.
    single = jax.jit(step).lower(state, data, key).compile()
    return {
        "batch": batch,
        "rows": rows,
        "xla_flops_per_step": flops_of(single),
        "matmul_flops_per_step": mlp_flops(batch),
    }


# ---------------------------------------------------------------- report
def fmt_bytes(n: float) -> str:
    return f"{n / 1e6:,.0f} MB"


def render(results: dict) -> list[str]:
    """The markdown of a record: its header (date, machine, commit, command), every section's
    table and, if the memory section came from another run, that run's header."""
    lines = ["### " + results["header"][0].lstrip("# "), *results["header"][1:]]
    lines += report(results)
    if "memory_header" in results:
        lines += ["", "The peak-memory section is from a separate run:", ""]
        lines += results["memory_header"][2:]
    load = ", ".join(f"{x:.1f}" for x in results.get("load_after", []))
    return [*lines, "", f"Load average at the end: {load}."] if load else lines


def report(results: dict) -> list[str]:
    out: list[str] = []
    peak_wall, peak_cpu = results["peak_flops"]
    out.append(
        f"- compute limit, float32 1024² matmul: {peak_wall / 1e9:.1f} GFLOP per wall second, "
        f"{peak_cpu / 1e9:.1f} GFLOP per CPU second"
    )

    def pct(flops: float, cpu_s: float) -> str:
        return f"{100 * flops / cpu_s / peak_cpu:.0f}%"

    if "batch" in results:
        r = results["batch"]
        out += [
            "",
            "### Train steps/s vs batch size (paper's VAE, one compiled epoch vs a Python loop)",
            "",
            "| batch | steps/s | examples/s | ms/step | cpu ms/step | GFLOP/step | % of matmul "
            "(cpu) | compile s | loop steps/s | loop cpu ms/step | scan ÷ loop (cpu) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in r["rows"]:
            s, loop = row["scan"], row["loop"]
            out.append(
                f"| {row['batch']} | {s['steps_per_s']:.1f} | {s['steps_per_s'] * row['batch']:.3g}"
                f" | {1e3 * s['step_s']:.2f} | {1e3 * s['cpu_step_s']:.2f} | "
                f"{s['flops_per_step'] / 1e9:.3f} | {pct(s['flops_per_step'], s['cpu_step_s'])} | "
                f"{s['compile_s']:.2f} | {loop['steps_per_s']:.1f} | "
                f"{1e3 * loop['cpu_step_s']:.2f} | {loop['cpu_step_s'] / s['cpu_step_s']:.2f} |"
            )
        out.append("")
        out.append(
            f"Slope of log(time per step) on log(batch): {r['slope_cpu']:.2f} (CPU time) / "
            f"{r['slope_wall']:.2f} (wall) over all batches, {r['slope_cpu_ge_256']:.2f} (CPU) "
            "for batch ≥ 256; 1 = cost linear in the batch."
        )
    if "k" in results:
        r = results["k"]
        out += [
            "",
            f"### Train steps/s vs K (IWAE, batch {r['batch']}, chunk {r['chunk']} under "
            "jax.checkpoint for K > chunk)",
            "",
            "| K | steps/s | K·B samples/s | ms/step | cpu ms/step | GFLOP/step | % of matmul "
            "(cpu) | XLA temp | compile s | unchunked cpu ms/step | unchunked temp |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in r["rows"]:
            c, w = row["chunked"], row.get("whole")
            out.append(
                f"| {row['k']} | {c['steps_per_s']:.2f} | "
                f"{c['steps_per_s'] * row['k'] * r['batch']:.3g} | {1e3 * c['step_s']:.1f} | "
                f"{1e3 * c['cpu_step_s']:.1f} | {c['flops_per_step'] / 1e9:.2f} | "
                f"{pct(c['flops_per_step'], c['cpu_step_s'])} | "
                f"{fmt_bytes(c['temp_bytes'])} | {c['compile_s']:.2f} | "
                + (
                    f"{1e3 * w['cpu_step_s']:.1f} | {fmt_bytes(w['temp_bytes'])} |"
                    if w
                    else "– | – |"
                )
            )
        out.append("")
        out.append(
            f"Slope of log(time per step) on log(K) for K ≥ 100: {r['slope_cpu_ge_100']:.2f} "
            f"(CPU time) / {r['slope_wall_ge_100']:.2f} (wall)."
        )
    if "samples" in results:
        r = results["samples"]
        out += [
            "",
            "### Normal draws/s vs number of samples (reparam.normal.sample vs jax.random)",
            "",
            "| N | reparam samples/s | jax.random samples/s | ratio (wall) | reparam cpu ms | "
            "jax.random cpu ms | ratio (cpu) |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in r["rows"]:
            a, b = row["reparam"], row["jax.random"]
            out.append(
                f"| {row['n']:.0e} | {a['samples_per_s']:.3g} | {b['samples_per_s']:.3g} | "
                f"{a['samples_per_s'] / b['samples_per_s']:.2f} | {1e3 * a['cpu_s']:.3f} | "
                f"{1e3 * b['cpu_s']:.3f} | {b['cpu_s'] / a['cpu_s']:.2f} |"
            )
        out.append("")
        out.append(
            f"Slope of log(CPU time) on log(N): {r['slope_cpu']:.2f} over all N, "
            f"{r['slope_cpu_ge_1e5']:.2f} for N ≥ 1e5."
        )
    if "memory" in results:
        out += [
            "",
            "### Peak memory (max RSS of a child process; XLA's temporaries of the compiled call)",
            "",
            "| case | max RSS | above baseline | XLA temp | seconds |",
            "|---|---:|---:|---:|---:|",
        ]
        rows = results["memory"]["rows"]
        base = next((r.get("max_rss_bytes") for r in rows if r["case"] == "baseline"), None)
        for row in rows:
            if "error" in row:
                out.append(f"| {row['what']} | failed: {row['error'][-80:]!r} | | | |")
                continue
            extra = row["max_rss_bytes"] - base if base else float("nan")
            temp = fmt_bytes(row["xla_temp_bytes"]) if "xla_temp_bytes" in row else "–"
            seconds = f"{row['seconds']:.1f}" if "seconds" in row else "–"
            out.append(
                f"| {row['what']} | {fmt_bytes(row['max_rss_bytes'])} | {fmt_bytes(extra)} | "
                f"{temp} | {seconds} |"
            )
    if "profile" in results:
        r = results["profile"]
        out += [
            "",
            f"### Where a train step's time goes (paper's VAE, batch {r['batch']})",
            "",
            "| part | ms/step | cpu ms/step | share of the step (cpu) |",
            "|---|---:|---:|---:|",
        ]
        whole = r["rows"][0]["cpu_step_s"]
        for row in r["rows"]:
            out.append(
                f"| {row['part']} | {1e3 * row['step_s']:.3f} | {1e3 * row['cpu_step_s']:.3f} | "
                f"{100 * row['cpu_step_s'] / whole:.0f}% |"
            )
        out.append("")
        out.append(
            f"FLOPs per step: {r['matmul_flops_per_step'] / 1e6:.1f} M in the matmuls (counted), "
            f"{r['xla_flops_per_step'] / 1e6:.1f} M by XLA's cost analysis (everything); "
            f"at {1e3 * whole:.2f} CPU ms per step that is "
            f"{pct(r['matmul_flops_per_step'], whole)} of the matmul compute limit."
        )
    return out


def plot(results: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    if "batch" in results:
        rows = results["batch"]["rows"]
        b = [r["batch"] for r in rows]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for key, style, label in (
            ("scan", "o-", "reparam (one scanned epoch)"),
            ("loop", "s--", "Python loop (Flax example)"),
        ):
            axes[0].plot(b, [r["batch"] / r[key]["cpu_step_s"] for r in rows], style, label=label)
        axes[0].set_ylabel("examples per CPU second")
        axes[0].set_title("VAE 784-200-200-50 training: throughput vs batch")
        axes[1].plot(
            b, [1e3 * r["scan"]["cpu_step_s"] for r in rows], "^-", label="CPU ms per step"
        )
        axes[1].plot(b, [1e3 * r["scan"]["step_s"] for r in rows], "v:", label="wall ms per step")
        axes[1].plot(b, [r["scan"]["compile_s"] for r in rows], "o-", label="compile s (epoch)")
        axes[1].set_title("time per step and compile time")
        for ax in axes:
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("batch size")
            ax.grid(alpha=0.3, which="both")
            ax.legend()
        fig.tight_layout()
        written.append(out / "scaling_batch.png")
        fig.savefig(written[-1], dpi=100)
        plt.close(fig)
    if "k" in results:
        rows = results["k"]["rows"]
        k = [r["k"] for r in rows]
        whole = [r for r in rows if "whole" in r]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        axes[0].plot(
            k, [1e3 * r["chunked"]["cpu_step_s"] for r in rows], "o-", label="chunked + checkpoint"
        )
        axes[0].plot(
            [r["k"] for r in whole],
            [1e3 * r["whole"]["cpu_step_s"] for r in whole],
            "s--",
            label="unchunked",
        )
        axes[0].set_ylabel("CPU ms per step")
        axes[0].set_title(f"IWAE train step vs K (batch {results['k']['batch']})")
        axes[1].plot(
            k, [r["chunked"]["temp_bytes"] / 1e6 for r in rows], "o-", label="chunked + checkpoint"
        )
        wk = [r["k"] for r in whole]
        wt = [r["whole"]["temp_bytes"] / 1e6 for r in whole]
        for row in results.get("memory", {}).get("rows", []):
            if row.get("case") == "iwae_k5000_whole" and "xla_temp_bytes" in row:
                wk, wt = [*wk, 5000], [*wt, row["xla_temp_bytes"] / 1e6]
        axes[1].plot(wk, wt, "s--", label="unchunked")
        axes[1].set_ylabel("XLA temporaries (MB)")
        axes[1].set_title("memory of the compiled step vs K")
        for ax in axes:
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("K (samples per example)")
            ax.grid(alpha=0.3, which="both")
            ax.legend()
        fig.tight_layout()
        written.append(out / "scaling_k.png")
        fig.savefig(written[-1], dpi=100)
        plt.close(fig)
    if "samples" in results:
        rows = results["samples"]["rows"]
        n = [r["n"] for r in rows]
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, style in (("reparam", "o-"), ("jax.random", "s--")):
            ax.plot(n, [r["n"] / r[name]["cpu_s"] for r in rows], style, label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("samples per call (N)")
        ax.set_ylabel("samples per CPU second")
        ax.set_title("normal draws: throughput vs N")
        ax.grid(alpha=0.3, which="both")
        ax.legend()
        fig.tight_layout()
        written.append(out / "scaling_samples.png")
        fig.savefig(written[-1], dpi=100)
        plt.close(fig)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaling", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a subset, about a minute")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent))
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument(
        "--json",
        default=None,
        help="the run's record (default: benchmarks/records/scaling.json, quick runs "
        "<out>/scaling_quick.json); `python -m benchmarks.report` renders the committed one",
    )
    parser.add_argument(
        "--replot", action="store_true", help="print the report and plots of the --json record"
    )
    parser.add_argument("--memory-child", choices=tuple(MEMORY_CASES), help=argparse.SUPPRESS)
    parser.add_argument(
        "--gradient-temporaries",
        nargs=3,
        type=int,
        metavar=("K", "BATCH", "CHUNK"),
        help="print XLA's temporaries of the IWAE-K gradient per estimator, chunked and not",
    )
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child)
        return 0
    if args.gradient_temporaries:
        gradient_temporaries(*args.gradient_temporaries)
        return 0
    if args.replot:
        results = json.loads(Path(args.json or RECORD).read_text())
        print("\n".join([*results["header"], *report(results)]))
        for path in plot(results, Path(args.out)):
            print(f"- plot: {path}")
        return 0
    from benchmarks.sampling import machine_lines

    sections = args.only or (("batch", "k", "samples", "profile") if args.quick else SECTIONS)
    repeats = max(1, min(args.repeats, 3) if args.quick else args.repeats)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks.scaling " + " ".join(argv if argv is not None else sys.argv[1:])
    header = [
        f"## Scaling: {'quick' if args.quick else 'full'} run, median of {repeats} after a warm-up",
        "",
        *machine_lines(),
        f"- threads: XLA CPU on {len(os.sched_getaffinity(0))} cores; command: {command.strip()}",
    ]
    print("\n".join(header), flush=True)
    results: dict[str, Any] = {"header": header, "peak_flops": matmul_flops(repeats)}
    tic = time.perf_counter()
    for name in sections:
        print(f"[{name}] ...", file=sys.stderr, flush=True)
        if name == "batch":
            results["batch"] = section_batch(args.quick, repeats)
        elif name == "k":
            results["k"] = section_k(args.quick, repeats)
        elif name == "samples":
            results["samples"] = section_samples(args.quick, max(repeats, 5))
        elif name == "memory":
            results["memory"] = section_memory()
        elif name == "profile":
            results["profile"] = section_profile(max(repeats, 5))
    results["load_after"] = os.getloadavg()
    lines = report(results)
    lines.append("")
    lines.append(
        f"- total {time.perf_counter() - tic:.0f} s; load average at the end "
        + ", ".join(f"{x:.1f}" for x in results["load_after"])
    )
    print("\n".join(lines), flush=True)
    record = Path(args.json or (out / "scaling_quick.json" if args.quick else RECORD))
    record.write_text(json.dumps(results, indent=1, default=str) + "\n")
    if not args.quick:
        for path in plot(results, out):
            print(f"- plot: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
