"""The VAE experiments' command lines (experiments/vae_mnist.py, experiments/gumbel_vae.py), with no
training: --help comes from the config dataclasses, every value is checked before any work starts,
a work directory is never lost, checkpoints are written atomically."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import jax.numpy as jnp
import pytest

from experiments import gumbel_vae, runs, vae_commands, vae_mnist
from reparam import train
from reparam.train import checkpoint as checkpoint_lib

EXPERIMENTS = {"vae_mnist": vae_mnist.EXPERIMENT, "gumbel_vae": gumbel_vae.EXPERIMENT}


class WorkStarted(Exception):
    """Raised by the stand-ins for set-up and evaluation: the command got past its checks."""


def _refuse(*args, **kwargs):
    raise WorkStarted


@pytest.fixture(autouse=True)
def guard(monkeypatch):
    """Set-up and evaluation replaced by `_refuse`: no test here trains or evaluates."""
    for module in (vae_mnist, gumbel_vae):
        monkeypatch.setattr(module, "setup", _refuse)
        monkeypatch.setattr(module, "evaluate_state", _refuse)
    monkeypatch.setattr(vae_commands, "evaluate_checkpoint", _refuse)


def _exit_status(experiment: runs.Experiment, argv: list[str]) -> int:
    try:
        return vae_commands.main(experiment, argv)
    except SystemExit as exit_:  # tyro: a type error or an unknown choice
        return exit_.code


def _snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


@pytest.fixture
def old_run(tmp_path) -> Path:
    """A work directory holding (the files of) an earlier run."""
    workdir = tmp_path / "run"
    (workdir / "checkpoints" / "10").mkdir(parents=True)
    (workdir / "checkpoints" / "10" / "state").write_text("weights")
    (workdir / "metrics.jsonl").write_text('{"epoch": 1}\n')
    return workdir


# ---------------------------------------------------------------- --help
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_help_comes_from_the_config(name, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps help text at the terminal's width
    for argv in (["--help"], ["train", "--help"], ["evaluate", "--help"]):
        with pytest.raises(SystemExit) as exit_:
            vae_commands.main(EXPERIMENTS[name], argv)
        assert exit_.value.code == 0
    out = capsys.readouterr().out
    # The module docstring's examples keep their lines; the subcommands have their help.
    assert f"\n    python -m experiments.{name} train --quick --workdir runs/" in out
    assert "train     Train, then evaluate on the validation split." in out
    assert "The defaults are the paper's full schedule" in out
    # Each field's docstring and default (the full schedule's, not the quick preset's).
    assert "--batch-size INT" in out and "Examples per step. (default: 100)" in out
    assert "Seed of every key stream" in out and "--resume, --no-resume" in out
    assert "--examples {None}|INT" in out and "Evaluate the first N examples only" in out
    if name == "vae_mnist":
        assert "--model {vae,iwae}" in out and "--grad {standard,stl,dreg}" in out
        assert "K: samples in the training objective" in out and "(default: 3280)" in out
    else:
        estimators = "gumbel_softmax,straight_through,score_function,rebar,relax,st,reinmax"
        assert f"--estimator {{{estimators},gumbel_rao,indecater,vimco}}" in out
        assert "--checkpoint-choice {best,last}" in out and "--patience {None}|INT" in out


# ---------------------------------------------------------------- values checked first
def _numeric_fields(config_type: type) -> list[tuple[str, type]]:
    hints = typing.get_type_hints(config_type)
    fields = []
    for field in dataclasses.fields(config_type):
        hint = hints[field.name]
        kinds = {hint, *typing.get_args(hint)}
        if int in kinds or hint == tuple[int, ...]:
            fields.append((field.name, int))
        elif float in kinds:
            fields.append((field.name, float))
    return fields


# Values of these fields that are valid (a β of 0 is an autoencoder, any seed is a seed, ...).
VALID = {"seed": {"0", "-1"}, "beta": {"0"}, "b2": {"0"}, "anneal_rate": {"0"}}
VALID["rebar_eta"] = {"0", "-1"}
FLAGS = [
    (name, "train", field, kind)
    for name, experiment in EXPERIMENTS.items()
    for field, kind in _numeric_fields(experiment.Config)
] + [
    (name, "evaluate", field, kind)
    for name in EXPERIMENTS
    for field, kind in _numeric_fields(runs.Evaluate)
]


@pytest.mark.parametrize(("name", "command", "field", "kind"), FLAGS)
def test_a_bad_number_stops_before_any_work(name, command, field, kind, tmp_path, capsys):
    workdir, checkpoint = tmp_path / "new-run", tmp_path / "saved"
    checkpoint.mkdir()
    flag = "--" + field.replace("_", "-")
    base = {
        "train": ["train", "--quick", "--workdir", str(workdir), "--no-progress"],
        "evaluate": ["evaluate", "--checkpoint", str(checkpoint)],
    }[command]
    bad = ["0", "-1", "1.5"] if kind is int else ["0", "-1"]
    bad = [value for value in bad if value not in VALID.get(field, ())]
    assert bad or field in VALID
    for value in bad:
        status = _exit_status(EXPERIMENTS[name], [*base, flag, value])
        err = capsys.readouterr().err
        assert status == 2, (flag, value, err)
        assert flag in err, (flag, value, err)  # the message names the flag
        assert not workdir.exists() and not any(checkpoint.iterdir())
    # The same command with a good value gets past the checks (and is stopped by the guard).
    context = ["--model", "iwae"] if (name, command, field) == ("vae_mnist", "train", "k") else []
    with pytest.raises(WorkStarted):
        vae_commands.main(EXPERIMENTS[name], [*base, *context, flag, "2" if kind is int else "0.5"])
    capsys.readouterr()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--model", "nope"], "invalid choice 'nope'"),
        (["train", "--data-dir", "/no/such/dir"], "--data-dir must be an existing folder"),
        (["train", "--resume", "--overwrite"], "--resume and --overwrite exclude each other"),
        (["train", "--k", "5"], "--k must be 1 for --model vae, got 5"),
        (["evaluate", "--checkpoint", "/no/such/run"], "--checkpoint must be an existing path"),
        (["evaluate"], "--checkpoint"),  # required
        (["compare", "/no/such/run", "--out", "x.png"], "workdirs must be an existing path"),
        (["paired", "/no/such.json"], "records must be an existing path"),
        (["--device", "abacus", "train"], "invalid choice 'abacus'"),
    ],
)
def test_bad_flags_are_one_clear_line(argv, message, capsys):
    assert _exit_status(EXPERIMENTS["vae_mnist"], argv) == 2
    err = capsys.readouterr().err
    assert message in err
    if "invalid choice" not in err and "--checkpoint" != message:  # tyro's own errors are boxed
        assert len(err.strip().splitlines()) == 1, err


# ---------------------------------------------------------------- work directories
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_an_occupied_workdir_is_refused_and_left_alone(name, old_run, capsys):
    before = _snapshot(old_run)
    assert _exit_status(EXPERIMENTS[name], ["train", "--quick", "--workdir", str(old_run)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert str(old_run) in line and "--resume" in line and "--overwrite" in line
    assert _snapshot(old_run) == before


def test_overwrite_moves_the_old_run_aside(old_run):
    before = _snapshot(old_run)
    with pytest.raises(WorkStarted):
        vae_commands.main(
            EXPERIMENTS["vae_mnist"], ["train", "--quick", "--workdir", str(old_run), "--overwrite"]
        )
    (aside,) = old_run.parent.glob("run.old-*")
    assert _snapshot(aside) == before  # moved whole, never deleted
    assert old_run.is_dir() and not any(old_run.iterdir())


def test_resume_needs_a_run(tmp_path, capsys):
    argv = ["train", "--quick", "--workdir", str(tmp_path / "none"), "--resume"]
    assert _exit_status(EXPERIMENTS["vae_mnist"], argv) == 2
    assert "holds no run to continue" in capsys.readouterr().err


def test_a_checkpoint_cut_short_before_its_rename_is_never_read(tmp_path, monkeypatch):
    """orbax writes a checkpoint into a temporary folder and renames it when complete: a crash
    before the rename leaves the previous checkpoint the latest, and it restores."""
    state = train.create_state({"w": jnp.arange(3.0)}, train.adam(1e-3))
    with checkpoint_lib.Checkpointer(tmp_path) as checkpointer:
        checkpointer.save(1, state, {"epoch": 1})
    # orbax's internal commit step (the rename); imported here, the one test that needs it.
    from orbax.checkpoint._src.path import async_path

    async def crash(src, dst):
        raise OSError(f"killed before renaming {src} to {dst}")

    monkeypatch.setattr(async_path, "rename", crash)
    with pytest.raises(OSError), checkpoint_lib.Checkpointer(tmp_path) as checkpointer:
        checkpointer.save(2, state._replace(step=state.step + 1), {"epoch": 2})
    monkeypatch.undo()
    assert not (tmp_path / "2").exists()
    with checkpoint_lib.Checkpointer(tmp_path) as checkpointer:  # a new process: restart
        assert checkpointer.latest() == 1
        restored, meta = checkpointer.restore(state)
    assert meta["epoch"] == 1 and restored.step == state.step
