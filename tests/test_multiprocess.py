"""Two processes on localhost train the quick VAE together through `jax.distributed.initialize`.

Each process is the documented launch,

    python -m experiments.vae_mnist --coordinator 127.0.0.1:PORT --num-processes 2 \\
        --process-id I train --quick ...

with one CPU device each (gloo collectives between them): a 2-device data mesh over two
processes. Both must finish, agree bit for bit on the final parameters (each prints the sha256
of its own copy), and leave one shared checkpoint and one metrics log. Compiled at XLA's default
optimization level (the rest of the suite compiles with fast-compile settings, tests/child.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from reparam.train import distributed
from tests import child

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 150  # per attempt; a healthy run takes ~10-20 s on a loaded 2-core machine


def _launch(workdir: Path, port: int) -> list[subprocess.CompletedProcess]:
    # One device per process: no device-count flag. At XLA's default optimization level, as
    # users run it: the suite's one end-to-end training run compiled with XLA's defaults.
    env = child.env(optimized=True)
    processes = []
    for process_id in range(2):
        command = [sys.executable, "-m", "experiments.vae_mnist"]
        command += ["--coordinator", f"127.0.0.1:{port}", "--num-processes", "2"]
        command += ["--process-id", str(process_id), "train", "--quick", "--epochs", "2"]
        command += ["--checkpoint-every", "1", "--no-eval", "--no-progress"]
        command += ["--workdir", str(workdir)]
        processes.append(
            subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    deadline = time.monotonic() + TIMEOUT_S
    results = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
            results.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    except subprocess.TimeoutExpired:
        for process in processes:
            process.kill()
        outputs = [p.communicate() for p in processes]
        raise AssertionError(
            f"the 2-process run did not finish in {TIMEOUT_S} s:\n"
            + "\n".join(
                f"--- process {i} stdout\n{o[-2000:]}\n--- process {i} stderr\n{e[-3000:]}"
                for i, (o, e) in enumerate(outputs)
            )
        ) from None
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    return results


def _summary(stdout: str) -> dict:
    """The JSON summary `train` prints (the text between the first '{' line and its '}')."""
    lines = stdout.splitlines()
    start = lines.index("{")
    end = lines.index("}", start)
    return json.loads("\n".join(lines[start : end + 1]))


def test_two_processes_train_together_and_end_identical(tmp_path):
    for attempt in range(2):  # a port taken between choosing and binding it: try another
        results = _launch(tmp_path / f"run{attempt}", distributed.free_port())
        report = "\n".join(
            f"--- process {i} (rc={r.returncode}) stdout\n{r.stdout[-2000:]}\n"
            f"--- process {i} stderr\n{r.stderr[-3000:]}"
            for i, r in enumerate(results)
        )
        if all(r.returncode == 0 for r in results) or "ddress already in use" not in report:
            break
    assert all(r.returncode == 0 for r in results), report
    workdir = tmp_path / f"run{attempt}"
    summaries = [_summary(r.stdout) for r in results]
    assert [s["process"] for s in summaries] == ["0 of 2", "1 of 2"], report
    assert all(s["mesh_devices"] == 2 and s["steps"] == summaries[0]["steps"] for s in summaries)
    # The point: one data-parallel run, so both copies of the parameters are the same bits.
    assert summaries[0]["params_sha256"] == summaries[1]["params_sha256"], report
    # Process 0 alone logged; both wrote one checkpoint per epoch together.
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    assert sorted(p.name for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()) == [
        "1",
        "2",
    ]
