"""VAE and IWAE on binarized MNIST (Burda, Grosse & Salakhutdinov 2016, Table 1, one layer).

    python -m experiments.vae_mnist train --quick --workdir runs/quick
    python -m experiments.vae_mnist train --model iwae --k 5 --grad dreg --workdir runs/iwae5
    python -m experiments.vae_mnist train ... --epochs 30 --max-minutes 20   # truncated schedule
    python -m experiments.vae_mnist train ... --resume         # continue the run in --workdir
    python -m experiments.vae_mnist evaluate --checkpoint runs/iwae5 --split valid
    python -m experiments.vae_mnist compare runs/vae runs/iwae5 --out curves.png
    python -m experiments.vae_mnist paired vae.json iwae5.json   # evaluate --json records
    python -m experiments.vae_mnist train ... --mesh data [--devices 4] [--shard-params]
    python -m experiments.vae_mnist --coordinator HOST:PORT --num-processes N --process-id I \\
        train ...                                                # one per process
    python -m experiments.vae_mnist train --model iwae --k 5000 --k-chunk 500 ...   # large K

`train` writes into --workdir (a non-empty one needs --resume or --overwrite): config.json,
metrics.jsonl (one record per epoch), checkpoints/ (orbax, atomic, the last few), results.json
(importance-sampled NLL, ELBO, active units, per-dimension KL), record.json (the same with the
command, machine and times) and curves.png, samples.png, reconstructions.png. Ctrl-C ends the
running epoch, saves a checkpoint and exits; --resume continues bit for bit.

The defaults are the paper's: the 784-200-200-50 (tanh) encoder and its mirror decoder; 3^i
passes at learning rate 1e-3·10^(−i/7), i = 0..7 (3280 passes), Adam with β2 = 0.999 and
ε = 1e-4, batch 100; NLL with K = 5000. --quick is a seconds-long run on the embedded digits.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import jax
import jax.numpy as jnp
import numpy as np

from experiments import runs, vae_commands
from experiments.runner import given, require
from reparam import nn as rnn
from reparam import train
from reparam.families import normal
from reparam.models import evaluate as evaluation
from reparam.models import objectives
from reparam.train import data as data_lib
from reparam.train import distributed
from reparam.train.nll import nll_record
from reparam.train.workdir import output_bias


@dataclass(frozen=True)
class Config(runs.TrainingConfig):
    """One run; the defaults are the paper's full schedule (3280 passes, hours on a CPU)."""

    model: Literal["vae", "iwae"] = "vae"
    """vae (the ELBO) or iwae (the K-sample importance-weighted bound)."""
    k: int = 1
    """K: samples in the training objective (1 for the VAE; 5 when --model iwae omits --k)."""
    grad: Literal["standard", "stl", "dreg"] = "standard"
    """Gradient estimator: standard, stl (sticking the landing) or dreg (doubly reparameterized)."""
    kl: Literal["analytic", "mc"] = "analytic"
    """The VAE's KL term, closed-form or Monte Carlo (stl and dreg imply mc)."""
    beta: float = 1.0
    """Weight of the VAE's KL term."""
    architecture: Literal["mlp", "conv"] = "mlp"
    """Encoder and decoder: the paper's MLP or a small conv net."""
    latent: int = 50
    """Latent dimensions."""
    epochs: int = 3280  # the paper's schedule (fewer passes truncate it)
    stages: int = 8
    """Schedule stages: 3^i passes at learning_rate·10^(−i/7)."""
    b2: float = 0.999
    """Adam's β2."""
    eps: float = 1e-4
    """Adam's ε."""
    checkpoint_every: int = 20
    eval_samples: int = 5000  # the paper's K
    eval_chunk: int = 500
    shard_params: bool = False
    """Shard the parameters over the data mesh instead of replicating them (implies --mesh data)."""
    k_chunk: int | None = None
    """IWAE samples per rematerialized decoder chunk: memory grows with it, not with K."""

    positive: ClassVar = ("latent", "stages", "k_chunk")

    @staticmethod
    def quick(**overrides: Any) -> Config:
        """Seconds-long: embedded 8x8 digits, a small network, 30 epochs."""
        base = dict(dataset="digits", hidden=(64, 64), latent=8, batch_size=50, epochs=30)
        base |= dict(checkpoint_every=10, eval_subset=250, eval_samples=500, eval_chunk=250)
        return Config(**base | overrides)

    def validate(self) -> Config:
        super().validate()
        require(self.model == "iwae" or self.k == 1, "--k", "1 for --model vae", self.k)
        require(self.beta >= 0, "--beta", ">= 0", self.beta)
        require(0 <= self.b2 < 1, "--b2", "in [0, 1)", self.b2)
        require(self.eps > 0, "--eps", "> 0", self.eps)
        return self

    @property
    def name(self) -> str:
        label = "VAE" if self.model == "vae" else f"IWAE-{self.k}"
        return f"{label} ({self.grad})"


def resolve(config: Config, argv: list[str]) -> Config:
    """K = 5 for an IWAE unless --k says otherwise."""
    if config.model == "iwae" and not given(argv, "--k"):
        return dataclasses.replace(config, k=5)
    return config


# ---------------------------------------------------------------- model and loss
def build_model(config: Config, dim: int, image_shape: tuple[int, int], bias=None):
    """The flax module for `config`: a VAE or IWAE over MLP (or conv) encoder and decoder."""
    if config.architecture == "mlp":
        encoder = rnn.GaussianMLPEncoder(config.latent, config.hidden, config.activation)
        decoder = rnn.BernoulliMLPDecoder(dim, config.hidden[::-1], config.activation, bias)
    else:
        encoder = rnn.GaussianConvEncoder(config.latent, image_shape)
        decoder = rnn.BernoulliConvDecoder(image_shape)
    if config.model == "vae":
        kl = "mc" if config.grad != "standard" else config.kl
        return rnn.VAE(encoder, decoder, kl=kl, beta=config.beta, gradient=config.grad)
    return rnn.IWAE(encoder, decoder, gradient=config.grad, num_samples=config.k)


