"""Categorical-latent VAE on binarized MNIST (Jang, Gu & Poole 2017, Table 2, categorical VAE).

    python -m experiments.gumbel_vae train --quick --workdir runs/gumbel/quick
    python -m experiments.gumbel_vae train --estimator gumbel_softmax --workdir runs/gumbel/gs \
        --epochs 200 --max-minutes 35
    python -m experiments.gumbel_vae train --estimator rebar --epochs 10 --workdir runs/gumbel/rebar
    python -m experiments.gumbel_vae train ... --resume                   # continue a run
    python -m experiments.gumbel_vae train ... --mesh data [--devices 4]  # data parallel
    python -m experiments.gumbel_vae evaluate --checkpoint runs/gumbel/gs --split valid
    python -m experiments.gumbel_vae compare runs/gumbel/* --out curves.png
    python -m experiments.gumbel_vae table runs/gumbel/* --json rows.json   # markdown table

The model is that of Jang et al.'s released code (ericjang/gumbel-softmax): encoder
784-512-256-(20×10) to the logits of 20 independent 10-way categoricals, decoder 200-256-512-784
over the flattened one-hot (or relaxed) code, ReLU, uniform prior with the closed-form
categorical KL, Adam at 1e-3, batch 100 (the paper itself tuned SGD with momentum per estimator;
see experiments/results/gumbel_vae.md). The paper's number is a bound with discrete codes and
m = 1000 importance samples: our importance-sampled NLL with K = 1000. The estimator of the
reconstruction term's gradient is --estimator (`reparam.discrete_vae.ESTIMATORS`):
gumbel_softmax, straight_through, score_function (baseline: the other examples of the batch),
rebar, relax (control-variate parameters trained to minimise the estimator's variance). The
relaxations' temperature is annealed as τ = max(τ_min, τ0·exp(−r·t)), t the global step,
updated every N steps (--anneal-rate r, --anneal-interval N).

`train` writes into --workdir: config.json, metrics.jsonl (one record per epoch: the training
objective, τ, and every few epochs the validation discrete ELBO), checkpoints/ (orbax),
results.json (validation discrete ELBO, importance-sampled NLL with K = --eval-samples, wall and
CPU seconds) and curves.png, samples.png, reconstructions.png. `evaluate` prints the NLL (nats)
as its last line. `--quick` is a seconds-long run on the embedded 8x8 digits.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from experiments import runs
from reparam.train import data as data_lib

ESTIMATORS = ("gumbel_softmax", "straight_through", "score_function", "rebar", "relax")
LABELS = {
    "gumbel_softmax": "Gumbel-softmax",
    "straight_through": "ST Gumbel-softmax",
    "score_function": "score function (batch baseline)",
    "rebar": "REBAR",
    "relax": "RELAX",
}


@dataclass(frozen=True)
class Config(runs.JsonConfig):
    """One run. Defaults follow Jang et al. (2017); `quick()` is the variant the tests run."""

    dataset: str = "mnist"  # "mnist" (files in data_dir) or "digits" (embedded)
    data_dir: str | None = None  # None: the repository's data/binarized_mnist
    estimator: str = "gumbel_softmax"
    latents: int = 20  # L categorical variables ...
    categories: int = 10  # ... of C categories each
    hidden: tuple[int, ...] = (512, 256)  # encoder widths; the decoder mirrors them
    activation: str = "relu"
    num_samples: int = 1  # codes per example in the training objective
    sf_baseline: str = "batch_leave_one_out"  # score_function: or "leave_one_out" (K >= 2)
    rebar_eta: float = 1.0  # initial η of REBAR / RELAX
    rebar_temperature: float = 0.5  # initial λ of REBAR / RELAX's relaxed control variate
    relax_hidden: int = 200  # RELAX: width of the residual control variate's hidden layer
    tau_initial: float = 1.0
    tau_min: float = 0.5
    anneal_rate: float = 1e-4  # r of τ = max(τ_min, τ0·exp(−r·t))
    anneal_interval: int = 1000  # N: τ changes every N steps
    batch_size: int = 100
    epochs: int = 100
    learning_rate: float = 1e-3
    seed: int = 0
    checkpoint_every: int = 10
    keep_checkpoints: int = 3
    eval_every: int = 5  # epochs between validation ELBOs in metrics.jsonl
    eval_subset: int = 2000  # validation examples for the in-training ELBO
    eval_samples: int = 1000  # K of the final importance-sampled NLL
    eval_chunk: int = 250
    eval_examples: int | None = None  # final NLL on the first N validation examples (None: all)
    max_minutes: float | None = None
    mesh: str = "none"  # "none" or "data" (data parallel, reparam.distributed)
    devices: int | None = None

    @staticmethod
    def quick(**overrides: Any) -> Config:
        """Seconds-long: embedded 8x8 digits, 8 × 4 categoricals, a small network."""
        base = {
            "dataset": "digits",
            "latents": 8,
            "categories": 4,
            "hidden": (64, 32),
            "relax_hidden": 32,
            "batch_size": 50,
            "learning_rate": 3e-3,  # at 1e-3 20 epochs end in posterior collapse (KL ≈ 0)
            "epochs": 20,
            "anneal_interval": 50,
            "anneal_rate": 2e-3,  # τ reaches its floor 0.5 at step 350 (epoch 14)
            "checkpoint_every": 10,
            "eval_every": 10,
            "eval_subset": 250,
            "eval_samples": 100,
            "eval_chunk": 50,
        }
        return Config(**{**base, **overrides})

    def validate(self) -> Config:
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"`estimator` must be one of {ESTIMATORS}, got {self.estimator!r}")
        if self.tau_initial <= 0 or self.tau_min <= 0 or self.rebar_temperature <= 0:
            raise ValueError(
                "temperatures (`tau_initial`, `tau_min`, `rebar_temperature`) must be > 0; got "
                f"{self.tau_initial}, {self.tau_min}, {self.rebar_temperature}"
            )
        if self.anneal_rate < 0 or self.anneal_interval < 1:
            raise ValueError(
                f"`anneal_rate` must be >= 0 and `anneal_interval` >= 1; got {self.anneal_rate}, "
                f"{self.anneal_interval}"
            )
        if min(self.epochs, self.batch_size, self.num_samples, self.latents) < 1:
            raise ValueError("`epochs`, `batch_size`, `num_samples` and `latents` must be >= 1")
        if self.categories < 2:
            raise ValueError(f"`categories` must be >= 2, got {self.categories}")
        if self.mesh not in ("none", "data"):
            raise ValueError(f"`mesh` must be 'none' or 'data', got {self.mesh!r}")
        return self

    @property
    def name(self) -> str:
        return LABELS[self.estimator]


# ---------------------------------------------------------------- model and loss
def residual_network(config: Config):
    """RELAX's learned part r_ψ(z): an MLP over the flattened continuous z, one value each."""
    import flax.linen as nn

    class Residual(nn.Module):
        hidden: int

        @nn.compact
        def __call__(self, z):
            h = z.reshape((*z.shape[:-2], z.shape[-2] * z.shape[-1]))
            h = nn.relu(nn.Dense(self.hidden)(h))
            return nn.Dense(1)(h)[..., 0]

    return Residual(config.relax_hidden)


