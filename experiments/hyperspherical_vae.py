"""Hyperspherical VAEs on static binarized MNIST (Davidson et al. 2018, arXiv 1804.00891, §5.2).

N-VAE (diagonal Gaussian posterior, N(0, I) prior) against S-VAE (von Mises–Fisher posterior,
uniform prior on the sphere) and the Power Spherical posterior (De Cao & Aziz 2020; same prior),
for latent dimensions d = 5, 10, 20, 40, plus one low-dimensional run per family whose posterior
means are drawn (`picture_dim`).

    python -m experiments.hyperspherical_vae                       # the paper's set-up (days)
    python -m experiments.hyperspherical_vae --max-minutes 1.5     # a time cap per run
    python -m experiments.hyperspherical_vae --quick               # seconds, embedded digits

"d" is the latent manifold's dimension: R^d for the N-VAE, S^d ⊂ R^(d+1) for the spherical ones
(`sphere_ambient_extra` = 1, as the authors' example code, s-vae-tf examples/mnist.py, gives the
vMF `Z_DIM + 1` coordinates); `--sphere-ambient-extra 0` puts them on S^(d−1) ⊂ R^d instead.
Architecture as the paper's: MLP encoder 784-256-128 and its mirror decoder, ReLU, Adam 1e-3,
batch 64; the direction is the encoder's head normalized to unit norm, κ = softplus(·) + 1. The
paper trains with early stopping for up to 1000 epochs; here `epochs` and `max_minutes` bound
each run. Evaluation on the validation split: the importance-sampled log-likelihood
(`reparam.models.evaluate`, each family's posterior as the proposal), the ELBO and the KL; the
seconds per training pass. Writes record.json, hyperspherical_vae.md and PNGs into --workdir.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments import runner
from experiments.reports import hyperspherical_vae as report
from reparam import nn as rnn
from reparam import train
from reparam.families import kl, power_spherical, von_mises_fisher
from reparam.models import evaluate as evaluation
from reparam.train import data as data_lib

FAMILIES = ("normal", "vmf", "power_spherical")


@dataclass(frozen=True)
class Config:
    """N-VAE vs S-VAE vs Power Spherical VAE; the defaults are the paper's set-up."""

    dataset: Literal["mnist", "digits"] = "mnist"
    """Static binarized MNIST (train/validation files of reparam.train.data) or 8x8 digits."""
    families: tuple[str, ...] = FAMILIES
    """Posterior families: normal (N-VAE), vmf (S-VAE), power_spherical."""
    dims: tuple[int, ...] = (5, 10, 20, 40)
    """Latent dimensions d of the table."""
    picture_dim: int = 2
    """d of the latent-picture runs (2: R^2 and S^2 ⊂ R^3); also run if not in --dims."""
    sphere_ambient_extra: int = 1
    """Ambient coordinates of the spherical latents beyond d: 1 for S^d ⊂ R^(d+1), 0 for S^(d−1)."""
    hidden: tuple[int, ...] = (256, 128)
    """Encoder hidden widths (ReLU); the decoder mirrors them."""
    batch_size: int = 64
    """Examples per step."""
    learning_rate: float = 1e-3
    """Adam's learning rate."""
    epochs: int = 1000
    """Most passes over the training set per run (the paper's cap, with early stopping)."""
    max_minutes: float | None = None
    """Time cap per run: stop after the first epoch that ends past it."""
    valid_subset: int = 2000
    """Validation examples of the per-epoch ELBO (the learning curves)."""
    eval_examples: int = 10000
    """Validation examples of the final evaluation."""
    eval_samples: int = 1000
    """K: importance samples of the log-likelihood."""
    eval_chunk: int = 250
    """Importance samples per chunk (memory)."""
    picture_points: int = 1000
    """Validation posterior means stored for the latent picture."""
    seed: int = 0
    """Seed of every key stream."""

    @staticmethod
    def quick() -> Config:
        """Seconds-long: 8x8 digits, d = 2 only (its run is also the picture), 6 epochs."""
        sizes = dict(valid_subset=300, eval_examples=200, eval_samples=50, eval_chunk=50)
        return Config(dataset="digits", dims=(2,), hidden=(64, 32), epochs=6, picture_points=200,
                      **sizes)  # fmt: skip


