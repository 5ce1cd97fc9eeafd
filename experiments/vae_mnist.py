"""VAE and IWAE on binarized MNIST (Burda, Grosse & Salakhutdinov 2016, Table 1, one layer).

    python -m experiments.vae_mnist train --quick --workdir runs/quick
    python -m experiments.vae_mnist train --model iwae --k 5 --grad dreg --workdir runs/iwae5
    python -m experiments.vae_mnist train ... --epochs 30 --max-minutes 20   # truncated schedule
    python -m experiments.vae_mnist train ... --resume                       # continue a run
    python -m experiments.vae_mnist evaluate --checkpoint runs/iwae5 --data-dir DIR --split test
    python -m experiments.vae_mnist compare runs/vae runs/iwae5 --out curves.png
    python -m experiments.vae_mnist paired vae.json iwae5.json   # evaluate --json records
    python -m experiments.vae_mnist train ... --mesh data [--devices 4] [--shard-params]
    python -m experiments.vae_mnist --coordinator HOST:PORT --num-processes N --process-id I \
        train ...                                                          # one per process
    python -m experiments.vae_mnist train --model iwae --k 5000 --k-chunk 500 ...   # large K

`--mesh data` trains data-parallel over the devices (reparam.distributed: batches sharded, the
parameters replicated, or sharded with --shard-params); `--coordinator` joins a multi-process
run (start one process per host with the same arguments and its own --process-id; the workdir
must be shared). `--k-chunk` evaluates the IWAE's decoder on K samples a chunk at a time under
jax.checkpoint, so memory grows with the chunk, not with K.

`train` writes into --workdir: config.json, metrics.jsonl (one record per epoch),
checkpoints/ (orbax, the last few), results.json (importance-sampled NLL with K=5000, ELBO,
active units, per-dimension KL) and curves.png, samples.png, reconstructions.png. Ctrl-C ends
the running epoch, saves a checkpoint and exits; `--resume` continues bit for bit.
`evaluate` prints the NLL (nats) as its last line.

The architecture is the paper's 784-200-200-50 (tanh) encoder and its mirror decoder; the
schedule is 3^i passes at learning rate 1e-3·10^(−i/7), i = 0..7 (3280 passes), Adam with
β2 = 0.999 and ε = 1e-4, batch 100. `--quick` is a seconds-long run on the embedded 8x8 digits.
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

MODELS = ("vae", "iwae")
GRADIENTS = ("standard", "stl", "dreg")


@dataclass(frozen=True)
class Config(runs.JsonConfig):
    """One run. Defaults are the paper's; `quick()` is the seconds-long variant the tests run."""

    dataset: str = "mnist"  # "mnist" (files in data_dir) or "digits" (embedded)
    data_dir: str | None = None  # None: the repository's data/binarized_mnist
    model: str = "vae"  # "vae" (ELBO) or "iwae" (K-sample bound)
    k: int = 1  # samples in the training objective (K of the IWAE; 1 for the VAE)
    grad: str = "standard"  # "standard", "stl" or "dreg"
    kl: str = "analytic"  # the VAE's KL term: "analytic" or "mc" (stl/dreg imply "mc")
    beta: float = 1.0
    architecture: str = "mlp"  # "mlp" (the paper's) or "conv"
    hidden: tuple[int, ...] = (200, 200)
    latent: int = 50
    activation: str = "tanh"
    batch_size: int = 100
    epochs: int = 3280  # passes over the training set (the full schedule is 3280)
    stages: int = 8  # schedule stages: 3^i passes at learning_rate·10^(−i/7)
    learning_rate: float = 1e-3
    b2: float = 0.999
    eps: float = 1e-4
    seed: int = 0
    checkpoint_every: int = 20
    keep_checkpoints: int = 3
    eval_every: int = 10  # epochs between validation bounds in metrics.jsonl
    eval_subset: int = 2000  # validation examples for the in-training bound
    eval_samples: int = 5000  # K of the final importance-sampled NLL
    eval_chunk: int = 500
    eval_examples: int | None = None  # final evaluation on the first N examples (None: all)
    max_minutes: float | None = None
    mesh: str = "none"  # "none" (one device) or "data" (data parallel, reparam.distributed)
    devices: int | None = None  # devices of the data mesh (None: all, over all processes)
    shard_params: bool = False  # shard the parameters over the mesh instead of replicating
    k_chunk: int | None = None  # IWAE samples per rematerialized chunk (None: all K at once)

    @staticmethod
    def quick(**overrides: Any) -> Config:
        """Seconds-long: embedded 8x8 digits, a small network, 30 epochs."""
        base = {
            "dataset": "digits",
            "hidden": (64, 64),
            "latent": 8,
            "batch_size": 50,
            "epochs": 30,
            "checkpoint_every": 10,
            "eval_every": 10,
            "eval_subset": 250,
            "eval_samples": 500,
            "eval_chunk": 250,
        }
        return Config(**{**base, **overrides})

    def validate(self) -> Config:
        if self.model not in MODELS:
            raise ValueError(f"`model` must be one of {MODELS}, got {self.model!r}")
        if self.grad not in GRADIENTS:
            raise ValueError(f"`grad` must be one of {GRADIENTS}, got {self.grad!r}")
        if self.model == "vae" and self.k != 1:
            raise ValueError("the VAE uses k=1; use --model iwae for K > 1 samples")
        if self.k < 1 or self.epochs < 1 or self.batch_size < 1:
            raise ValueError("`k`, `epochs` and `batch_size` must be >= 1")
        if self.mesh not in ("none", "data"):
            raise ValueError(f"`mesh` must be 'none' or 'data', got {self.mesh!r}")
        if self.k_chunk is not None and self.k_chunk < 1:
            raise ValueError(f"`k_chunk` must be >= 1, got {self.k_chunk}")
        return self

    @property
    def name(self) -> str:
        label = "VAE" if self.model == "vae" else f"IWAE-{self.k}"
        return f"{label} ({self.grad})"