@dataclass
class Run:
    """Everything a run needs, built from a config."""

    config: Config
    dataset: data_lib.Dataset
    model: Any
    state: Any
    train_epoch: Any
    key: Any
    mesh: Any = None
    loss_fn: Any = None  # (params, batch, key, step) -> (loss, metrics)


def setup(config: Config, require_test: bool = False) -> Run:
    import jax
    import jax.numpy as jnp
    import optax

    from reparam import nn as rnn
    from reparam import train
    from reparam.models import discrete_vae
    from reparam.train import distributed

    config = config.validate()
    dataset = data_lib.load(config.dataset, config.data_dir, require_test=require_test)
    model = rnn.categorical_vae(
        dataset.dim,
        config.latents,
        config.categories,
        config.hidden,
        config.activation,
        runs.output_bias(dataset.train),
    )
    key = jax.random.key(config.seed)
    init_key, residual_key, run_key = (jax.random.fold_in(key, i) for i in range(3))
    x0 = jnp.zeros((config.batch_size, dataset.dim), jnp.float32)
    z0 = jnp.zeros((config.batch_size, config.latents, config.categories), jnp.float32)
    params: dict[str, Any] = {"model": jax.jit(model.init)(init_key, x0, z0)}
    residual = None
    if config.estimator in ("rebar", "relax"):
        params["cv"] = discrete_vae.rebar_params(config.rebar_eta, config.rebar_temperature)
        if config.estimator == "relax":
            net = residual_network(config)
            params["cv"]["residual"] = net.init(residual_key, z0[None])
            residual = net.apply
    optimizer = optax.adam(config.learning_rate)  # Jang et al.: Adam, 1e-3 (TF defaults)
    sg = jax.lax.stop_gradient
    encode, log_lik = rnn.CategoricalVAE.encode, rnn.CategoricalVAE.log_likelihood

    def loss_fn(params, batch, key, step):
        x = batch.astype(jnp.float32)
        tau = discrete_vae.temperature_schedule(
            step,
            initial=config.tau_initial,
            minimum=config.tau_min,
            rate=config.anneal_rate,
            interval=config.anneal_interval,
        )
        logits = model.apply(params["model"], x, method=encode)
        surrogate, objective = discrete_vae.elbo(
            key,
            logits,
            lambda z: model.apply(params["model"], x, z, method=log_lik),
            estimator=config.estimator,
            temperature=tau,
            num_samples=config.num_samples,
            signal=lambda z: model.apply(sg(params["model"]), x, z, method=log_lik),
            baseline=config.sf_baseline,
            cv_params=params.get("cv"),
            residual=residual,
        )
        return -jnp.mean(surrogate), {"objective": jnp.mean(objective), "temperature": tau}

    mesh = distributed.make_mesh(config.devices) if config.mesh == "data" else None
    train_epoch = train.make_train_epoch(
        loss_fn, optimizer, config.batch_size, mesh=mesh, with_step=True
    )
    return Run(
        config,
        dataset,
        model,
        train.create_state(params, optimizer),
        train_epoch,
        run_key,
        mesh,
        loss_fn,
    )


