"""The categorical-VAE results markdown (experiments/results/gumbel_vae.md) from its record alone:
the runs gathered by `python -m experiments.gumbel_vae table W... --record`
(experiments/vae_records)."""

from __future__ import annotations

from typing import Any

from experiments.reports import _vae_runs

# Jang, Gu & Poole (2017, arXiv 1611.01144, ICLR version), the VAE table's "VAE (Cat.)" row:
# the paper's numbers, not ours. Negative 1000-sample bounds (nats) on the test split, each
# estimator with its own tuned learning rate; run length not stated.
PUBLISHED = {
    "SF": 110.6,
    "DARN": 128.8,
    "MuProp": 107.0,
    "ST": 110.9,
    "Annealed ST": 107.8,
    "Gumbel-S.": 101.5,
    "ST Gumbel-S.": 107.8,
}
# Our estimator -> the paper's column it corresponds to.
PAPER_COLUMN = {
    "score_function": "SF",
    "gumbel_softmax": "Gumbel-S.",
    "straight_through": "ST Gumbel-S.",
}


def label(run: dict) -> str:
    return run["label"]


def paper_text() -> list[str]:
    return [
        "## What the paper reports, and how we report the same thing",
        "",
        "The paper's categorical-VAE numbers are, in its words, \"negative variational lower "
        'bounds (nats)" on the test set, from "a multi-sample bound for evaluation with '
        'm = 1000", with samples "discretized to one-hot vectors during evaluation". That is '
        "−log (1/m) Σ_k p(x, z_k)/q(z_k|x) with one-hot codes z_k ~ q(z|x): our importance-"
        "sampled NLL (`reparam.models.discrete_vae.importance_sampled_log_likelihood`) with "
        "K = m. Two more columns: the one-sample discrete −ELBO (closed-form KL, one one-hot code "
        "per image), a looser bound, and the relaxed objective that Gumbel-softmax training "
        "maximises, at τ_min, which is **not** a bound. The repository has the "
        "train and validation files of static binarized MNIST only, so our numbers are on the "
        "validation split.",
        "",
    ]


# What the setup says of the estimators beyond the paper's three, for the runs that use them.
ESTIMATOR_TEXT = {
    "rebar": "REBAR (Tucker et al. 2017; control variate η·f(softmax(z/λ)), η and λ trained to "
    "lower the gradient's variance).",
    "relax": "RELAX (Grathwohl et al. 2018; REBAR's control variate plus a learned network).",
    "st": "straight-through (Bengio et al. 2013; the decoder sees a one-hot code, the gradient "
    "goes through softmax(logits/τ), no Gumbel noise; biased).",
    "reinmax": "ReinMax (Liu et al. 2023; straight-through with a second-order correction, "
    "fixed τ = {reinmax_temperature}; biased).",
    "gumbel_rao": "Gumbel-Rao (Paulus et al. 2021; ST Gumbel-softmax with its Jacobian averaged "
    "over {num_inner} Gumbel draws given the code; biased, less variance).",
    "indecater": "IndeCateR (De Smet et al. 2023; per latent, the exact sum over its categories "
    "with the others sampled; unbiased, L·C + 1 decoder passes per code).",
    "vimco": "VIMCO (Mnih & Rezende 2016; trains the K-sample bound, K = {num_samples}, with "
    "leave-one-out baselines: its training objective is that bound, not the ELBO, so its "
    '"training −objective" is not comparable with the other rows).',
}