def validate(config: Config) -> None:
    bad = [f for f in config.families if f not in FAMILIES]
    runner.require(not bad, "--families", f"names in {FAMILIES}", config.families)
    runner.require(min((*config.dims, config.picture_dim)) >= 2, "--dims", ">= 2", config.dims)
    runner.require(config.sphere_ambient_extra in (0, 1), "--sphere-ambient-extra", "0 or 1",
                   config.sphere_ambient_extra)  # fmt: skip
    minutes = config.max_minutes
    runner.require(minutes is None or minutes > 0, "--max-minutes", "> 0", minutes)


# ---------------------------------------------------------------- posterior families
def log_sphere_area(m: int) -> float:
    """log |S^(m−1)| = log(2 π^(m/2) / Γ(m/2)): minus the uniform prior's log-density."""
    return math.log(2) + 0.5 * m * math.log(math.pi) - math.lgamma(0.5 * m)


def gaussian_posterior(head):
    loc, raw = jnp.split(head, 2, axis=-1)
    return loc, jax.nn.softplus(raw) + 1e-6


def spherical_posterior(head):
    """Unit direction (the head normalized) and κ = softplus(·) + 1 (the paper's choice)."""
    raw, kappa = head[..., :-1], jax.nn.softplus(head[..., -1]) + 1
    return raw / (jnp.linalg.norm(raw, axis=-1, keepdims=True) + 1e-12), kappa


def spherical(family):
    """(proposal, kl) of a spherical family with the uniform prior on S^(m−1)."""

    def proposal(key, posterior, num):
        z, log_q = family.sample_and_log_prob(key, *posterior, sample_shape=(num,))
        return z, -log_sphere_area(z.shape[-1]), log_q

    return proposal


# name -> (encoder head width for ambient m, head -> posterior, proposal, posterior -> KL (B,))
LATENTS = {
    "normal": (lambda m: 2 * m, gaussian_posterior, evaluation.gaussian_proposal,
               lambda p: kl.normal_normal(*p, 0.0, 1.0).sum(-1)),
    "vmf": (lambda m: m + 1, spherical_posterior, spherical(von_mises_fisher),
            lambda p: von_mises_fisher.kl_to_uniform(*p)),
    "power_spherical": (lambda m: m + 1, spherical_posterior, spherical(power_spherical),
                        lambda p: power_spherical.kl_uniform(p[1], p[0].shape[-1])),
}  # fmt: skip


def ambient(config: Config, family: str, d: int) -> int:
    return d if family == "normal" else d + config.sphere_ambient_extra


