"""Faults: SIGKILL in the middle of an epoch, and truncated or corrupt checkpoints.

* A training process killed with SIGKILL while an epoch runs (inside the compiled scan, after
  the checkpoints of epochs 1 and 2 were written) is resumed by a new process from its last
  checkpoint and ends bit for bit where an uninterrupted run ends. The same killed run with
  its newest checkpoint corrupted falls back to the one before and still ends there.
* A damaged checkpoint (array files cut short, a flipped byte, broken metadata) is a clear
  `CheckpointError` naming it; `fit(resume=True)` moves it aside with a warning, resumes from
  the previous checkpoint and again ends with the uninterrupted run's parameters.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from experiments import vae_mnist
from reparam import train
from reparam.train import distributed
from tests import child

ROOT = Path(__file__).resolve().parent.parent
EPOCHS = 3

# The child: the quick VAE trained by `train.fit` with a host callback in the loss that counts
# steps. In "kill" mode the callback stops the process (a marker file, then a long sleep) in the
# middle of epoch 3, for the parent to SIGKILL it there. The callback is in the compiled program
# of every mode, so the killed, resumed and uninterrupted runs run the same program.
CHILD = r"""
import json, sys, time
from pathlib import Path
import jax, jax.numpy as jnp
from experiments import vae_mnist
from reparam.train import distributed
from reparam import train

EPOCHS = int(sys.argv[1])
mode, jobs = sys.argv[2], sys.argv[3:]  # jobs: workdir [resume] pairs as "dir:0|1"

def build(pause_in_epoch_3):
    config = vae_mnist.Config.quick(hidden=(32,), latent=4, batch_size=100, epochs=EPOCHS)
    run = vae_mnist.setup(config)
    steps_per_epoch = len(run.dataset.train) // config.batch_size
    pause_at = 2 * steps_per_epoch + steps_per_epoch // 2 if pause_in_epoch_3 else -1
    steps = {"n": 0}

    def hook():
        steps["n"] += 1
        if steps["n"] == pause_at:
            Path(jobs[0].split(":")[0], "paused").write_text(str(steps["n"]))
            time.sleep(600)

    def loss_fn(params, batch, key):
        jax.debug.callback(hook, ordered=True)
        surrogate, bound = run.model.apply(params, key, batch.astype(jnp.float32))
        return -jnp.mean(surrogate), {"bound": jnp.mean(bound)}

    optimizer = train.adam(run.schedule, b2=config.b2, eps=config.eps)
    epoch_fn = train.make_train_epoch(loss_fn, optimizer, config.batch_size)
    return run, epoch_fn

out = {}
run, epoch_fn = build(pause_in_epoch_3=mode == "kill")  # one compilation for all jobs
initial = jax.tree.map(jnp.copy, run.state)
for job in jobs:
    workdir, resume = job.split(":")
    run.state = jax.tree.map(jnp.copy, initial)  # fit donates the state it is given
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train.fit(key=run.key, state=run.state, train_epoch=epoch_fn,
                           data=run.dataset.train, num_epochs=EPOCHS,
                           workdir=workdir, checkpoint_every=1, resume=resume == "1",
                           progress=False)
    out[workdir] = {
        "sha256": distributed.digest(result.state),
        "epochs_run": [r["epoch"] for r in result.history],
        "warnings": [str(w.message) for w in caught
                     if w.category is train.CheckpointFallbackWarning],
    }
