"""The importance-sampled NLL as a record, and paired comparisons of runs evaluated on the same
examples (the difference of two runs' NLLs is far more precise than either NLL's own ±)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def nll_record(
    estimator: Callable, key, data, encode, log_likelihood, num_samples: int, chunk: int
) -> dict[str, Any]:
    """The importance-sampled NLL of `data` (N, D) by `estimator(key, data, encode,
    log_likelihood, num_samples=, chunk_size=) -> log p(x) (N,)` (e.g.
    `reparam.models.evaluate.importance_sampled_log_likelihood`): its mean and standard error over
    the examples, K, seconds, and the per-example log p(x) that `paired_nll` compares runs by."""
    tic = time.perf_counter()
    chunk = min(chunk, num_samples)
    log_px = estimator(key, data, encode, log_likelihood, num_samples=num_samples, chunk_size=chunk)
    log_px = np.asarray(log_px, np.float64)
    return {
        "nll": float(-log_px.mean()),
        "nll_stderr": float(log_px.std() / np.sqrt(len(log_px))),
        "nll_samples": num_samples,
        "nll_seconds": time.perf_counter() - tic,
        "log_px": log_px.tolist(),
    }


def paired_nll(records: list[str | Path]) -> list[dict]:
    """Each evaluation's NLL minus the first's, with the standard error of the per-example
    differences: evaluations of the same examples are paired, and the difference between two
    runs is far more precise than either NLL's own ± (which is the spread over the examples).

    Args:
      records: JSON files of `nll_record`s (with "split"), or workdirs whose results.json holds
        one.

    Raises:
      ValueError: a record without per-example values, or not of the first record's examples.
    """
    loaded = []
    for record in map(Path, records):
        path = record / "results.json" if record.is_dir() else record
        result = json.loads(path.read_text())
        if "log_px" not in result:
            raise ValueError(
                f"{path} has no per-example log-likelihoods (`log_px`); make it with "
                "`evaluate --checkpoint DIR --json FILE`"
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