def short_runs(runs: list[dict]) -> list[str]:
    """How long the runs were and why they ended, from the record."""
    passes = sorted({r["train"]["results"]["epochs"] for r in runs})
    steps = sorted({r["train"]["results"]["steps"] for r in runs})
    caveat = (
        "The paper tuned the learning rate per estimator, does not state its run length, and "
        "reports the test split; the comparison table below gives the differences to its "
        "numbers (ours − published), which are therefore not like for like."
    )
    if not any("early_stopping" in r["train"]["results"] for r in runs):
        return [
            f"**These are short runs**: {' or '.join(map(str, passes))} passes "
            f"({' or '.join(map(str, steps))} steps) each, one seed, no tuning. {caveat}",
            "",
        ]
    c = runs[0]["train"]["config"]
    rule = next(r["train"]["results"]["early_stopping"] for r in runs
                if "early_stopping" in r["train"]["results"])  # fmt: skip
    ended: dict[str, list[str]] = {}
    for r in runs:
        ended.setdefault(r["train"]["results"]["status"], []).append(label(r))
    how = "; ".join(
        f"{_vae_runs.STOPS.get(status, status)}: {', '.join(names)}"
        for status, names in sorted(ended.items())
    )
    cap = f"{c['epochs']} passes" + (
        f" or {c['max_minutes']:g} minutes of training" if c.get("max_minutes") else ""
    )
    return [
        f"**Run lengths**: at most {cap} per run, whichever came first, with early stopping "
        f"on the validation bound (every {c['eval_every']} passes, patience {rule['patience']}); "
        f"the runs trained {passes[0]}–{passes[-1]} passes. How each ended — {how}."
        + (
            " A run stopped at its time limit had not met the stopping rule yet, so its "
            "numbers are those of truncated training."
            if "time_limit" in ended
            else ""
        )
        + " One seed, no tuning. "
        f"{caveat}",
        "",
    ]


def setup(runs: list[dict]) -> list[str]:
    c = runs[0]["train"]["config"]
    data, pixels = _vae_runs.DATASETS[c["dataset"]]
    widths = "-".join(str(w) for w in c["hidden"])
    back = "-".join(str(w) for w in c["hidden"][::-1])
    return [
        "## Setup",
        "",
        f"The model of Jang et al.'s released code (ericjang/gumbel-softmax): {c['latents']} "
        f"independent {c['categories']}-way categoricals on {data}; encoder {pixels}-{widths} to "
        f"their logits, decoder {c['latents'] * c['categories']}-{back}-{pixels} over the "
        "flattened one-hot (or "
        f"relaxed) code, {c['activation']}; uniform prior with the closed-form categorical KL; "
        "the decoder's output bias starts at the logit of the training pixels' means. Adam at "
        f"{c['learning_rate']:g} (TF's default β and ε), batch {c['batch_size']}, "
        f"{c['num_samples']} code(s) per image, seed {c['seed']}. Temperature "
        f"τ = max({c['tau_min']}, {c['tau_initial']}·exp(−{c['anneal_rate']:g}·t)), t the "
        f"global step, updated every {c['anneal_interval']} steps (one point of the paper's "
        "grid, not searched).",
        "",
        "Estimators (`reparam.models.discrete_vae.elbo`): Gumbel-softmax (the decoder sees the "
        "relaxed code), ST Gumbel-softmax (the decoder sees the one-hot code, with the relaxed "
        "gradient), score function (REINFORCE with the batch's other images' mean learning "
        "signal as baseline; unbiased and free, but it does not depend on x, and the paper's "
        "variance normalization is not used).",
        *more_estimators(runs),
        "",
        "Differences from the paper: it used SGD with momentum and a per-estimator learning "
        'rate from a grid, and "a learned categorical prior"; we use the released code\'s '
        "Adam, one learning rate and the uniform prior, with its hidden sizes (the paper's text "
        "does not give them), one seed and the validation split.",
        "",
    ]


def more_estimators(runs: list[dict]) -> list[str]:
    """Sentences on the runs' estimators other than the paper's three (none for those)."""
    seen, lines = set(), []
    for r in runs:
        c = r["train"]["config"]
        if c["estimator"] in ESTIMATOR_TEXT and c["estimator"] not in seen:
            seen.add(c["estimator"])
            lines.append("Also " + ESTIMATOR_TEXT[c["estimator"]].format(**c))
    return [" ".join(lines)] if lines else []