print("RESULT " + json.dumps(out))
"""


def _child(mode: str, jobs: list[str]) -> subprocess.Popen:
    # Every child of a comparison gets the same flags, so bit-for-bit comparisons are meaningful.
    return child.popen(["-c", CHILD, str(EPOCHS), mode, *jobs])


def _result(process: subprocess.Popen, timeout: float = 240) -> dict:
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert process.returncode == 0 and lines, (
        f"rc={process.returncode}\n{out[-2000:]}\n{err[-4000:]}"
    )
    return json.loads(lines[-1][len("RESULT ") :])


# ---------------------------------------------------------------- damage
def _data_files(step_dir: Path) -> list[Path]:
    return [p for p in (step_dir / "state").rglob("*") if p.is_file() and p.parent.name == "d"]


def _truncate(step_dir: Path) -> None:
    for path in _data_files(step_dir):
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def _flip_byte(step_dir: Path) -> None:
    largest = max(_data_files(step_dir), key=lambda p: p.stat().st_size)
    raw = bytearray(largest.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    largest.write_bytes(bytes(raw))


def _break_metadata(step_dir: Path) -> None:
    (step_dir / "meta" / "metadata").write_text('{"epoch": 3, "sha2')


DAMAGE = {"truncated": _truncate, "flipped-byte": _flip_byte, "metadata": _break_metadata}


# ---------------------------------------------------------------- SIGKILL mid-epoch
def test_sigkill_mid_epoch_resumes_to_the_uninterrupted_result(tmp_path):
    killed = tmp_path / "killed"
    killed.mkdir()
    process = _child("kill", [f"{killed}:0"])
    try:
        deadline = time.monotonic() + 240
        while not (killed / "paused").exists():
            if process.poll() is not None:
                raise AssertionError(f"the run ended before the kill: {process.communicate()}")
            assert time.monotonic() < deadline, "the run never reached the middle of epoch 3"
            time.sleep(0.1)
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    epochs_logged = [
        json.loads(line)["epoch"] for line in (killed / "metrics.jsonl").read_text().splitlines()
    ]
    assert epochs_logged == [1, 2]  # killed inside epoch 3
    assert train.Checkpointer(killed / "checkpoints").latest() == 2

    # A copy of the killed run whose newest checkpoint is then damaged.
    damaged = tmp_path / "damaged"
    shutil.copytree(killed, damaged)
    _truncate(damaged / "checkpoints" / "2")

    straight = tmp_path / "straight"
    results = _result(_child("finish", [f"{killed}:1", f"{damaged}:1", f"{straight}:0"]))
    assert results[str(killed)]["epochs_run"] == [3]
    assert results[str(damaged)]["epochs_run"] == [2, 3]  # fell back to checkpoint 1
    assert results[str(straight)]["epochs_run"] == [1, 2, 3]
    (warning,) = results[str(damaged)]["warnings"]
    assert "cannot restore checkpoint 2" in warning and "corrupt" in warning
    assert not results[str(killed)]["warnings"]
    digest = results[str(straight)]["sha256"]
    assert results[str(killed)]["sha256"] == digest
    assert results[str(damaged)]["sha256"] == digest
    assert (damaged / "checkpoints.corrupt" / "2").is_dir()


# ---------------------------------------------------------------- damaged checkpoints
_RUN: list[vae_mnist.Run] = []


def _tiny() -> vae_mnist.Run:
    """One small quick-VAE run for this module (one compilation of its epoch)."""
    if not _RUN:
        _RUN.append(vae_mnist.setup(vae_mnist.Config.quick(hidden=(16,), latent=2, batch_size=200)))
    return _RUN[0]


def _fresh_state() -> train.TrainState:
    return jax.tree.map(jax.numpy.copy, _tiny().state)  # fit donates the state it is given


def _fit(workdir: Path, epochs: int, resume: bool = False) -> train.FitResult:
    run = _tiny()
    return train.fit(
        key=run.key,
        state=_fresh_state(),
        train_epoch=run.train_epoch,
        data=run.dataset.train,
        num_epochs=epochs,
        workdir=workdir,
        checkpoint_every=1,
        resume=resume,
        progress=False,
    )


@pytest.fixture(scope="module")
def three_epochs(tmp_path_factory) -> tuple[Path, str]:
    """A finished 3-epoch run (checkpoints 1, 2, 3) and the digest of its final state."""
    workdir = tmp_path_factory.mktemp("three")
    return workdir, distributed.digest(_fit(workdir, 3).state)


# orbax leaves a tensorstore callback behind when a read fails; it is harmless.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
# (A truncated checkpoint is also the SIGKILL test's damaged copy, through a second process.)
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_checkpoint_is_a_clear_error_and_resume_falls_back(tmp_path, three_epochs, damage):
    original, digest = three_epochs
    workdir = tmp_path / "run"
    shutil.copytree(original, workdir)
    DAMAGE[damage](workdir / "checkpoints" / "3")

    with (
        train.Checkpointer(workdir / "checkpoints") as checkpointer,
        pytest.raises(train.CheckpointError) as info,
    ):
        checkpointer.restore(_fresh_state(), 3)
    message = str(info.value)
    assert str(workdir / "checkpoints" / "3") in message and "corrupt" in message, message
    assert len(message) < 600

    with pytest.warns(train.CheckpointFallbackWarning, match="cannot restore checkpoint 3"):
        result = _fit(workdir, 3, resume=True)
    assert [r["epoch"] for r in result.history] == [3]  # epoch 3 redone from checkpoint 2
    assert distributed.digest(result.state) == digest
    assert (workdir / "checkpoints.corrupt" / "3").is_dir()
    assert train.Checkpointer(workdir / "checkpoints").all_epochs() == [1, 2, 3]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_no_readable_checkpoint_is_an_error(tmp_path, three_epochs):
    original, _ = three_epochs
    workdir = tmp_path / "run"
    shutil.copytree(original, workdir)
    for epoch in (1, 2, 3):
        _break_metadata(workdir / "checkpoints" / str(epoch))
    with (
        pytest.warns(train.CheckpointFallbackWarning),
        pytest.raises(train.CheckpointError, match="no readable checkpoint in"),
    ):
        _fit(workdir, 3, resume=True)


def test_digest_sees_one_flipped_bit():
    tree = {"a": np.arange(4.0, dtype=np.float32), "b": jax.numpy.ones((2, 2))}
    flipped = {"a": tree["a"].copy(), "b": tree["b"]}
    flipped["a"].view(np.uint32)[2] ^= 1
    assert distributed.digest(tree) == distributed.digest({k: v for k, v in tree.items()})
    assert distributed.digest(tree) != distributed.digest(flipped)
