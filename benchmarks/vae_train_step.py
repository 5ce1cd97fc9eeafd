"""VAE train-step speed: this project's loop against the Flax example's loop and PyTorch.

    python -m benchmarks.vae_train_step [--steps 200] [--repeats 5] [--threads N] [--json PATH]

The model is the Flax example's VAE (flax/examples/vae): 784-500-20 with ReLU, Bernoulli
decoder, analytic KL, batch 128, Adam with learning rate 1e-3, on the binarized MNIST training
split shipped in data/ (random binary images if it is absent). All contenders train the same
model on the same data; each runs `--steps` steps per repeat after a warm-up (compilation), and
the median steps/s over `--repeats` is reported, with the ratios of this project's loop to the
others.

  reparam     `reparam.train.make_train_epoch`: one jitted `lax.scan` over device-resident
              batches, state donated, keys by fold_in(key, step).
  flax-example  the Flax example's loop: a jitted `train_step(state, batch, rng)` called once
              per step from Python with `TrainState.apply_gradients`, a numpy batch per step
              and `random.split` for the step's key.
  torch-eager   the same model and loss in PyTorch, eager.
  torch-compile the same step under `torch.compile` (if it works here; skipped otherwise).

Torch is optional (the `bench` extra); without it the torch rows are skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

BATCH = 128
LATENT = 20
HIDDEN = 500
DIM = 784
LR = 1e-3
LABELS = {
    "reparam": "reparam (`make_train_epoch`: one scanned, donated jit per epoch)",
    "flax-example": "Flax example (per-step jit, `TrainState.apply_gradients`)",
    "torch-eager": "PyTorch eager",
    "torch-compile": "`torch.compile`",
}


def load_data(num_examples: int) -> np.ndarray:
    """uint8 (num_examples, 784) binary images."""
    from reparam.train import data

    try:
        train = data.load_binarized_mnist(splits=("train",))["train"]
    except FileNotFoundError:
        train = (np.random.default_rng(0).random((num_examples, DIM)) < 0.13).astype(np.uint8)
    return train[:num_examples]


def time_repeats(run: Callable[[], None], repeats: int) -> list[float]:
    run()  # warm-up: compilation, allocator, caches
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        run()
        times.append(time.perf_counter() - tic)
    return times


# ---------------------------------------------------------------- this project
def bench_reparam(train: np.ndarray, steps: int, repeats: int) -> list[float]:
    import jax
    import jax.numpy as jnp
    import optax

    from reparam import nn as rnn
    from reparam import train as train_lib

    model = rnn.VAE(
        rnn.GaussianMLPEncoder(LATENT, (HIDDEN,), "relu"),
        rnn.BernoulliMLPDecoder(DIM, (HIDDEN,), "relu"),
        kl="analytic",
    )
    key = jax.random.key(0)
    params = model.init(jax.random.fold_in(key, 1), key, jnp.zeros((BATCH, DIM)))
    optimizer = optax.adam(LR)

    def loss_fn(params, batch, key):
        surrogate, _ = model.apply(params, key, batch.astype(jnp.float32))
        return -jnp.mean(surrogate), {}

    epoch = train_lib.make_train_epoch(loss_fn, optimizer, BATCH)
    data = jax.device_put(train[: steps * BATCH])
    state = [train_lib.create_state(params, optimizer)]
    counter = [0]

    def run():
        counter[0] += 1
        state[0], metrics = epoch(state[0], data, key, counter[0])
        jax.block_until_ready((state[0], metrics))

    return time_repeats(run, repeats)


# ---------------------------------------------------------------- the Flax example
def bench_flax_example(train: np.ndarray, steps: int, repeats: int) -> list[float]:
    """flax/examples/vae (train.py, models.py), with its tfds iterator replaced by numpy."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import optax
    from flax.training import train_state

    class Encoder(nn.Module):
        latents: int

        @nn.compact
        def __call__(self, x):
            x = nn.Dense(HIDDEN, name="fc1")(x)
            x = nn.relu(x)
            mean_x = nn.Dense(self.latents, name="fc2_mean")(x)
            logvar_x = nn.Dense(self.latents, name="fc2_logvar")(x)
            return mean_x, logvar_x

    class Decoder(nn.Module):
        @nn.compact
        def __call__(self, z):
            z = nn.Dense(HIDDEN, name="fc1")(z)
            z = nn.relu(z)
            return nn.Dense(DIM, name="fc2")(z)

    class VAE(nn.Module):
        latents: int = LATENT

        def setup(self):
            self.encoder = Encoder(self.latents)
            self.decoder = Decoder()

        def __call__(self, x, z_rng):
            mean, logvar = self.encoder(x)
            std = jnp.exp(0.5 * logvar)
            eps = jax.random.normal(z_rng, logvar.shape)
            z = mean + eps * std
            return self.decoder(z), mean, logvar

    def kl_divergence(mean, logvar):
        return -0.5 * jnp.sum(1 + logvar - jnp.square(mean) - jnp.exp(logvar))

    def binary_cross_entropy_with_logits(logits, labels):
        logits = nn.log_sigmoid(logits)
        return -jnp.sum(labels * logits + (1.0 - labels) * jnp.log(-jnp.expm1(logits)))

    model = VAE()

    @jax.jit
    def train_step(state, batch, z_rng):
        def loss_fn(params):
            recon_x, mean, logvar = model.apply({"params": params}, batch, z_rng)
            bce_loss = jax.vmap(binary_cross_entropy_with_logits)(recon_x, batch).mean()
            kld_loss = jax.vmap(kl_divergence)(mean, logvar).mean()
            return bce_loss + kld_loss

        grads = jax.grad(loss_fn)(state.params)
        return state.apply_gradients(grads=grads)

    rng = jax.random.key(0)
    rng, key = jax.random.split(rng)
    params = model.init(key, jnp.ones((BATCH, DIM), jnp.float32), rng)["params"]
    state = [train_state.TrainState.create(apply_fn=model.apply, params=params, tx=optax.adam(LR))]
    images = train[: steps * BATCH].astype(np.float32)  # tfds yields float batches
    order = np.random.default_rng(0)
    rngs = [rng]

    def run():
        perm = order.permutation(len(images))
        for i in range(steps):
            batch = images[perm[i * BATCH : (i + 1) * BATCH]]
            rngs[0], key = jax.random.split(rngs[0])
            state[0] = train_step(state[0], batch, key)
        jax.block_until_ready(state[0])

    return time_repeats(run, repeats)


