"""Categorical-latent VAE on binarized MNIST (Jang, Gu & Poole 2017, Table 2, categorical VAE).

    python -m experiments.gumbel_vae train --quick --workdir runs/gumbel/quick
    python -m experiments.gumbel_vae train --estimator rebar --epochs 10 --workdir runs/gumbel/rebar
    python -m experiments.gumbel_vae train --estimator reinmax --workdir runs/gumbel/reinmax
    python -m experiments.gumbel_vae train ... --max-minutes 35 | --resume | --mesh data
    python -m experiments.gumbel_vae evaluate --checkpoint runs/gumbel/rebar --split valid
    python -m experiments.gumbel_vae compare runs/gumbel/* --out curves.png   # or: table

The model is that of Jang et al.'s released code (ericjang/gumbel-softmax): 20 independent
10-way categoricals, MLPs 784-512-256-200 and back, ReLU, uniform prior, Adam at 1e-3, batch 100
(experiments/results/gumbel_vae.md compares with the paper). The paper's number is a bound with
m = 1000 importance samples: our importance-sampled NLL with K = 1000.

Estimators (`reparam.models.discrete_vae.elbo`): Jang et al.'s gumbel_softmax, straight_through
(ST Gumbel-softmax) and score_function; rebar and relax; and st (plain straight-through, no
Gumbel noise), reinmax, gumbel_rao, indecater and vimco (its objective is the K-sample bound,
K = --num-samples, 2 unless given). ARM and DisARM are for Bernoulli latents only and do not
apply here. Early stopping is on by default (--patience 4 validation bounds, one every 5
passes): training stops when the validation −ELBO has not improved for 20 passes, the best
state is kept in <workdir>/best, and `evaluate` uses it (--checkpoint-choice last for the last).
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments import runner, runs, vae_commands
from experiments.runner import require
from reparam import nn as rnn
from reparam import train
from reparam.models import discrete_vae
from reparam.models import evaluate as evaluation
from reparam.train import data as data_lib
from reparam.train import distributed
from reparam.train.nll import nll_record
from reparam.train.workdir import output_bias

LABELS = {
    "gumbel_softmax": "Gumbel-softmax",
    "straight_through": "ST Gumbel-softmax",
    "score_function": "score function (batch baseline)",
    "rebar": "REBAR",
    "relax": "RELAX",
    "st": "straight-through",
    "reinmax": "ReinMax",
    "gumbel_rao": "Gumbel-Rao",
    "indecater": "IndeCateR",
    "vimco": "VIMCO",  # its runs are labelled "VIMCO (K=…)": Config.name
}
ENCODE, DECODE = rnn.CategoricalVAE.encode, rnn.CategoricalVAE.decode
LOG_LIKELIHOOD = rnn.CategoricalVAE.log_likelihood
Estimator = Literal[
    "gumbel_softmax",
    "straight_through",
    "score_function",
    "rebar",
    "relax",
    "st",
    "reinmax",
    "gumbel_rao",
    "indecater",
    "vimco",
]


@dataclass(frozen=True)
class Config(runs.TrainingConfig):
    """One run; the defaults follow Jang et al. (2017): 100 passes over MNIST (hours on a CPU),
    stopped early once the validation bound has not improved for 4 evaluations (20 passes)."""

    estimator: Estimator = "gumbel_softmax"
    """Gradient of the reconstruction term: gumbel_softmax, straight_through (ST
    Gumbel-softmax), score_function (baseline: the batch's other examples), rebar, relax
    (learned control variate), st (plain straight-through), reinmax, gumbel_rao, indecater
    (L·C + 1 decoder passes per code), or vimco (trains the K-sample bound, K = --num-samples)."""
    latents: int = 20
    """L: categorical latent variables ..."""
    categories: int = 10
    """... of C categories each."""
    hidden: tuple[int, ...] = (512, 256)
    """Hidden widths of the encoder (the decoder mirrors them)."""
    activation: str = "relu"
    """Hidden activation (a jax.nn function name)."""
    num_samples: int = 1
    """Codes per example in the training objective (vimco: the K of its bound, >= 2; 2 unless
    given)."""
    sf_baseline: Literal["batch_leave_one_out", "leave_one_out"] = "batch_leave_one_out"
    """score_function's baseline (leave_one_out needs --num-samples >= 2)."""
    rebar_eta: float = 1.0
    """Initial η of REBAR / RELAX."""
    rebar_temperature: float = 0.5
    """Initial λ of REBAR / RELAX's relaxed control variate."""
    relax_hidden: int = 200
    """RELAX: width of the residual control variate's hidden layer."""
    reinmax_temperature: float = 1.3
    """ReinMax's τ (fixed, not annealed): 1.3 is the ReinMax authors' setting for their
    10-category MNIST VAE (LiyuanLucasLiu/ReinMax, mnist_vae/reinmax_10_30.sh; τ in [1, 1.5])."""
    num_inner: int = 10
    """Gumbel-Rao: conditional Gumbel draws per code (Paulus et al. use 10, 100, 1000)."""
    tau_initial: float = 1.0
    """τ0, the relaxations' initial temperature."""
    tau_min: float = 0.5
    """τ_min, the temperature's floor."""
    anneal_rate: float = 1e-4
    """r of τ = max(τ_min, τ0·exp(−r·t)), t the global step."""
    anneal_interval: int = 1000
    """N: τ changes every N steps."""
    eval_every: int = 5
    patience: int | None = 4

    positive: ClassVar = ("anneal_interval", "latents", "relax_hidden", "num_inner")

    @staticmethod
    def quick(**overrides: Any) -> Config:
        """Seconds-long: embedded 8x8 digits, 8 × 4 categoricals, a small network."""
        base = dict(dataset="digits", latents=8, categories=4, hidden=(64, 32), relax_hidden=32)
        # At 1e-3, 20 epochs end in posterior collapse (KL ≈ 0); τ reaches 0.5 at epoch 14.
        base |= dict(batch_size=50, learning_rate=3e-3, epochs=20, anneal_interval=50)
        base |= dict(anneal_rate=2e-3, eval_subset=250, eval_samples=100, eval_chunk=50)
        base |= dict(patience=2)
        return Config(**base | overrides)

    def validate(self) -> Config:
        super().validate()
        for flag, tau in (("--tau-initial", self.tau_initial), ("--tau-min", self.tau_min)):
            require(tau > 0, flag, "a temperature > 0", tau)
        require(self.rebar_temperature > 0, "--rebar-temperature", "> 0", self.rebar_temperature)
        temperature = self.reinmax_temperature
        require(temperature > 0, "--reinmax-temperature", "> 0", temperature)
        if self.estimator == "vimco":
            require(self.num_samples >= 2, "--num-samples", ">= 2 for vimco", self.num_samples)
        require(self.anneal_rate >= 0, "--anneal-rate", ">= 0", self.anneal_rate)
        require(self.categories >= 2, "--categories", ">= 2", self.categories)
        return self

    @property
    def name(self) -> str:
        if self.estimator == "vimco":  # not an ELBO: its objective is the K-sample bound
            return f"{LABELS['vimco']} (K={self.num_samples})"
        return LABELS[self.estimator]


def resolve(config: Config, argv: list[str]) -> Config:
    """K = 2 for VIMCO unless --num-samples says otherwise."""
    if config.estimator == "vimco" and not runner.given(argv, "--num-samples"):
        return dataclasses.replace(config, num_samples=2)
    return config


class Residual(nn.Module):
    """RELAX's learned part r_ψ(z): an MLP over the flattened continuous z, one value each."""

    hidden: int

    @nn.compact
    def __call__(self, z):
        h = z.reshape((*z.shape[:-2], z.shape[-2] * z.shape[-1]))
        return nn.Dense(1)(nn.relu(nn.Dense(self.hidden)(h)))[..., 0]


def setup(config: Config, require_test: bool = False) -> runs.Setup:
    config = config.validate()
    dataset = data_lib.load(config.dataset, config.data_dir, require_test=require_test)
    bias = output_bias(dataset.train)
    dims = (config.latents, config.categories, config.hidden, config.activation, bias)
    model = rnn.categorical_vae(dataset.dim, *dims)
    x0 = jnp.zeros((config.batch_size, dataset.dim), jnp.float32)
    z0 = jnp.zeros((config.batch_size, config.latents, config.categories), jnp.float32)
    params: dict[str, Any] = {"model": jax.jit(model.init)(runs.key(config.seed, "init"), x0, z0)}
    residual = None
    if config.estimator in ("rebar", "relax"):
        params["cv"] = discrete_vae.rebar_params(config.rebar_eta, config.rebar_temperature)
    if config.estimator == "relax":
        net = Residual(config.relax_hidden)
        params["cv"]["residual"] = net.init(runs.key(config.seed, "init/residual"), z0[None])
        residual = net.apply
    optimizer = optax.adam(config.learning_rate)  # Jang et al.: Adam, 1e-3 (TF defaults)
    encode = lambda params, x: model.apply(params, x, method=ENCODE)
    log_lik = lambda params, x, z: model.apply(params, x, z, method=LOG_LIKELIHOOD)

    def loss_fn(params, batch, key, step):
        x = batch.astype(jnp.float32)
        tau = discrete_vae.temperature_schedule(
            step,
            initial=config.tau_initial,
            minimum=config.tau_min,
            rate=config.anneal_rate,
            interval=config.anneal_interval,
        )
        if config.estimator == "reinmax":
            tau = jnp.float32(config.reinmax_temperature)
        surrogate, objective = discrete_vae.elbo(
            key,
            encode(params["model"], x),
            lambda z: log_lik(params["model"], x, z),
            estimator=config.estimator,
            temperature=tau,
            num_samples=config.num_samples,
            signal=lambda z: log_lik(jax.lax.stop_gradient(params["model"]), x, z),
            baseline=config.sf_baseline,
            cv_params=params.get("cv"),
            residual=residual,
            num_inner=config.num_inner,
        )
        # "objective": the training objective's value (the relaxed one for gumbel_softmax, the
        # K-sample bound for vimco); "temperature": the τ the estimator used.
        return -jnp.mean(surrogate), {"objective": jnp.mean(objective), "temperature": tau}

    @jax.jit  # (params, key, x) -> the one-sample discrete ELBO (B,): a true lower bound
    def elbo(params, key, x):
        logits = encode(params["model"], x)
        return discrete_vae.discrete_elbo(key, logits, lambda z: log_lik(params["model"], x, z))

    mesh = distributed.make_mesh(config.devices) if config.mesh == "data" else None
    train_epoch = train.make_train_epoch(
        loss_fn, optimizer, config.batch_size, mesh=mesh, with_step=True
    )
    state = train.create_state(params, optimizer)
    key = runs.key(config.seed, "train")
    return runs.Setup(config, dataset, model, state, train_epoch, key, elbo, mesh, loss_fn)


def evaluate_state(setup: runs.Setup, params, split: str = "valid", num_samples: int | None = None):
    """Discrete ELBO (one sample per example), importance-sampled NLL and the relaxed objective
    at τ = tau_min on `split`."""
    config, model = setup.config, setup.model
    data = setup.dataset.split(split)[: config.eval_examples]
    encode = lambda x: model.apply(params["model"], x, method=ENCODE)
    log_lik = lambda x, z: model.apply(params["model"], x, z, method=LOG_LIKELIHOOD)
    k = config.eval_samples if num_samples is None else num_samples
    key = lambda name: runs.key(config.seed, f"evaluate/{name}")
    estimator = discrete_vae.importance_sampled_log_likelihood
    results = nll_record(estimator, key("nll"), data, encode, log_lik, k, config.eval_chunk)
    elbo = evaluation.mean_bound(key("elbo"), data, lambda k_, x: setup.bound(params, k_, x))

    # What Gumbel-softmax training maximises, at τ = tau_min (for reference; not a bound): the
    # decoder sees one Concrete sample, with the closed-form categorical KL.
    relaxed_elbo = functools.partial(
        discrete_vae.elbo, estimator="gumbel_softmax", temperature=config.tau_min
    )
    relaxed = lambda key_, x: relaxed_elbo(key_, encode(x), lambda z: log_lik(x, z))[1]
    relaxed_objective = evaluation.mean_bound(key("relaxed"), data, relaxed)
    return {
        "split": split,
        "examples": len(data),
        "elbo": float(elbo),
        "neg_elbo": float(-elbo),
        "relaxed_neg_objective": float(-relaxed_objective),
        "relaxed_temperature": config.tau_min,
        **results,
    }


def images(setup: runs.Setup, params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    config, model = setup.config, setup.model
    # Codes from the uniform prior, one category per latent.
    index = jax.random.randint(
        runs.key(config.seed, "plot/prior"), (64, config.latents), 0, config.categories
    )
    z = jax.nn.one_hot(index, config.categories, dtype=jnp.float32)
    means = jax.nn.sigmoid(model.apply(params["model"], z, method=DECODE))
    x = setup.dataset.valid[:32].astype(np.float32)
    logits = model.apply(params["model"], jnp.asarray(x), method=ENCODE)
    mode = jax.nn.one_hot(jnp.argmax(logits, -1), config.categories, dtype=jnp.float32)
    recon = jax.nn.sigmoid(model.apply(params["model"], mode, method=DECODE))
    return np.asarray(means), x, np.asarray(recon)


EXPERIMENT = runs.Experiment(
    sys.modules[__name__],
    curves=("objective", "valid_elbo", "valid −ELBO (discrete)"),
    image_titles=(
        "Bernoulli means of p(x|z), z ~ uniform prior",
        "reconstructions at the mode of q",
    ),
    evaluate_fields=tuple("checkpoint epochs examples neg_elbo relaxed_neg_objective".split()),
    table_columns=(("relaxed −objective τ=0.5", "relaxed_neg_objective"),),
    resolve=resolve,
)


def main(argv: list[str] | None = None) -> int:
    return vae_commands.main(EXPERIMENT, argv)


if __name__ == "__main__":
    sys.exit(main())