def _elbo_fn(run: Run):
    """Jitted (params, key, x) -> the one-sample discrete ELBO (B,): a true lower bound."""
    import jax

    from reparam import nn as rnn
    from reparam.models import discrete_vae

    model = run.model

    @jax.jit
    def elbo(params, key, x):
        logits = model.apply(params["model"], x, method=rnn.CategoricalVAE.encode)
        return discrete_vae.discrete_elbo(
            key,
            logits,
            lambda z: model.apply(params["model"], x, z, method=rnn.CategoricalVAE.log_likelihood),
        )

    return elbo


def _relaxed_objective_fn(run: Run, temperature: float):
    """Jitted (params, key, x) -> the relaxed objective (B,) at `temperature`: the decoder sees
    one Concrete sample, with the closed-form categorical KL (what Gumbel-softmax training
    maximises; not a bound on log p(x))."""
    import jax

    from reparam import nn as rnn
    from reparam.models import discrete_vae

    model = run.model

    @jax.jit
    def objective(params, key, x):
        logits = model.apply(params["model"], x, method=rnn.CategoricalVAE.encode)
        return discrete_vae.elbo(
            key,
            logits,
            lambda z: model.apply(params["model"], x, z, method=rnn.CategoricalVAE.log_likelihood),
            estimator="gumbel_softmax",
            temperature=temperature,
        )[1]

    return objective