# ---------------------------------------------------------------- PyTorch
def _torch_setup(train: np.ndarray, steps: int, threads: int):
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)

    class VAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(DIM, HIDDEN)
            self.fc2 = nn.Linear(HIDDEN, 2 * LATENT)
            self.fc3 = nn.Linear(LATENT, HIDDEN)
            self.fc4 = nn.Linear(HIDDEN, DIM)

        def forward(self, x):
            h = torch.relu(self.fc1(x))
            mean, logvar = self.fc2(h).chunk(2, dim=-1)
            z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
            logits = self.fc4(torch.relu(self.fc3(z)))
            bce = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="sum")
            kl = -0.5 * torch.sum(1 + logvar - mean.pow(2) - logvar.exp())
            return (bce + kl) / x.shape[0]

    model = VAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    images = torch.from_numpy(train[: steps * BATCH].astype(np.float32))
    return torch, model, optimizer, images


def bench_torch(train: np.ndarray, steps: int, repeats: int, threads: int, compile: bool):
    torch, model, optimizer, images = _torch_setup(train, steps, threads)

    def step(batch):
        optimizer.zero_grad(set_to_none=True)
        loss = model(batch)
        loss.backward()
        optimizer.step()
        return loss

    if compile:
        step = torch.compile(step)

    def run():
        perm = torch.randperm(len(images))
        for i in range(steps):
            step(images[perm[i * BATCH : (i + 1) * BATCH]])

    return time_repeats(run, repeats)