# ---------------------------------------------------------------- one run
def run_one(run: runner.Run, data: data_lib.Dataset, family: str, d: int) -> dict[str, Any]:
    """Train one (family, d) VAE and evaluate it on the validation split."""
    config, m = run.config, ambient(run.config, family, d)
    width, to_posterior, proposal, kl_fn = LATENTS[family]
    encoder, decoder = rnn.MLP(config.hidden, width(m)), rnn.MLP(config.hidden[::-1], data.dim)
    name = f"{family}/d{d}"
    init_keys = jax.random.split(run.key(f"init/{name}"))
    params = {"encoder": jax.jit(encoder.init)(init_keys[0], jnp.zeros((1, data.dim))),
              "decoder": jax.jit(decoder.init)(init_keys[1], jnp.zeros((1, m)))}  # fmt: skip
    encode = lambda p, x: to_posterior(encoder.apply(p["encoder"], x))

    def log_likelihood(p, x, z):  # log p(x|z): x (B, D), z (..., B, m) -> (..., B)
        logits = decoder.apply(p["decoder"], z)
        return -optax.sigmoid_binary_cross_entropy(logits, x).sum(-1)

    def elbo_and_kl(p, key, x):  # one-sample reconstruction term, closed-form KL; each (B,)
        posterior = encode(p, x)
        z, _, _ = proposal(key, posterior, 1)
        kl_term = kl_fn(posterior)
        return log_likelihood(p, x, z)[0] - kl_term, kl_term

    def loss_fn(p, batch, key):
        elbo, kl_term = elbo_and_kl(p, key, batch.astype(jnp.float32))
        return -elbo.mean(), {"elbo": elbo.mean(), "kl": kl_term.mean()}

    optimizer = optax.adam(config.learning_rate)
    train_epoch = train.make_train_epoch(loss_fn, optimizer, config.batch_size)
    elbo_fn = jax.jit(lambda p, key, x: elbo_and_kl(p, key, x.astype(jnp.float32)))
    valid = data.valid[: config.valid_subset]

    def evaluate(state, epoch):
        key = jax.random.fold_in(run.key(f"valid/{name}"), epoch)
        bound = lambda k, x: elbo_fn(state.params, k, x)[0]
        return {"valid_elbo": evaluation.mean_bound(key, valid, bound, jit=False)}

    initial = evaluate(train.create_state(params, optimizer), 0)["valid_elbo"]
    fitted = train.fit(run.key(f"train/{name}"), train.create_state(params, optimizer),
                       train_epoch, data.train, num_epochs=config.epochs,
                       workdir=run.workdir / family / f"d{d}", checkpoint_every=config.epochs,
                       keep_checkpoints=1, max_minutes=config.max_minutes, evaluate=evaluate,
                       eval_every=1, progress=run.progress)  # fmt: skip
    p, history = fitted.state.params, fitted.history
    examples = data.valid[: config.eval_examples]
    tic = time.perf_counter()
    log_px = evaluation.importance_sampled_log_likelihood(
        run.key(f"nll/{name}"), examples, lambda x: encode(p, x),
        lambda x, z: log_likelihood(p, x, z), num_samples=config.eval_samples,
        chunk_size=config.eval_chunk, proposal=proposal)  # fmt: skip
    eval_seconds = time.perf_counter() - tic
    elbo_key = run.key(f"elbo/{name}")
    elbo = evaluation.mean_bound(elbo_key, examples, lambda k, x: elbo_fn(p, k, x)[0], jit=False)
    kl_mean = evaluation.mean_bound(elbo_key, examples, lambda k, x: elbo_fn(p, k, x)[1], jit=False)
    # Posterior means only for the picture (the record would grow by megabytes otherwise).
    shown = examples[: config.picture_points if d == config.picture_dim else 0]
    means = np.asarray(jax.jit(lambda x: encode(p, x)[0])(shown)) if len(shown) else np.zeros(0)
    seconds = [h["seconds"] for h in history]
    return {
        "family": family, "d": d, "ambient": m, "epochs": fitted.epoch, "status": fitted.status,
        "log_likelihood": float(log_px.mean()),
        "log_likelihood_se": float(log_px.std(ddof=1) / math.sqrt(len(log_px))),
        "elbo": elbo, "kl": kl_mean, "eval_examples": len(examples), "eval_seconds": eval_seconds,
        "valid_elbo": [initial] + [h["valid_elbo"] for h in history],
        "train_elbo": [h["elbo"] for h in history], "epoch_seconds": seconds,
        # The first epoch includes compilation: the pass time is the median of the others.
        "pass_seconds": float(np.median(seconds[1:] if len(seconds) > 1 else seconds)),
        "posterior_means": means.round(4), "ink": shown.sum(1),
    }  # fmt: skip


def train_and_evaluate(config: Config, run: runner.Run) -> dict[str, Any]:
    data = data_lib.load(config.dataset)
    runs = []
    for d in sorted(set(config.dims) | {config.picture_dim}):
        for family in config.families:
            tic = time.perf_counter()
            runs.append(run_one(run, data, family, d) | {"wall_seconds": time.perf_counter() - tic})
            print(f"{family} d={d}: LL {runs[-1]['log_likelihood']:.2f}, "
                  f"{runs[-1]['epochs']} epochs", flush=True)  # fmt: skip
    results = {"runs": runs, "train_examples": len(data.train), "valid_examples": len(data.valid)}
    record = run.finish(results)
    report.write(record, run.workdir)
    if run.flags.record:
        report.write(record, runner.REPO / "experiments" / "results")
    return record


def main(argv: list[str] | None = None) -> int:
    config, flags = runner.cli(Config, Config.quick, argv, validate=validate)
    run = runner.start("hyperspherical_vae", config, flags, argv)
    record = train_and_evaluate(config, run)
    print(f"wrote {run.workdir}: {report.headline(record)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(runner.main(main))
