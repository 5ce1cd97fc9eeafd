"""Bernoulli-latent VAE on binarized MNIST: the REBAR / RELAX / ARM / DisARM benchmark.

    python -m experiments.bernoulli_vae train --quick --workdir runs/bernoulli/quick
    python -m experiments.bernoulli_vae train --model linear --estimator relax --max-minutes 60 \
        --workdir runs/bernoulli/linear_relax        # then: evaluate --checkpoint W --json ...
    python -m experiments.bernoulli_vae table runs/bernoulli/* --record   # or: compare

google-research/disarm's setup (binary/experiment_launcher_singlelayer.py and networks.py, run
with --demean_input --initialize_with_bias as its README says; the networks are
`reparam.nn.BernoulliVAE`): 200 latents, a learned prior (SGD at 1e-2), Adam at 1e-4, batch 50,
one antithetic pair (two independent samples for REINFORCE LOO and VIMCO); RELAX's control
variate from λ = 0.1, η = 1 with Adam (1e-4, β1 = 0.999). Every `eval_every` epochs (of 1000
steps on MNIST): the one-sample validation −ELBO and the variance of the encoder's gradient; at
the end the importance-sampled NLL with K = 1000.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments import runs, vae_commands, vae_plots
from experiments.reports.bernoulli_vae import COMPARED, LABELS
from experiments.runner import require, stream_key
from reparam import nn as rnn
from reparam import train
from reparam.models import bernoulli_vae
from reparam.models import evaluate as evaluation
from reparam.nn.activations import ACTIVATIONS
from reparam.train import data as data_lib
from reparam.train import distributed
from reparam.train.nll import nll_record
from reparam.train.workdir import output_bias

ENCODE, DECODE = rnn.BernoulliVAE.encode, rnn.BernoulliVAE.decode
LOG_LIKELIHOOD = rnn.BernoulliVAE.log_likelihood
Estimator = Literal[tuple(LABELS)]  # the keys of LABELS


@dataclass(frozen=True)
class Config(runs.TrainingConfig):
    """One run; the defaults are google-research/disarm's: 1000 epochs = 10^6 steps (cap the
    run with --max-minutes)."""

    model: Literal["linear", "nonlinear"] = "nonlinear"
    """linear: 784→200 encoder and 200→784 decoder; nonlinear: --hidden layers in between."""
    estimator: Estimator = "disarm"
    """The encoder's gradient (reparam.models.bernoulli_vae)."""
    latents: int = 200
    """D: Bernoulli latent variables."""
    hidden: tuple[int, ...] = (200, 200)
    """Hidden widths of the nonlinear encoder (the decoder mirrors them)."""
    activation: str = "leaky_relu"
    """Hidden activation: leaky_relu (slope --leaky-slope) or a reparam.nn activation name."""
    leaky_slope: float = 0.3
    """LeakyReLU's negative slope (Keras' default, as in DisARM's code)."""
    batch_size: int = 50
    learning_rate: float = 1e-4
    """Adam's learning rate for encoder and decoder."""
    prior_learning_rate: float = 1e-2
    """SGD's learning rate for the prior's logits."""
    cv_learning_rate: float = 1e-4
    """REBAR / RELAX: Adam (β1 = 0.999) learning rate of the control variate's parameters."""
    epochs: int = 1000
    num_pairs: int = 1
    """P: arm/disarm use P antithetic pairs, reinforce_loo and vimco 2P independent samples, the
    others P samples."""
    rebar_eta: float = 1.0
    """Initial scale η of REBAR / RELAX's control variate."""
    rebar_temperature: float = 0.1
    """Initial temperature λ of REBAR / RELAX's relaxation."""
    relax_hidden: int = 137
    """RELAX: width of the residual control variate's hidden layer."""
    temperature: float = 1.0
    """τ of straight_through, reinmax and gumbel_rao (not tuned)."""
    variance_estimates: int = 100
    """N: gradient estimates of the variance measured at every validation."""
    eval_every: int = 2
    checkpoint_every: int = 10

    positive: ClassVar = ("latents", "num_pairs", "relax_hidden", "variance_estimates")

    @staticmethod
    def quick(**overrides: Any) -> Config:
        """Seconds-long: embedded 8x8 digits, 16 latents, a small network."""
        base = dict(dataset="digits", latents=16, hidden=(32,), learning_rate=3e-3, epochs=16)
        base |= dict(prior_learning_rate=1e-2, cv_learning_rate=3e-3, relax_hidden=16)
        base |= dict(eval_every=8, eval_subset=200, eval_samples=100, eval_chunk=50)
        return Config(**base | dict(variance_estimates=8) | overrides)

    def validate(self) -> Config:
        super().validate()
        for flag in ("prior_learning_rate", "cv_learning_rate", "temperature", "rebar_temperature"):
            value = getattr(self, flag)
            require(value > 0, "--" + flag.replace("_", "-"), "> 0", value)
        n, names = self.variance_estimates, ("leaky_relu", *ACTIVATIONS)
        require(n >= 2, "--variance-estimates", ">= 2", n)
        require(
            self.activation in names, "--activation", f"one of {', '.join(names)}", self.activation
        )
        return self

    @property
    def name(self) -> str:
        return f"{LABELS[self.estimator]} ({self.model})"

    @property
    def num_samples(self) -> int:
        return self.num_pairs * (2 if self.estimator in bernoulli_vae.AT_LEAST_TWO else 1)