def setup(config: Config, require_test: bool = False) -> runs.Setup:
    config = config.validate()
    dataset = data_lib.load(config.dataset, config.data_dir, require_test=require_test)
    model = build_model(config, dataset.dim, dataset.image_shape, output_bias(dataset.train))
    x0 = jnp.zeros((config.batch_size, dataset.dim), jnp.float32)
    init = jax.jit(model.init)  # one compilation, not one per op
    params = init(runs.key(config.seed, "init"), runs.key(config.seed, "init/sample"), x0)
    steps = max(1, len(dataset.train) // config.batch_size)
    schedule = train.paper_schedule(steps, config.learning_rate, config.stages)
    optimizer = train.adam(schedule, b2=config.b2, eps=config.eps)
    encode = lambda params, x: model.apply(params, x, method=rnn.VAE.encode)
    log_likelihood = lambda params, x, z: model.apply(params, x, z, method=rnn.VAE.log_likelihood)
    chunked = config.model == "iwae" and config.k_chunk is not None and config.k_chunk < config.k

    def loss_fn(params, batch, key):
        x = batch.astype(jnp.float32)
        if not chunked:
            surrogate, bound = model.apply(params, key, x)
        else:  # the same bound, with the decoder run k_chunk samples at a time
            ll = train.chunked_over_samples(lambda z: log_likelihood(params, x, z), config.k_chunk)
            surrogate, bound = objectives.iwae(
                key, x, lambda x_: encode(params, x_), ll, config.k, gradient=config.grad
            )
        return -jnp.mean(surrogate), {"bound": jnp.mean(bound)}

    mesh = distributed.make_mesh(config.devices) if config.mesh == "data" else None
    train_epoch = train.make_train_epoch(
        loss_fn, optimizer, config.batch_size, mesh=mesh, shard_params=config.shard_params
    )
    # Compiled once, with the parameters as an argument: evaluation every few epochs must not
    # recompile (a new closure over new parameters would).
    bound = jax.jit(lambda params, key, x: model.apply(params, key, x)[1])
    state = train.create_state(params, optimizer)
    key = runs.key(config.seed, "train")
    return runs.Setup(
        config, dataset, model, state, train_epoch, key, bound, mesh, loss_fn, schedule
    )


Run = runs.Setup  # the name tests/test_train.py and tests/test_faults.py use


# ---------------------------------------------------------------- evaluation and plots
def evaluate_state(setup: runs.Setup, params, split: str = "valid", num_samples: int | None = None):
    """Importance-sampled NLL, ELBO, training bound, active units and per-dimension KL."""
    config, model = setup.config, setup.model
    data = setup.dataset.split(split)[: config.eval_examples]
    encode = lambda x: model.apply(params, x, method=rnn.VAE.encode)
    log_likelihood = lambda x, z: model.apply(params, x, z, method=rnn.VAE.log_likelihood)
    k = config.eval_samples if num_samples is None else num_samples
    key = lambda name: runs.key(config.seed, f"evaluate/{name}")
    estimator = evaluation.importance_sampled_log_likelihood
    results = nll_record(estimator, key("nll"), data, encode, log_likelihood, k, config.eval_chunk)
    # The ELBO with the closed-form KL (lower variance than the one-sample estimate).
    elbo_model = rnn.VAE(model.encoder, model.decoder, kl="analytic")
    elbo_fn = lambda key_, x: elbo_model.apply(params, key_, x)[1]
    bound_fn = lambda key_, x: model.apply(params, key_, x)[1]
    active, variances = evaluation.active_units(data, encode)
    kl_dims = evaluation.per_dimension_kl(data, encode)
    return {
        "split": split,
        "examples": len(data),
        **results,
        "elbo": float(evaluation.mean_bound(key("elbo"), data, elbo_fn)),
        f"bound_k{config.k}": float(evaluation.mean_bound(key("bound"), data, bound_fn)),
        "active_units": active,
        "posterior_mean_variance": variances.tolist(),
        "kl_per_dim": kl_dims.tolist(),
        "kl_total": float(kl_dims.sum()),
    }


def images(setup: runs.Setup, params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    model, config = setup.model, setup.config
    z = normal.noise(runs.key(config.seed, "plot/prior"), (64, config.latent), jnp.float32)
    means = jax.nn.sigmoid(model.apply(params, z, method=rnn.VAE.decode))
    x = setup.dataset.valid[:32].astype(np.float32)
    loc, _ = model.apply(params, jnp.asarray(x), method=rnn.VAE.encode)
    recon = jax.nn.sigmoid(model.apply(params, loc, method=rnn.VAE.decode))
    return np.asarray(means), x, np.asarray(recon)


EXPERIMENT = runs.Experiment(
    sys.modules[__name__],
    curves=("bound", "valid_bound", "valid −bound"),
    image_titles=("samples: Bernoulli means of p(x|z), z ~ N(0, I)", "reconstructions at E_q[z]"),
    evaluate_fields=("checkpoint", "epochs", "elbo", "active_units", "kl_total", "nll_stderr"),
    compare_top=110,
    resolve=resolve,
)


def main(argv: list[str] | None = None) -> int:
    return vae_commands.main(EXPERIMENT, argv)


if __name__ == "__main__":
    sys.exit(main())