# ---------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        help="subset of: reparam flax-example torch-eager torch-compile",
    )
    parser.add_argument(
        "--json",
        default=None,
        help="also write the run's record (header, raw times) here, e.g. "
        "benchmarks/records/vae_train_step.json, which `python -m benchmarks.report` renders",
    )
    args = parser.parse_args(argv)
    import jax

    train = load_data(args.steps * BATCH)
    contenders = {
        "reparam": lambda: bench_reparam(train, args.steps, args.repeats),
        "flax-example": lambda: bench_flax_example(train, args.steps, args.repeats),
        "torch-eager": lambda: bench_torch(train, args.steps, args.repeats, args.threads, False),
        "torch-compile": lambda: bench_torch(train, args.steps, args.repeats, args.threads, True),
    }
    from benchmarks.sampling import machine_lines

    versions = [f"jax {jax.__version__}", f"backend {jax.default_backend()}"]
    try:
        import torch

        versions.append(f"torch {torch.__version__}")
    except ImportError:
        pass
    started = time.perf_counter()
    command = f"python -m benchmarks.vae_train_step {' '.join(argv or sys.argv[1:])}".rstrip()
    header = [
        f"VAE 784-{HIDDEN}-{LATENT} ReLU, batch {BATCH}, Adam {LR}; {args.steps} steps x "
        f"{args.repeats} repeats (median); {len(os.sched_getaffinity(0))} CPU cores visible, "
        f"torch threads {args.threads}; {', '.join(versions)}",
        "",
        *machine_lines(),
        f"- command: {command}",
    ]
    print("\n".join(header), flush=True)
    times: dict[str, list[float]] = {}
    skipped: dict[str, str] = {}
    for name, bench in contenders.items():
        if args.only is not None and name not in args.only:
            continue
        try:
            times[name] = bench()
        except ImportError as error:
            skipped[name] = f"skipped ({error})"
        except Exception as error:  # torch.compile needs a C++ toolchain, which may be absent
            first = str(error).strip().splitlines()[0] if str(error).strip() else ""
            skipped[name] = f"failed ({type(error).__name__}: {first[:150]})"
        if name in times:
            rate, t = args.steps / statistics.median(times[name]), times[name]
            spread = f"{args.steps / max(t):.0f}-{args.steps / min(t):.0f}"
            print(f"{name:>14}: {rate:8.1f} steps/s  (range {spread})", flush=True)
        else:
            print(f"{name:>14}: {skipped[name]}", flush=True)
    record = {
        "header": header,
        "args": vars(args),
        "times": times,
        "skipped": skipped,
        "wall_seconds": time.perf_counter() - started,
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
    }
    print("\n".join(render(record)[len(header) :]))
    if args.json:
        with open(args.json, "w") as f:
            f.write(json.dumps(record, indent=1) + "\n")
    return 0


def render(record: dict) -> list[str]:
    """The markdown of a run (`--json`'s record): its header and the table of loops."""
    steps, times = record["args"]["steps"], record["times"]
    rates = {name: steps / statistics.median(t) for name, t in times.items()}
    lines = [*record["header"], "", "| loop | steps/s (median) | range | reparam ÷ it |"]
    lines.append("|---|---:|---:|---:|")
    for name, rate in rates.items():
        ratio = "—" if name == "reparam" or "reparam" not in rates else (
            f"{rates['reparam'] / rate:.2f}×"
        )  # fmt: skip
        spread = f"{steps / max(times[name]):.0f}–{steps / min(times[name]):.0f}"
        lines.append(f"| {LABELS.get(name, name)} | {rate:.1f} | {spread} | {ratio} |")
    lines += [f"- {LABELS.get(name, name)}: {why}" for name, why in record["skipped"].items()]
    end = ", ".join(f"{x:.1f}" for x in record["load_average_end"])
    return [*lines, "", f"Wall time {record['wall_seconds']:.0f} s; load average at the end {end}."]


if __name__ == "__main__":
    raise SystemExit(main())
