"""experiments/gumbel_vae.py on the embedded digits: quick run, each estimator, evaluate, errors."""

from __future__ import annotations

import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import gumbel_vae, runner, vae_commands, vae_records
from experiments.reports import gumbel_vae as gumbel_report
from reparam import train

# One worker runs this module, so its module-scoped fixture (a training run) runs once
# under `pytest -n 2 --dist loadgroup` instead of once per worker.
pytestmark = pytest.mark.xdist_group("gumbel_vae_experiment")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One `train --quick` run (Gumbel-softmax) shared by the tests below (seconds)."""
    workdir = tmp_path_factory.mktemp("gumbel_quick")
    rc = gumbel_vae.main(["train", "--quick", "--workdir", str(workdir), "--no-progress"])
    return rc, workdir


def test_quick_train_learns_and_writes_results(quick_run):
    rc, workdir = quick_run
    assert rc == 0
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    config = gumbel_vae.Config.quick()
    assert [r["epoch"] for r in records] == list(range(1, config.epochs + 1))
    assert records[-1]["loss"] < records[0]["loss"]  # it learns
    evals = [r["valid_elbo"] for r in records if "valid_elbo" in r]
    assert len(evals) == config.epochs // config.eval_every and evals[-1] > evals[0]
    # The temperature is annealed with the global step and floored at τ_min.
    temperatures = [r["temperature"] for r in records]
    assert temperatures[0] == 1.0 and temperatures[-1] == config.tau_min
    assert all(a >= b for a, b in itertools.pairwise(temperatures))
    assert train.Checkpointer(workdir / "checkpoints").latest() == config.epochs
    # Early stopping (the preset's patience 2) kept the best validation bound's state apart, and
    # the final evaluation is of that state.
    best_epoch = max((r for r in records if "valid_elbo" in r), key=lambda r: r["valid_elbo"])
    best_epoch = best_epoch["epoch"]
    assert train.Checkpointer(workdir / train.BEST_DIRECTORY).all_epochs() == [best_epoch]
    for name in ("curves.png", "samples.png", "reconstructions.png"):
        assert (workdir / name).read_bytes()[:4] == b"\x89PNG"
    results = json.loads((workdir / "results.json").read_text())
    assert results["status"] == "completed" and results["nll_samples"] == config.eval_samples
    assert results["early_stopping"]["best_epoch"] == best_epoch == results["evaluated_epoch"]
    assert results["early_stopping"]["patience"] == config.patience
    # The importance-sampled NLL (K = 100) is below the one-sample −ELBO, and both are positive;
    # a gap means the latents are in use (a collapsed posterior, q = prior, has none).
    assert 0 < results["nll"] < results["neg_elbo"] - 0.1


def test_evaluate_prints_nll_last_and_more_samples_is_tighter(quick_run, capsys):
    _, workdir = quick_run
    capsys.readouterr()
    assert gumbel_vae.main(["evaluate", "--checkpoint", str(workdir), "--k", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    one = float(lines[-1])
    assert "K=1" in lines[-2]
    results = json.loads((workdir / "results.json").read_text())
    many = results["nll"]  # K = 100, same samples' key, the same (best) state
    assert 0 < many < one
    # The best checkpoint by default; --checkpoint-choice last for the last one.
    best = results["evaluated_epoch"]
    assert f"checkpoint: {workdir.resolve() / 'best' / str(best)} (best)" in lines
    assert f"epochs: {best}" in lines
    args = ["evaluate", "--checkpoint", str(workdir), "--k", "1", "--examples", "10"]
    assert gumbel_vae.main([*args, "--checkpoint-choice", "last"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    last = gumbel_vae.Config.quick().epochs
    assert f"checkpoint: {workdir.resolve() / 'checkpoints' / str(last)} (regular)" in lines


def test_compare_and_table(quick_run, tmp_path, capsys):
    _, workdir = quick_run
    out = tmp_path / "curves.png"
    assert gumbel_vae.main(["compare", str(workdir), "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    rows_path = tmp_path / "rows.json"
    assert gumbel_vae.main(["table", str(workdir), "--json", str(rows_path)]) == 0
    (row,) = json.loads(rows_path.read_text())
    assert row["config"]["estimator"] == "gumbel_softmax"
    assert row["epochs"] == gumbel_vae.Config.quick().epochs
    table = capsys.readouterr().out.strip().splitlines()
    assert table[0].endswith("| relaxed −objective τ=0.5 |") and table[1] == "|---" * 10 + "|"
    assert table[0].startswith("| run | model | passes | stop | best epoch | evaluated epoch |")
    assert (
        f"| {row['epochs']} | completed | {row['best_epoch']} | {row['evaluated_epoch']} |"
        in (table[2])
    )
    assert f"{row['nll']:.2f} ± {row['nll_stderr']:.2f}" in table[2]
    assert f"{row['relaxed_neg_objective']:.2f} |" in table[2]


def test_table_record_gathers_train_and_evaluate_into_one_rendered_record(
    quick_run, tmp_path, monkeypatch
):
    _, workdir = quick_run
    monkeypatch.setattr(runner, "RECORDS", tmp_path / "records")
    monkeypatch.setattr(vae_records, "RESULTS", tmp_path)
    assert gumbel_vae.main(["table", str(workdir), "--record"]) == 2  # not evaluated yet
    evaluation = workdir / "evaluation.json"
    args = ["evaluate", "--checkpoint", str(workdir), "--k", "1", "--json", str(evaluation)]
    assert gumbel_vae.main(args) == 0
    assert gumbel_vae.main(["table", str(workdir), "--record"]) == 0
    record = json.loads((tmp_path / "records" / "gumbel_vae.json").read_text())
    (run,) = record["results"]["runs"]
    assert run["evaluation"]["nll_samples"] == 1 and "log_px" not in run["evaluation"]
    for part in (run["train"], run["evaluation"]):  # each process's own command and machine
        assert part["command"].startswith("python -m experiments.gumbel_vae ")
        assert part["provenance"]["cpu"] and part["wall_seconds"] > 0
    markdown = gumbel_report.render(record)
    assert f"**{run['evaluation']['nll']:.2f} ± {run['evaluation']['nll_stderr']:.2f}**" in markdown
    assert "| Gumbel-S. (Gumbel-softmax) | 101.5 |" in markdown  # the paper's, labelled
    assert run["evaluation"]["command"] in markdown
    assert (tmp_path / record["results"]["plots"]["curves"]).read_bytes()[:4] == b"\x89PNG"


def test_vimco_trains_end_to_end(tmp_path):
    """A new estimator through the whole command: VIMCO, K = 2 by default, labelled with its K
    (its objective is the K-sample bound), learns (the validation ELBO improves)."""
    workdir = tmp_path / "vimco"
    argv = ["train", "--quick", "--estimator", "vimco", "--no-eval", "--no-progress"]
    assert gumbel_vae.main([*argv, "--workdir", str(workdir)]) == 0
    results = json.loads((workdir / "results.json").read_text())
    assert results["name"] == "VIMCO (K=2)" and results["status"] == "completed"
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    evals = [r["valid_elbo"] for r in records if "valid_elbo" in r]
    assert len(evals) == 4 and evals[-1] > evals[0] + 0.5
    assert records[-1]["objective"] > records[0]["objective"] + 1  # the 2-sample bound rises


# Gumbel-softmax is trained end to end by `quick_run`, VIMCO above; every estimator's objective is
# checked in tests/test_discrete_vae.py. RELAX has the most plumbing here (η, λ and the residual
# network's parameters in the train state); ReinMax has its own fixed temperature.
@pytest.mark.parametrize("estimator", ["relax", "reinmax"])
def test_estimator_gives_finite_loss_and_gradients_of_the_right_shapes(estimator):
    run = gumbel_vae.setup(gumbel_vae.Config.quick(estimator=estimator))
    params = run.state.params
    if estimator == "relax":
        assert set(params["cv"]) == {"eta", "log_temperature", "residual"}
    batch = jnp.asarray(run.dataset.train[: run.config.batch_size])
    (loss, metrics), grads = jax.jit(jax.value_and_grad(run.loss_fn, has_aux=True))(
        params, batch, jax.random.key(0), jnp.int32(0)
    )
    assert np.isfinite(float(loss)) and float(loss) > 0
    expected = run.config.reinmax_temperature if estimator == "reinmax" else 1.0
    assert float(metrics["temperature"]) == pytest.approx(expected)
    assert jax.tree.structure(grads) == jax.tree.structure(params)
    for g, p in zip(jax.tree.leaves(grads), jax.tree.leaves(params), strict=True):
        assert g.shape == p.shape and np.all(np.isfinite(g))
    for part in (grads["model"]["params"]["encoder"], grads.get("cv", {})):
        assert any(np.any(g != 0) for g in jax.tree.leaves(part)) or not part  # encoder and φ


def test_bad_inputs(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"gumbel_softmax.*rebar.*relax"):
        gumbel_vae.Config(estimator="reinforce").validate()
    with pytest.raises(SystemExit) as exit_info:  # tyro lists the choices
        gumbel_vae.main(["train", "--quick", "--workdir", str(tmp_path), "--estimator", "nvil"])
    assert exit_info.value.code == 2
    assert "invalid choice 'nvil'" in capsys.readouterr().err
    args = ["train", "--quick", "--workdir", str(tmp_path), "--tau-min", "0"]
    assert gumbel_vae.main(args) == 2
    assert "--tau-min must be a temperature > 0, got 0.0" in capsys.readouterr().err
    args = ["train", "--quick", "--workdir", str(tmp_path), "--estimator", "vimco"]
    assert gumbel_vae.main([*args, "--num-samples", "1"]) == 2
    assert "--num-samples must be >= 2 for vimco, got 1" in capsys.readouterr().err
    _, command = vae_commands.parse(gumbel_vae.EXPERIMENT, args)  # K = 2 unless given
    assert command.config.num_samples == 2 and command.config.name == "VIMCO (K=2)"
    _, command = vae_commands.parse(gumbel_vae.EXPERIMENT, [*args, "--num-samples", "5"])
    assert command.config.name == "VIMCO (K=5)"
    assert gumbel_vae.main(["evaluate", "--checkpoint", str(tmp_path / "missing")]) == 2
    assert "--checkpoint must be an existing path" in capsys.readouterr().err


def test_report_shows_early_stopping_and_the_new_estimators():
    """The committed record renders as before (make results checks it); a run that stopped early,
    evaluated at its best epoch, with a new estimator, says so."""
    record = json.loads((runner.RECORDS / "gumbel_vae.json").read_text())
    # The committed runs made plain: no early stopping, none of them VIMCO.
    runs = [r for r in record["results"]["runs"] if r["train"]["config"]["estimator"] != "vimco"]
    record["results"]["runs"] = runs
    for r in runs:
        r["train"]["results"].pop("early_stopping", None)
        r["train"]["results"]["status"] = "completed"
        for field in ("evaluated_epoch", "checkpoint_kind"):
            r["evaluation"].pop(field, None)
        r["evaluation"]["epochs"] = r["train"]["results"]["epochs"]
    before = gumbel_report.render(record)
    assert "stopped early" not in before and "VIMCO" not in before
    assert "**These are short runs**" in before
    run = record["results"]["runs"][2]
    run["train"]["config"] |= {"estimator": "vimco", "num_samples": 2}
    run["train"]["results"] |= {"status": "early_stopped", "epochs": 120}
    run["train"]["results"]["early_stopping"] = {
        "metric": "valid_elbo", "mode": "max", "patience": 4, "best_epoch": 100,
        "best_value": -101.234,
    }  # fmt: skip
    run["evaluation"] |= {"epochs": 100, "evaluated_epoch": 100, "checkpoint_kind": "best"}
    markdown = gumbel_report.render(record)
    assert "| 120 (stopped early; evaluated: epoch 100, the best) |" in markdown
    assert "best at epoch 100 (-101.23); stopped early after 120 passes" in markdown
    assert "Also VIMCO (Mnih & Rezende 2016; trains the K-sample bound, K = 2," in markdown
    assert "samples of epoch 100's state (of 120 passes)" in markdown
    assert "with early stopping on the validation bound (every 5 passes, patience 4)" in markdown
    assert "How each ended — " in markdown and f"stopped early: {run['label']}" in markdown


def test_train_stops_early_and_evaluate_uses_the_best(tmp_path, monkeypatch, capsys):
    """The experiment's early stopping with a scripted validation bound (best at pass 10, then
    two worse): training stops after pass 20 of 40, its images and `evaluate` are of pass 10."""
    script = iter([-30.0, -25.0, -26.0, -25.5, 0.0, 0.0])
    monkeypatch.setattr(vae_commands.evaluate, "mean_bound", lambda *args, **kw: next(script))
    workdir = tmp_path / "stopped"
    argv = ["train", "--quick", "--epochs", "40", "--no-eval", "--no-progress"]
    assert gumbel_vae.main([*argv, "--workdir", str(workdir)]) == 0
    monkeypatch.undo()
    results = json.loads((workdir / "results.json").read_text())
    assert (results["status"], results["epochs"], results["evaluated_epoch"]) == (
        "early_stopped", 20, 10
    )  # fmt: skip
    assert results["early_stopping"] | {"best_value": None} == {
        "metric": "valid_elbo", "mode": "max", "patience": 2, "best_epoch": 10,
        "best_value": None,
    }  # fmt: skip
    assert train.Checkpointer(workdir / train.BEST_DIRECTORY).all_epochs() == [10]
    capsys.readouterr()
    args = ["evaluate", "--checkpoint", str(workdir), "--k", "1", "--examples", "10"]
    assert gumbel_vae.main([*args, "--json", str(tmp_path / "evaluation.json")]) == 0
    evaluation = json.loads((tmp_path / "evaluation.json").read_text())
    assert (evaluation["evaluated_epoch"], evaluation["checkpoint_kind"]) == (10, "best")