def setup(config: Config, require_test: bool = False) -> runs.Setup:
    config = config.validate()
    dataset = data_lib.load(config.dataset, config.data_dir, require_test=require_test)
    act = dict(activation=config.activation, slope=config.leaky_slope)
    hidden = config.hidden if config.model == "nonlinear" else ()
    mean, bias = tuple(dataset.train.mean(axis=0).tolist()), tuple(output_bias(dataset.train))
    # DisARM's --demean_input and --initialize_with_bias:
    model = rnn.BernoulliVAE(
        config.latents, dataset.dim, hidden, input_mean=mean, output_bias=bias, **act
    )
    x0, b0 = jnp.zeros((1, dataset.dim)), jnp.zeros((1, config.latents))
    params: dict[str, Any] = {
        "model": jax.jit(model.init)(runs.key(config.seed, "init"), x0, b0),
        "prior": jnp.zeros(config.latents, jnp.float32),  # learned, from 0 as in DisARM's code
    }
    if config.estimator in ("rebar", "relax"):
        params["cv"] = bernoulli_vae.rebar_params(config.rebar_eta, config.rebar_temperature)
    residual = rnn.RelaxResidual(config.relax_hidden, **act)
    if config.estimator == "relax":
        init = runs.key(config.seed, "init/residual")
        params["cv"]["residual"] = residual.init(init, x0, b0[None])
    groups = {"model": "adam", "prior": "sgd", "cv": "cv"}
    optimizer = optax.multi_transform(
        {
            "adam": optax.adam(config.learning_rate, eps=1e-7),  # Keras' Adam, as DisARM's
            "sgd": optax.sgd(config.prior_learning_rate),
            "cv": optax.adam(config.cv_learning_rate, b1=0.999, eps=1e-7),
        },
        lambda tree: {k: jax.tree.map(lambda _: groups[k], v) for k, v in tree.items()},
    )
    encode = lambda params, x: model.apply(params["model"], x, method=ENCODE)
    log_lik = lambda p, x: lambda b: model.apply(p, x, b, method=LOG_LIKELIHOOD)  # (K, B)

    def loss_fn(params, batch, key, estimator=config.estimator):
        x = batch.astype(jnp.float32)
        surrogate, objective = bernoulli_vae.elbo(
            key,
            encode(params, x),
            log_lik(params["model"], x),
            params["prior"],
            estimator=estimator,
            num_samples=config.num_pairs * (2 if estimator in bernoulli_vae.AT_LEAST_TWO else 1),
            signal=log_lik(jax.lax.stop_gradient(params["model"]), x),
            temperature=config.temperature,
            cv_params=params.get("cv"),
            residual=lambda psi, z: residual.apply(psi, x, z),
        )
        return -jnp.mean(surrogate), {"objective": jnp.mean(objective)}

    @jax.jit  # (params, key, x) -> the one-sample ELBO (B,): a lower bound on log p(x)
    def elbo(params, key, x):
        logits, prior = encode(params, x), params["prior"]
        return bernoulli_vae.discrete_elbo(key, logits, log_lik(params["model"], x), prior)

    fixed = jnp.asarray(dataset.train[: config.batch_size], jnp.float32)  # the first images

    # The encoder gradient's variance on one fixed minibatch, the rest held (any estimator that
    # needs no trained parameters of its own, or the run's own).
    @functools.partial(jax.jit, static_argnums=1)
    def variance(params, estimator):
        def loss(key, encoder):
            model_params = {"params": params["model"]["params"] | {"encoder": encoder}}
            return loss_fn(params | {"model": model_params}, fixed, key, estimator)[0]

        key, n = stream_key(config.seed, "variance"), config.variance_estimates
        encoder = params["model"]["params"]["encoder"]
        result = bernoulli_vae.gradient_variance(key, loss, encoder, n, batch_size=25)
        return {"grad_variance": result["mean"], "grad_variance_sum": result["total"]}

    mesh = distributed.make_mesh(config.devices) if config.mesh == "data" else None
    train_epoch = train.make_train_epoch(loss_fn, optimizer, config.batch_size, mesh=mesh)
    state, key = train.create_state(params, optimizer), runs.key(config.seed, "train")
    monitor = lambda p, estimator=config.estimator: jax.tree.map(float, variance(p, estimator))
    return runs.Setup(
        config, dataset, model, state, train_epoch, key, elbo, mesh, loss_fn, monitor=monitor
    )