# ---------------------------------------------------------------- evaluation and plots
def evaluate_state(run: Run, params, split: str = "valid", num_samples: int | None = None):
    """Discrete ELBO (one sample per example), importance-sampled NLL and the relaxed objective
    at τ = tau_min on `split`."""
    import jax

    from reparam import nn as rnn
    from reparam.models import discrete_vae
    from reparam.train import evaluate

    config = run.config
    data = run.dataset.split(split)[: config.eval_examples]
    key = jax.random.fold_in(jax.random.key(config.seed), 1000)
    model = run.model
    k = config.eval_samples if num_samples is None else num_samples
    tic = time.perf_counter()
    log_px = discrete_vae.importance_sampled_log_likelihood(
        jax.random.fold_in(key, 0),
        data,
        lambda x: model.apply(params["model"], x, method=rnn.CategoricalVAE.encode),
        lambda x, z: model.apply(params["model"], x, z, method=rnn.CategoricalVAE.log_likelihood),
        num_samples=k,
        chunk_size=min(config.eval_chunk, k),
    )
    nll_seconds = time.perf_counter() - tic
    elbo = evaluate.mean_bound(
        jax.random.fold_in(key, 1), data, functools.partial(_elbo_fn(run), params), jit=False
    )
    relaxed = evaluate.mean_bound(
        jax.random.fold_in(key, 2),
        data,
        functools.partial(_relaxed_objective_fn(run, config.tau_min), params),
        jit=False,
    )
    return {
        "split": split,
        "examples": len(data),
        "elbo": float(elbo),
        "neg_elbo": float(-elbo),
        # The Gumbel-softmax training objective at τ = tau_min, for reference (not a bound).
        "relaxed_neg_objective": float(-relaxed),
        "relaxed_temperature": config.tau_min,
        "nll": float(-log_px.mean()),
        "nll_stderr": float(log_px.std() / np.sqrt(len(log_px))),
        "nll_samples": k,
        "nll_seconds": nll_seconds,
    }


def plot_comparison(workdirs: list[Path], out: Path, top: float | None = None) -> None:
    """Validation −ELBO (discrete) against passes and against training minutes, one line per run."""
    labels = [f"{runs.read_config(w, Config).name} ({Path(w).name})" for w in workdirs]
    ylabel = "validation −ELBO (nats, discrete codes)"
    runs.plot_comparison(workdirs, out, labels, "valid_elbo", ylabel, top)


def plot_samples_and_reconstructions(run: Run, params, workdir: Path) -> None:
    import jax
    import jax.numpy as jnp

    from reparam import nn as rnn

    config, model = run.config, run.model
    key = jax.random.fold_in(jax.random.key(config.seed), 2000)
    # Codes from the uniform prior, one category per latent.
    index = jax.random.randint(key, (64, config.latents), 0, config.categories)
    z = jax.nn.one_hot(index, config.categories, dtype=jnp.float32)
    means = jax.nn.sigmoid(model.apply(params["model"], z, method=rnn.CategoricalVAE.decode))
    x = run.dataset.valid[:32].astype(np.float32)
    logits = model.apply(params["model"], jnp.asarray(x), method=rnn.CategoricalVAE.encode)
    mode = jax.nn.one_hot(jnp.argmax(logits, -1), config.categories, dtype=jnp.float32)
    recon = jax.nn.sigmoid(model.apply(params["model"], mode, method=rnn.CategoricalVAE.decode))
    runs.save_samples_and_reconstructions(
        workdir,
        run.dataset.image_shape,
        np.asarray(means),
        x,
        np.asarray(recon),
        "Bernoulli means of p(x|z), z ~ uniform prior",
        "validation images (rows 1, 3) and reconstructions at the mode of q (rows 2, 4)",
    )


