"""experiments/vae_mnist.py end to end on the embedded digits: train, evaluate, Ctrl-C, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments import vae_commands, vae_mnist
from reparam import train
from reparam.train.nll import paired_nll

# One worker runs this module, so its module-scoped fixture (a training run) runs once
# under `pytest -n 2 --dist loadgroup` instead of once per worker.
pytestmark = pytest.mark.xdist_group("vae_experiment")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One `train --quick` run shared by the tests below (it takes seconds)."""
    workdir = tmp_path_factory.mktemp("quick")
    rc = vae_mnist.main(["train", "--quick", "--workdir", str(workdir), "--no-progress"])
    return rc, workdir


def test_quick_train_writes_metrics_checkpoint_plots(quick_run):
    rc, workdir = quick_run
    assert rc == 0
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    config = vae_mnist.Config.quick()
    assert [r["epoch"] for r in records] == list(range(1, config.epochs + 1))
    assert "valid_bound" in records[-1] and "lr" in records[0]
    assert records[-1]["loss"] < records[0]["loss"]  # it learns
    assert train.Checkpointer(workdir / "checkpoints").latest() == config.epochs
    for name in ("curves.png", "samples.png", "reconstructions.png"):
        assert (workdir / name).read_bytes()[:4] == b"\x89PNG"
    results = json.loads((workdir / "results.json").read_text())
    assert results["status"] == "completed" and results["nll_samples"] == config.eval_samples
    # record.json: the command, the config and the measured machine, through runner.Run.finish.
    record = json.loads((workdir / "record.json").read_text())
    assert record["command"].startswith("python -m experiments.vae_mnist train --quick")
    assert record["config"]["epochs"] == config.epochs and record["provenance"]["cpu_count"] > 0
    assert record["results"]["nll"] == results["nll"] and "log_px" not in record["results"]
    assert len(results["kl_per_dim"]) == config.latent
    assert 0 <= results["active_units"] <= config.latent
    # The importance-sampled bound (K=500) is tighter than the ELBO: NLL < −ELBO.
    assert 0 < results["nll"] < -results["elbo"]


def test_evaluate_command_prints_nll_last(quick_run, capsys):
    _, workdir = quick_run
    capsys.readouterr()
    assert vae_mnist.main(["evaluate", "--checkpoint", str(workdir), "--split", "test"]) == 0
    many = float(capsys.readouterr().out.strip().splitlines()[-1])
    step_dir = workdir / "checkpoints" / str(vae_mnist.Config.quick().epochs)
    record = workdir / "evaluation.json"
    args = ["evaluate", "--checkpoint", str(step_dir), "--split", "test", "--k", "1"]
    assert vae_mnist.main([*args, "--json", str(record)]) == 0
    one = float(capsys.readouterr().out.strip().splitlines()[-1])
    # K = 1 is the one-sample ELBO; K = 500 must be a tighter (smaller) NLL.
    assert 0 < many < one
    written = json.loads(record.read_text())
    assert written["nll"] == pytest.approx(one, abs=1e-4) and written["split"] == "test"
    assert len(written["kl_per_dim"]) == vae_mnist.Config.quick().latent


def test_evaluate_errors_are_clear(tmp_path, capsys):
    assert vae_mnist.main(["evaluate", "--checkpoint", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert f"--checkpoint must be an existing path, got '{tmp_path / 'none'}'" in err
    assert len(err.strip().splitlines()) == 1
    (tmp_path / "checkpoints").mkdir()
    assert vae_mnist.main(["evaluate", "--checkpoint", str(tmp_path)]) == 2
    assert "no checkpoint found in" in capsys.readouterr().err


def test_train_with_missing_mnist_files_names_the_path(tmp_path, capsys):
    args = ["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--workdir", str(tmp_path)]
    assert vae_mnist.main(args) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "binarized_mnist_train.amat") in err and "larocheh" in err


def test_config_choices():
    def config(*flags: str) -> vae_mnist.Config:
        _, command = vae_commands.parse(vae_mnist.EXPERIMENT, ["train", "--workdir", "w", *flags])
        return command.config

    iwae = config("--model", "iwae")
    assert (iwae.model, iwae.k, iwae.hidden, iwae.latent) == ("iwae", 5, (200, 200), 50)
    assert iwae.epochs == train.paper_epochs() == 3280
    assert config("--model", "iwae", "--k", "1").k == 1  # an explicit --k wins over the 5
    quick = config("--quick", "--model", "iwae", "--k", "50", "--hidden", "32")
    assert (quick.dataset, quick.k, quick.hidden, quick.epochs) == ("digits", 50, (32,), 30)
    with pytest.raises(ValueError, match="--k must be 1 for --model vae, got 5"):
        vae_mnist.Config(model="vae", k=5).validate()
    model = vae_mnist.build_model(vae_mnist.Config(grad="stl"), 784, (28, 28))
    assert model.kl == "mc"  # STL drops the score term of a Monte-Carlo KL


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    workdir = tmp_path / "run"
    command = [sys.executable, "-m", "experiments.vae_mnist", "train", "--quick"]
    command += ["--epochs", "100000", "--workdir", str(workdir), "--no-progress"]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        metrics = workdir / "metrics.jsonl"
        deadline = time.monotonic() + 240
        while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 2):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "training did not start"
            time.sleep(0.2)
        os.kill(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, (out, err)
    assert "interrupted: checkpoint saved" in out
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    epochs = len(metrics.read_text().splitlines())
    assert train.Checkpointer(workdir / "checkpoints").latest() == epochs


def test_paired_differences_use_the_same_examples(quick_run, tmp_path, capsys):
    _, workdir = quick_run
    one_sample = tmp_path / "k1.json"
    args = ["evaluate", "--checkpoint", str(workdir), "--k", "1", "--json", str(one_sample)]
    assert vae_mnist.main(args) == 0
    rows = paired_nll([workdir, one_sample])  # K = 500 (results.json) vs K = 1
    assert rows[0]["difference"] == 0 and rows[0]["difference_stderr"] == 0
    # The one-sample bound is looser on every example, and pairing makes that unmistakable: the
    # difference is many paired standard errors from 0, where each NLL's own ± is wider.
    assert rows[1]["difference"] > 5 * rows[1]["difference_stderr"] > 0
    assert rows[1]["difference"] == pytest.approx(rows[1]["nll"] - rows[0]["nll"], abs=1e-3)
    capsys.readouterr()
    assert vae_mnist.main(["paired", str(workdir), str(one_sample)]) == 0
    assert "NLL − first run" in capsys.readouterr().out
    test_split = tmp_path / "test.json"
    args = ["evaluate", "--checkpoint", str(workdir), "--split", "test", "--json", str(test_split)]
    assert vae_mnist.main(args) == 0
    assert vae_mnist.main(["paired", str(workdir), str(test_split)]) == 2
    assert "same ones" in capsys.readouterr().err