# ---------------------------------------------------------------- model and losses
def build_model(config: Config, dim: int, image_shape: tuple[int, int], output_bias=None):
    """The flax module for `config`: a VAE or IWAE over MLP (or conv) encoder and decoder."""
    from reparam import nn as rnn

    if config.architecture == "mlp":
        encoder = rnn.GaussianMLPEncoder(config.latent, config.hidden, config.activation)
        decoder = rnn.BernoulliMLPDecoder(
            dim, tuple(reversed(config.hidden)), config.activation, output_bias
        )
    elif config.architecture == "conv":
        encoder = rnn.GaussianConvEncoder(config.latent, image_shape)
        decoder = rnn.BernoulliConvDecoder(image_shape)
    else:
        raise ValueError(f"`architecture` must be 'mlp' or 'conv', got {config.architecture!r}")
    if config.model == "vae":
        kl = "mc" if config.grad != "standard" else config.kl
        return rnn.VAE(encoder, decoder, kl=kl, beta=config.beta, gradient=config.grad)
    return rnn.IWAE(encoder, decoder, gradient=config.grad, num_samples=config.k)


@dataclass
class Run:
    """Everything a run needs, built from a config."""

    config: Config
    dataset: data_lib.Dataset
    model: Any
    state: Any
    train_epoch: Any
    schedule: Any
    key: Any
    mesh: Any = None
    loss_fn: Any = None  # (params, batch, key) -> (loss, metrics), what train_epoch minimizes