# ---------------------------------------------------------------- the commands
def train_and_evaluate(
    config: Config,
    workdir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    final_eval: bool = True,
    on_epoch_end=None,
) -> dict:
    """Train `config` in `workdir`, then evaluate on the validation split and plot.

    Returns:
      results (also written to workdir/results.json), with "status" "completed",
      "interrupted" or "time_limit".
    """
    import jax

    from reparam.train import distributed, evaluate

    run = setup(config)
    valid_subset = run.dataset.valid[: config.eval_subset]
    eval_key = jax.random.fold_in(jax.random.key(config.seed), 3000)
    elbo_fn = _elbo_fn(run)  # compiled once; parameters are an argument

    def validation(state, epoch):
        bound = functools.partial(elbo_fn, state.params)
        return {"valid_elbo": evaluate.mean_bound(eval_key, valid_subset, bound, jit=False)}

    result, results = runs.train_in_workdir(
        run, workdir, validation, resume=resume, progress=progress, on_epoch_end=on_epoch_end
    )
    records = runs.read_metrics(workdir)
    results["estimator"] = config.estimator
    results["final_temperature"] = records[-1].get("temperature") if records else None
    if not distributed.is_primary():
        return results
    workdir = Path(workdir)

    def plot(params):
        valid_label = "valid −ELBO (discrete)"
        runs.plot_curves(
            workdir, workdir / "curves.png", config.name, "objective", "valid_elbo", valid_label
        )
        plot_samples_and_reconstructions(run, params, workdir)

    evaluate_valid = lambda params: evaluate_state(run, params, "valid")
    final = final_eval and result.status != "interrupted"
    return runs.finish_run(
        workdir, results, result.state.params, plot=plot, evaluate=evaluate_valid if final else None
    )


def evaluate_checkpoint(checkpoint: str | Path, **options: Any) -> dict:
    """Evaluate a saved run on `split` (see `runs.evaluate_checkpoint` for the options)."""
    return runs.evaluate_checkpoint(checkpoint, Config, setup, evaluate_state, **options)


def summarize(workdirs: list[Path]) -> list[dict]:
    """One row per run: its config's key fields, results.json and the validation curve's best."""
    rows = []
    for workdir in workdirs:
        workdir = Path(workdir)
        config = runs.read_config(workdir, Config)
        results = json.loads((workdir / "results.json").read_text())
        evals = [r for r in runs.read_metrics(workdir) if "valid_elbo" in r]
        best = min(evals, key=lambda r: -r["valid_elbo"]) if evals else None
        rows.append(
            {
                "run": workdir.name,
                "estimator": config.estimator,
                "label": config.name,
                **{k: v for k, v in results.items() if k not in ("devices", "name")},
                "best_valid_subset_neg_elbo": None if best is None else -best["valid_elbo"],
                "best_epoch": None if best is None else best["epoch"],
                "config": config.to_json(),
            }
        )
    return rows