def evaluate_state(setup: runs.Setup, params, split: str = "valid", num_samples: int | None = None):
    """One-sample −ELBO on `split` and on the whole training set (what DisARM reports),
    importance-sampled NLL on `split`, and the encoder gradient's variance at `params`."""
    config, model = setup.config, setup.model
    data = setup.dataset.split(split)[: config.eval_examples]
    k = config.eval_samples if num_samples is None else num_samples
    key = lambda name: runs.key(config.seed, f"evaluate/{name}")
    encode = lambda x: (model.apply(params["model"], x, method=ENCODE), params["prior"])
    log_lik = lambda x, b: model.apply(params["model"], x, b, method=LOG_LIKELIHOOD)
    estimator = bernoulli_vae.importance_sampled_log_likelihood
    results = nll_record(estimator, key("nll"), data, encode, log_lik, k, config.eval_chunk)
    bound = lambda key_, x: setup.bound(params, key_, x)
    elbo = float(evaluation.mean_bound(key("elbo"), data, bound, jit=False))
    train_key = stream_key(config.seed, "evaluate/train")
    train_elbo = float(evaluation.mean_bound(train_key, setup.dataset.train, bound, jit=False))
    variance = setup.monitor(params)
    variance["log10_grad_variance"] = float(np.log10(variance["grad_variance"]))
    # Every estimator at these parameters: the ordering at one point, as the theory states it.
    others = [e for e in COMPARED if e != config.estimator]  # the run's own: measured above
    by = {e: setup.monitor(params, e)["grad_variance"] for e in others}
    own = {} if config.estimator == "vimco" else {config.estimator: variance["grad_variance"]}
    variance["grad_variance_by_estimator"] = by | own
    bounds = {"elbo": elbo, "neg_elbo": -elbo, "train_neg_elbo": -train_elbo}
    return {"split": split, "examples": len(data), **bounds, **variance, **results}


def images(setup: runs.Setup, params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    config, model = setup.config, setup.model
    decode = lambda b: np.asarray(jax.nn.sigmoid(model.apply(params["model"], b, method=DECODE)))
    prior = jax.nn.sigmoid(params["prior"])
    b = jax.random.bernoulli(runs.key(config.seed, "plot/prior"), prior, (64, config.latents))
    x = setup.dataset.valid[:32].astype(np.float32)
    logits = model.apply(params["model"], jnp.asarray(x), method=ENCODE)
    return decode(b.astype(jnp.float32)), x, decode((logits > 0).astype(jnp.float32))  # q's mode


EXPERIMENT = runs.Experiment(
    sys.modules[__name__],
    curves=("objective", "valid_elbo", "valid −ELBO (1 sample)"),
    image_titles=("Bernoulli means of p(x|b), b ~ the learned prior", "reconstructions, q's mode"),
    evaluate_fields=("checkpoint", "epochs", "examples", "neg_elbo", "train_neg_elbo"),
    table_columns=(("train −ELBO", "train_neg_elbo"), ("log10 grad var", "log10_grad_variance")),
    record_curves=("objective", "valid_elbo", "grad_variance"),
    record_figures=functools.partial(vae_plots.variance_curves, name="bernoulli_vae"),
)


def main(argv: list[str] | None = None) -> int:
    return vae_commands.main(EXPERIMENT, argv)


if __name__ == "__main__":
    sys.exit(main())
