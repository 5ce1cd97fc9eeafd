"""The VAE experiments' figures: training curves from metrics.jsonl, several runs' validation
curves in one figure, and image grids of samples and reconstructions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from experiments.runner import pyplot
from reparam.train.workdir import read_metrics


def curves(
    workdir: Path, out: Path, title: str, train_key: str, valid_key: str, valid_label: str
) -> None:
    """The negated training objective (each epoch's mean) and validation bound against passes."""
    plt = pyplot()
    records = read_metrics(workdir)
    epochs = [r["epoch"] for r in records]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [-r[train_key] for r in records], label="train (epoch mean)")
    evals = [r for r in records if valid_key in r]
    if evals:
        ax.plot(
            [r["epoch"] for r in evals], [-r[valid_key] for r in evals], "o-", label=valid_label
        )
    ax.set_xlabel("epoch (passes)")
    ax.set_ylabel("nats")
    ax.set_xscale("log" if max(epochs, default=0) > 50 else "linear")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def compare(
    workdirs: Sequence[Path],
    out: Path,
    labels: Sequence[str],
    valid_key: str,
    top: float | None = None,
) -> None:
    """Each run's validation −bound against passes and against training minutes (summed epoch
    seconds), one line per run."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for workdir, label in zip(workdirs, labels, strict=True):
        records = read_metrics(workdir)
        minutes = np.cumsum([r["seconds"] for r in records]) / 60
        evals = [(r, m) for r, m in zip(records, minutes, strict=True) if valid_key in r]
        values = [-r[valid_key] for r, _ in evals]
        axes[0].plot([r["epoch"] for r, _ in evals], values, "o-", ms=3, label=label)
        axes[1].plot([m for _, m in evals], values, "o-", ms=3, label=label)
    for ax, xlabel in zip(axes, ("passes over the training set", "training minutes"), strict=True):
        ax.set_xlabel(xlabel)
        ax.set_xscale("log")
        ax.set_ylabel(f"validation −{valid_key.removeprefix('valid_')} (nats)")
        if top is not None:
            ax.set_ylim(top=top)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def image_grid(images: np.ndarray, rows: int, cols: int, shape: tuple[int, int]) -> np.ndarray:
    """(rows·cols, h·w) images in [0, 1] -> one (rows·(h+1)−1, cols·(w+1)−1) canvas."""
    h, w = shape
    canvas = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), 0.25)  # grey gutters
    for i, image in enumerate(images[: rows * cols]):
        r, c = divmod(i, cols)
        canvas[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = image.reshape(h, w)
    return canvas


def samples_and_reconstructions(
    workdir: Path,
    shape: tuple[int, int],
    samples: np.ndarray,
    images: np.ndarray,
    reconstructions: np.ndarray,
    sample_title: str,
    reconstruction_title: str,
) -> None:
    """samples.png (64 decoder means, 8×8) and reconstructions.png (32 validation images, rows 1
    and 3, over their reconstructions, rows 2 and 4)."""
    plt = pyplot()
    layout = "validation images (rows 1, 3) over their reconstructions (rows 2, 4)"
    interleaved = np.concatenate(
        [images[:16], reconstructions[:16], images[16:32], reconstructions[16:32]]
    )
    for name, grid, rows, cols, title in (
        ("samples.png", samples, 8, 8, sample_title),
        ("reconstructions.png", interleaved, 4, 16, f"{reconstruction_title}: {layout}"),
    ):
        fig, ax = plt.subplots(figsize=(cols * 0.6 + 0.4, rows * 0.6 + 0.6))
        ax.imshow(image_grid(grid, rows, cols, shape), cmap="gray_r", vmin=0, vmax=1)
        ax.set_axis_off()
        ax.set_title(title, fontsize=8)
        fig.tight_layout()
        fig.savefig(workdir / name, dpi=100)
        plt.close(fig)


def variance_curves(record: dict, folder: Path, name: str) -> dict:
    """For each model of a record gathered with `record_curves` ("objective", "valid_elbo",
    "grad_variance"; bernoulli_vae): each run's training and validation −ELBO (left) and its
    encoder gradient's variance (right, log scale) against steps, one figure per model, written
    to `folder`. Returns {"curves_by_model": {model: file name}}."""
    plt, names, runs = pyplot(), {}, record["results"]["runs"]
    for model in sorted({r["train"]["config"]["model"] for r in runs}):
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
        for r in (r for r in runs if r["train"]["config"]["model"] == model):

            def curve(key, sign=-1.0, points=r["curves"]):
                return [p[1] for p in points[key]], [sign * p[2] for p in points[key]]

            (line,) = left.plot(*curve("objective"), lw=1, label=r["label"])
            left.plot(*curve("valid_elbo"), "--", color=line.get_color())
            right.plot(*curve("grad_variance", 1), "o-", ms=3, label=r["label"])
        left.set_title("−ELBO: training (epoch means, solid), validation (dashed)", fontsize=9)
        left.set_ylabel("nats")
        right.set_title("variance of the encoder's gradient (mean over parameters)", fontsize=9)
        right.set_yscale("log")
        for ax in (left, right):
            ax.set_xlabel("steps")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.suptitle(f"{model} model")
        fig.tight_layout()
        names[model] = f"{name}_{model}_curves.png"
        fig.savefig(folder / names[model], dpi=100)
        plt.close(fig)
    return {"curves_by_model": names}