def markdown_table(rows: list[dict]) -> str:
    """The results table of experiments/results/gumbel_vae.md."""
    lines = [
        "| run | estimator | passes | train min (epochs only) | valid −ELBO (discrete) | "
        "valid NLL (IS, K) | relaxed −objective τ=0.5 |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['run']} | {r['label']} | {r['epochs']} | "
            f"{r['train_epoch_seconds_total'] / 60:.1f} | {r['neg_elbo']:.2f} | "
            f"{r['nll']:.2f} ± {r['nll_stderr']:.2f} (K={r['nll_samples']}) | "
            f"{r['relaxed_neg_objective']:.2f} |"
            if "relaxed_neg_objective" in r
            else f"| {r['run']} | {r['label']} | {r['epochs']} | "
            f"{r['train_epoch_seconds_total'] / 60:.1f} | {r['neg_elbo']:.2f} | "
            f"{r['nll']:.2f} ± {r['nll_stderr']:.2f} (K={r['nll_samples']}) | – |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- command line
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m experiments.gumbel_vae", description=__doc__)
    parser.add_argument(
        "--device", default="auto", help="JAX platform: auto, cpu, gpu or tpu (default auto)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    t = commands.add_parser("train", help="train (and evaluate on the validation split)")
    t.add_argument("--quick", action="store_true", help="seconds-long run on the embedded digits")
    t.add_argument("--workdir", required=True, help="where metrics, checkpoints, plots go")
    t.add_argument("--estimator", choices=ESTIMATORS)
    t.add_argument("--dataset", choices=("mnist", "digits"))
    t.add_argument("--data-dir", help="folder of binarized_mnist_{train,valid}.amat[.gz]")
    t.add_argument("--epochs", type=int, help="passes over the training set")
    t.add_argument("--max-minutes", type=float, help="stop after the epoch that passes this")
    t.add_argument("--batch-size", type=int)
    t.add_argument("--learning-rate", type=float)
    t.add_argument("--seed", type=int)
    t.add_argument("--num-samples", type=int, help="codes per example in the objective")
    t.add_argument("--tau-initial", type=float, help="τ0 (default 1.0)")
    t.add_argument("--tau-min", type=float, help="the temperature's floor (default 0.5)")
    t.add_argument("--anneal-rate", type=float, help="r of τ = max(τ_min, τ0·exp(−r·t))")
    t.add_argument("--anneal-interval", type=int, help="N: τ is updated every N steps")
    t.add_argument("--sf-baseline", choices=("batch_leave_one_out", "leave_one_out"))
    t.add_argument("--checkpoint-every", type=int)
    t.add_argument("--eval-every", type=int, help="epochs between validation ELBOs")
    t.add_argument("--eval-samples", type=int, help="K of the final NLL (default 1000)")
    t.add_argument("--eval-examples", type=int, help="final NLL on the first N examples only")
    t.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    t.add_argument("--no-eval", action="store_true", help="skip the final NLL evaluation")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--mesh", choices=("none", "data"), help="data-parallel over a device mesh")
    t.add_argument("--devices", type=int, help="devices of the data mesh (default: all)")
    c = commands.add_parser("compare", help="plot the validation curves of several runs")
    c.add_argument("workdirs", nargs="+")
    c.add_argument("--out", required=True, help="PNG file to write")
    c.add_argument("--top", type=float, help="upper limit of the y axis (nats)")
    s = commands.add_parser("table", help="markdown table (and JSON) of finished runs")
    s.add_argument("workdirs", nargs="+")
    s.add_argument("--json", help="write the rows as JSON to this file")
    e = commands.add_parser("evaluate", help="discrete ELBO and importance-sampled NLL")
    e.add_argument("--checkpoint", required=True, help="a workdir or a checkpoint directory")
    e.add_argument("--data-dir", help="folder of binarized_mnist_<split>.amat[.gz]")
    e.add_argument("--split", choices=("valid", "test"), default="valid")
    e.add_argument("--k", type=int, help="importance samples (default: the run's)")
    e.add_argument("--examples", type=int, help="evaluate the first N examples only")
    e.add_argument("--json", help="also write all the measured values to this JSON file")
    return parser


def _config_from_args(args: argparse.Namespace) -> Config:
    names = (
        "estimator",
        "dataset",
        "data_dir",
        "epochs",
        "max_minutes",
        "batch_size",
        "learning_rate",
        "seed",
        "num_samples",
        "tau_initial",
        "tau_min",
        "anneal_rate",
        "anneal_interval",
        "sf_baseline",
        "checkpoint_every",
        "eval_every",
        "eval_samples",
        "eval_examples",
        "mesh",
        "devices",
    )
    overrides = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    if args.devices is not None and "mesh" not in overrides:
        overrides["mesh"] = "data"
    config = Config.quick(**overrides) if args.quick else Config(**overrides)
    return config.validate()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.device != "auto":
        import jax

        jax.config.update("jax_platforms", args.device)
    return runs.run_command(lambda: _command(args))


def _command(args: argparse.Namespace) -> int:
    if args.command == "train":
        return runs.train_command(args, _config_from_args(args), train_and_evaluate)
    if args.command == "table":
        rows = summarize([Path(w) for w in args.workdirs])
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
        print(markdown_table(rows))
        return 0
    if args.command == "compare":
        plot_comparison([Path(w) for w in args.workdirs], Path(args.out), args.top)
        print(f"wrote {args.out}")
        return 0
    results = evaluate_checkpoint(
        args.checkpoint,
        data_dir=args.data_dir,
        split=args.split,
        num_samples=args.k,
        examples=args.examples,
    )
    fields = ("checkpoint", "epochs", "examples", "neg_elbo", "relaxed_neg_objective", "nll_stderr")
    return runs.report_evaluation(results, fields, args.json)


if __name__ == "__main__":
    sys.exit(main())