def setup(config: Config, require_test: bool = False) -> Run:
    import jax
    import jax.numpy as jnp

    from reparam import nn as rnn
    from reparam import train
    from reparam.models import objectives
    from reparam.train import distributed

    config = config.validate()
    dataset = data_lib.load(config.dataset, config.data_dir, require_test=require_test)
    model = build_model(config, dataset.dim, dataset.image_shape, runs.output_bias(dataset.train))
    key = jax.random.key(config.seed)
    init_key, sample_key, run_key = (jax.random.fold_in(key, i) for i in range(3))
    x0 = jnp.zeros((config.batch_size, dataset.dim), jnp.float32)
    params = jax.jit(model.init)(init_key, sample_key, x0)  # one compilation, not one per op
    steps = max(1, len(dataset.train) // config.batch_size)
    schedule = train.paper_schedule(steps, config.learning_rate, config.stages)
    optimizer = train.adam(schedule, b2=config.b2, eps=config.eps)

    def loss_fn(params, batch, key):
        surrogate, bound = model.apply(params, key, batch.astype(jnp.float32))
        return -jnp.mean(surrogate), {"bound": jnp.mean(bound)}

    if config.model == "iwae" and config.k_chunk is not None and config.k_chunk < config.k:
        # The same bound as model.apply, with the decoder run k_chunk samples at a time.
        def loss_fn(params, batch, key):
            x = batch.astype(jnp.float32)
            log_likelihood = train.chunked_over_samples(
                lambda z: model.apply(params, x, z, method=rnn.VAE.log_likelihood), config.k_chunk
            )
            surrogate, bound = objectives.iwae(
                key,
                x,
                lambda x_: model.apply(params, x_, method=rnn.VAE.encode),
                log_likelihood,
                config.k,
                gradient=config.grad,
            )
            return -jnp.mean(surrogate), {"bound": jnp.mean(bound)}

    mesh = distributed.make_mesh(config.devices) if config.mesh == "data" else None
    train_epoch = train.make_train_epoch(
        loss_fn, optimizer, config.batch_size, mesh=mesh, shard_params=config.shard_params
    )
    return Run(
        config,
        dataset,
        model,
        train.create_state(params, optimizer),
        train_epoch,
        schedule,
        run_key,
        mesh,
        loss_fn,
    )


def model_fns(model, params):
    """(encode, log_likelihood, bound) closures over `params` for reparam.evaluate."""
    from reparam import nn as rnn

    encode = lambda x: model.apply(params, x, method=rnn.VAE.encode)
    log_likelihood = lambda x, z: model.apply(params, x, z, method=rnn.VAE.log_likelihood)
    bound = lambda key, x: model.apply(params, key, x)[1]
    return encode, log_likelihood, bound


# ---------------------------------------------------------------- evaluation and plots
def evaluate_state(run: Run, params, split: str = "valid", num_samples: int | None = None):
    """Importance-sampled NLL, ELBO, training bound, active units and per-dimension KL."""
    import jax

    from reparam import nn as rnn
    from reparam.train import evaluate

    config = run.config
    data = run.dataset.split(split)[: config.eval_examples]
    key = jax.random.fold_in(jax.random.key(config.seed), 1000)
    encode, log_likelihood, bound = model_fns(run.model, params)
    k = config.eval_samples if num_samples is None else num_samples
    tic = time.perf_counter()
    log_px = evaluate.importance_sampled_log_likelihood(
        jax.random.fold_in(key, 0),
        data,
        encode,
        log_likelihood,
        num_samples=k,
        chunk_size=min(config.eval_chunk, k),
    )
    nll_seconds = time.perf_counter() - tic
    # The ELBO with the closed-form KL (lower variance than the one-sample estimate).
    elbo_model = rnn.VAE(run.model.encoder, run.model.decoder, kl="analytic")
    elbo = evaluate.mean_bound(
        jax.random.fold_in(key, 1), data, lambda k_, x: elbo_model.apply(params, k_, x)[1]
    )
    train_bound = evaluate.mean_bound(jax.random.fold_in(key, 2), data, bound)
    active, variances = evaluate.active_units(data, encode)
    kl_dims = evaluate.per_dimension_kl(data, encode)
    return {
        "split": split,
        "examples": len(data),
        "nll": float(-log_px.mean()),
        "nll_stderr": float(log_px.std() / np.sqrt(len(log_px))),
        "nll_samples": k,
        "nll_seconds": nll_seconds,
        "elbo": float(elbo),
        f"bound_k{config.k}": float(train_bound),
        "active_units": active,
        "posterior_mean_variance": variances.tolist(),
        "kl_per_dim": kl_dims.tolist(),
        "kl_total": float(kl_dims.sum()),
        # Per example, so that two runs evaluated on the same examples compare pairwise.
        "log_px": np.asarray(log_px).tolist(),
    }


def plot_samples_and_reconstructions(run: Run, params, workdir: Path) -> None:
    import jax
    import jax.numpy as jnp

    from reparam import nn as rnn
    from reparam import normal

    key = jax.random.fold_in(jax.random.key(run.config.seed), 2000)
    z = normal.noise(key, (64, run.config.latent), jnp.float32)
    means = jax.nn.sigmoid(run.model.apply(params, z, method=rnn.VAE.decode))
    x = run.dataset.valid[:32].astype(np.float32)
    loc, _ = run.model.apply(params, jnp.asarray(x), method=rnn.VAE.encode)
    recon = jax.nn.sigmoid(run.model.apply(params, loc, method=rnn.VAE.decode))
    runs.save_samples_and_reconstructions(
        workdir,
        run.dataset.image_shape,
        np.asarray(means),
        x,
        np.asarray(recon),
        "samples: Bernoulli means of p(x|z), z ~ N(0, I)",
        "validation images (rows 1, 3) and reconstructions at E_q[z] (rows 2, 4)",
    )


def plot_comparison(workdirs: list[Path], out: Path, top: float | None = 110) -> None:
    """Validation bound (each model's own training bound) against passes and minutes."""
    labels = [f"{runs.read_config(w, Config).name} ({Path(w).name})" for w in workdirs]
    runs.plot_comparison(workdirs, out, labels, "valid_bound", "validation −bound (nats)", top)


# ---------------------------------------------------------------- the two commands
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
    # In a multi-process run the evaluations run on each process's own copy of the parameters.
    local = distributed.to_host if jax.process_count() > 1 else lambda tree: tree
    valid_subset = run.dataset.valid[: config.eval_subset]
    eval_key = jax.random.fold_in(jax.random.key(config.seed), 3000)

    # Compiled once, with the parameters as an argument: evaluation every few epochs must not
    # recompile (a new closure over new parameters would).
    bound_fn = jax.jit(lambda params, key, x: run.model.apply(params, key, x)[1])

    def validation(state, epoch):
        bound = functools.partial(bound_fn, local(state.params))
        return {"valid_bound": evaluate.mean_bound(eval_key, valid_subset, bound, jit=False)}

    result, results = runs.train_in_workdir(
        run,
        workdir,
        validation,
        resume=resume,
        progress=progress,
        on_epoch_end=on_epoch_end,
        learning_rate=run.schedule,
        shard_params=config.shard_params,
    )
    if not distributed.is_primary():  # process 0 writes plots and results
        return results
    workdir = Path(workdir)

    def plot(params):
        runs.plot_curves(
            workdir, workdir / "curves.png", config.name, "bound", "valid_bound", "valid −bound"
        )
        plot_samples_and_reconstructions(run, params, workdir)

    evaluate_valid = lambda params: evaluate_state(run, params, "valid")
    final = final_eval and result.status != "interrupted"
    return runs.finish_run(
        workdir,
        results,
        local(result.state.params),
        plot=plot,
        evaluate=evaluate_valid if final else None,
    )


def evaluate_checkpoint(checkpoint: str | Path, **options: Any) -> dict:
    """Evaluate a saved run on `split` (see `runs.evaluate_checkpoint` for the options)."""
    return runs.evaluate_checkpoint(checkpoint, Config, setup, evaluate_state, **options)


def paired_nll(records: list[str | Path]) -> list[dict]:
    """Each evaluation's NLL minus the first's, with the standard error of the per-example
    differences: evaluations of the same examples are paired, and the difference between two
    runs is far more precise than either NLL's own ± (which is the spread over the examples).

    Args:
      records: `evaluate --json` files, or workdirs whose results.json holds a final evaluation.
    """
    loaded = []
    for record in records:
        path = Path(record) / "results.json" if Path(record).is_dir() else Path(record)
        result = json.loads(path.read_text())
        if "log_px" not in result:
            raise ValueError(
                f"{path} has no per-example log-likelihoods (`log_px`); make it with "
                "`python -m experiments.vae_mnist evaluate --checkpoint DIR --json FILE`"
            )
        loaded.append((str(record), result))
    (_, first), rows = loaded[0], []
    base = np.asarray(first["log_px"])
    for name, result in loaded:
        log_px = np.asarray(result["log_px"])
        if result["split"] != first["split"] or log_px.shape != base.shape:
            raise ValueError(
                f"{name} evaluated {log_px.shape[0]} {result['split']} examples, the first record "
                f"{base.shape[0]} {first['split']} examples: paired differences need the same ones"
            )
        difference = base - log_px  # NLL(this) − NLL(first), per example
        rows.append(
            {
                "run": name,
                "nll": result["nll"],
                "nll_stderr": result["nll_stderr"],
                "difference": float(difference.mean()),
                "difference_stderr": float(difference.std() / np.sqrt(len(difference))),
            }
        )
    return rows


def paired_table(rows: list[dict]) -> str:
    lines = ["| run | NLL | NLL − first run (paired SE) |", "|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['run']} | {r['nll']:.2f} ± {r['nll_stderr']:.2f} | "
            f"{r['difference']:+.2f} ± {r['difference_stderr']:.2f} |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- command line
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m experiments.vae_mnist", description=__doc__)
    parser.add_argument(
        "--device", default="auto", help="JAX platform: auto, cpu, gpu or tpu (default auto)"
    )
    parser.add_argument("--coordinator", help="HOST:PORT of process 0, for a multi-process run")
    parser.add_argument("--num-processes", type=int, help="processes in the multi-process run")
    parser.add_argument("--process-id", type=int, help="this process's index, 0..N-1")
    commands = parser.add_subparsers(dest="command", required=True)
    t = commands.add_parser("train", help="train (and evaluate on the validation split)")
    t.add_argument("--quick", action="store_true", help="seconds-long run on the embedded digits")
    t.add_argument("--workdir", required=True, help="where metrics, checkpoints, plots go")
    t.add_argument("--model", choices=MODELS)
    t.add_argument("--k", type=int, help="samples of the IWAE bound (K)")
    t.add_argument("--grad", choices=GRADIENTS)
    t.add_argument("--kl", choices=("analytic", "mc"), help="the VAE's KL term")
    t.add_argument("--beta", type=float)
    t.add_argument("--architecture", choices=("mlp", "conv"))
    t.add_argument("--dataset", choices=("mnist", "digits"))
    t.add_argument("--data-dir", help="folder of binarized_mnist_{train,valid}.amat[.gz]")
    t.add_argument("--epochs", type=int, help="stop after this many passes (schedule truncated)")
    t.add_argument("--max-minutes", type=float, help="stop after the epoch that passes this")
    t.add_argument("--batch-size", type=int)
    t.add_argument("--seed", type=int)
    t.add_argument("--checkpoint-every", type=int)
    t.add_argument("--eval-samples", type=int, help="K of the final NLL (default 5000)")
    t.add_argument("--eval-examples", type=int, help="final NLL on the first N examples only")
    t.add_argument("--keep-checkpoints", type=int)
    t.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    t.add_argument("--no-eval", action="store_true", help="skip the final NLL evaluation")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--mesh", choices=("none", "data"), help="data-parallel over a device mesh")
    t.add_argument("--devices", type=int, help="devices of the data mesh (default: all)")
    t.add_argument("--shard-params", action="store_true", help="shard parameters over the mesh")
    t.add_argument("--k-chunk", type=int, help="IWAE samples per rematerialized chunk")
    c = commands.add_parser("compare", help="plot the curves of several runs in one figure")
    c.add_argument("workdirs", nargs="+")
    c.add_argument("--out", required=True, help="PNG file to write")
    c.add_argument("--top", type=float, default=110, help="upper limit of the y axis (nats)")
    p = commands.add_parser(
        "paired", help="NLL differences to the first run, with paired standard errors"
    )
    p.add_argument("records", nargs="+", help="evaluate --json files or workdirs (results.json)")
    e = commands.add_parser("evaluate", help="importance-sampled NLL of a checkpoint")
    e.add_argument("--checkpoint", required=True, help="a workdir or a checkpoint directory")
    e.add_argument("--data-dir", help="folder of binarized_mnist_<split>.amat[.gz]")
    e.add_argument("--split", choices=("valid", "test"), default="valid")
    e.add_argument("--k", type=int, help="importance samples (default: the run's, 5000)")
    e.add_argument("--examples", type=int, help="evaluate the first N examples only")
    e.add_argument("--json", help="also write all the measured values to this JSON file")
    return parser


def _config_from_args(args: argparse.Namespace) -> Config:
    names = {
        "model": "model",
        "k": "k",
        "grad": "grad",
        "kl": "kl",
        "beta": "beta",
        "architecture": "architecture",
        "dataset": "dataset",
        "data_dir": "data_dir",
        "epochs": "epochs",
        "max_minutes": "max_minutes",
        "batch_size": "batch_size",
        "seed": "seed",
        "checkpoint_every": "checkpoint_every",
        "eval_samples": "eval_samples",
        "eval_examples": "eval_examples",
        "keep_checkpoints": "keep_checkpoints",
        "mesh": "mesh",
        "devices": "devices",
        "k_chunk": "k_chunk",
    }
    overrides = {
        field: getattr(args, arg) for arg, field in names.items() if getattr(args, arg) is not None
    }
    if args.shard_params:
        overrides["shard_params"] = True
    multiprocess = getattr(args, "coordinator", None) is not None
    if (args.devices is not None or args.shard_params or multiprocess) and "mesh" not in overrides:
        overrides["mesh"] = "data"
    if multiprocess and overrides["mesh"] != "data":
        raise ValueError("a multi-process run (--coordinator) trains on --mesh data")
    if overrides.get("model") == "iwae" and "k" not in overrides:
        overrides["k"] = 5
    config = Config.quick(**overrides) if args.quick else Config(**overrides)
    return config.validate()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.device != "auto":
        import jax

        jax.config.update("jax_platforms", args.device)
    from reparam.train import distributed

    def initialize() -> int:  # before any other JAX call
        distributed.initialize(args.coordinator, args.num_processes, args.process_id)
        return 0

    return runs.run_command(initialize) or runs.run_command(lambda: _command(args))


def _command(args: argparse.Namespace) -> int:
    if args.command == "train":
        return runs.train_command(args, _config_from_args(args), train_and_evaluate)
    if args.command == "compare":
        plot_comparison([Path(w) for w in args.workdirs], Path(args.out), args.top)
        print(f"wrote {args.out}")
        return 0
    if args.command == "paired":
        print(paired_table(paired_nll(args.records)))
        return 0
    results = evaluate_checkpoint(
        args.checkpoint,
        data_dir=args.data_dir,
        split=args.split,
        num_samples=args.k,
        examples=args.examples,
    )
    fields = ("checkpoint", "epochs", "elbo", "active_units", "kl_total", "nll_stderr")
    return runs.report_evaluation(results, fields, args.json)


if __name__ == "__main__":
    sys.exit(main())