def early_stopping_note(runs: list[dict]) -> list[str]:
    """How early stopping chose the evaluated state (nothing for runs without it)."""
    if not any("early_stopping" in r["train"]["results"] for r in runs):
        return []
    return [
        "Early stopping: a run stops once its validation −ELBO (the curve below) has not improved "
        "for `patience` evaluations in a row; the state evaluated is the best one's "
        '(`workdir/best`), and "passes" says how the run ended and which epoch was evaluated.',
        "",
    ]


def results_table(runs: list[dict]) -> list[str]:
    lines = [
        "## Results (validation split)",
        "",
        f"NLL: {_vae_runs.evaluated_on(runs)}, ± one standard error over the images; the "
        "paired column is the mean per-image difference to the first row's NLL (same images, "
        "same key) and its standard error.",
        "",
        *early_stopping_note(runs),
        "| estimator | passes | NLL (the paper's bound) | NLL − first row's (paired SE) "
        "| −ELBO, 1 sample | relaxed −objective (τ) | training −objective, last pass "
        "| median s/pass | train wall (CPU) | evaluate wall |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        t, e, p = r["train"], r["evaluation"], r["paired_to_first"]
        paired = "—" if p is None or r is runs[0] else (
            f"{p['difference']:+.2f} ± {p['difference_stderr']:.2f}"
        )  # fmt: skip
        lines.append(
            f"| {label(r)} | {_vae_runs.passes(r)} | **{_vae_runs.nll(e)}** | {paired} "
            f"| {e['neg_elbo']:.2f} | {e['relaxed_neg_objective']:.2f} "
            f"(τ={e['relaxed_temperature']:g}) | {-r['last_train_bound']:.2f} "
            f"| {r['epoch_seconds']['median']:.2f} "
            f"| {t['wall_seconds']:.0f} s ({t['cpu_seconds']:.0f} s) | {e['wall_seconds']:.0f} s |"
        )
    order = _vae_runs.equal_passes(runs, label)
    return [*lines, "", *([" ".join(order), ""] if order else [])]


def published(runs: list[dict]) -> list[str]:
    ours = {PAPER_COLUMN.get(r["train"]["config"]["estimator"]): r for r in runs}
    lines = [
        "## Against the published numbers",
        "",
        "Published: Jang et al. (2017), the VAE table's categorical row (test split, m = 1000, "
        "tuned, run length not stated); they are the paper's numbers, not runs of ours. "
        '"—": an estimator we did not run.',
        "",
        "| paper's column | published (paper) | ours: validation NLL | our passes "
        "| ours − published |",
        "|---|---|---|---|---|",
    ]
    for column, paper in PUBLISHED.items():
        r = ours.get(column)
        if r is None:
            lines.append(f"| {column} | {paper:.1f} | — | — | — |")
            continue
        nll = r["evaluation"]["nll"]
        lines.append(
            f"| {column} ({label(r)}) | {paper:.1f} | {_vae_runs.nll(r['evaluation'])} "
            f"| {_vae_runs.passes(r)} | {nll - paper:+.2f} |"
        )
    return [*lines, ""]


def render(record: dict[str, Any]) -> str:
    runs = record["results"]["runs"]
    c = runs[0]["train"]["config"]
    curves = f"Each run's discrete −ELBO on the first {c['eval_subset']} validation images, "
    curves += f"every {c['eval_every']} passes, against passes and training minutes"
    stopping = any("early_stopping" in r["train"]["results"] for r in runs)
    title = "Categorical-latent VAE on static binarized MNIST (Jang, Gu & Poole 2017; " + (
        "early-stopped or time-capped runs)" if stopping else "short runs)"
    )
    lines = [
        *_vae_runs.header(record, title),
        *short_runs(runs),
        *paper_text(),
        *results_table(runs),
        *published(runs),
        *setup(runs),
        *_vae_runs.runs_section(runs, label),
        *_vae_runs.figures(record, curves, label),
    ]
    return "\n".join(lines).rstrip("\n") + "\n"
