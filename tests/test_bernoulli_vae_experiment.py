"""experiments/bernoulli_vae.py on the embedded digits: quick runs of DisARM and RELAX, evaluate,
the gathered record and its rendering, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments import bernoulli_vae, runner, vae_records
from experiments.reports import bernoulli_vae as report

# One worker runs this module, so its module-scoped fixture (two training runs) runs once under
# `pytest -n 2 --dist loadgroup` instead of once per worker.
pytestmark = pytest.mark.xdist_group("bernoulli_vae_experiment")

ESTIMATORS = ("disarm", "relax")


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    """`train --quick --no-eval` with DisARM and RELAX, then `evaluate --json` of both, as the
    long runs are gathered (seconds)."""
    root = tmp_path_factory.mktemp("bernoulli_quick")
    workdirs = {}
    for estimator in ESTIMATORS:
        workdir = root / estimator
        args = ["train", "--quick", "--estimator", estimator, "--workdir", str(workdir)]
        args += ["--no-progress", "--no-eval"]
        assert bernoulli_vae.main(args) == 0
        evaluation = ["evaluate", "--checkpoint", str(workdir), "--k", "10", "--examples", "100"]
        assert bernoulli_vae.main([*evaluation, "--json", str(workdir / "evaluation.json")]) == 0
        workdirs[estimator] = workdir
    return workdirs


def _metrics(workdir):
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_quick_run_learns_and_logs_the_gradient_variance(quick_runs, estimator):
    config = bernoulli_vae.Config.quick()
    records = _metrics(quick_runs[estimator])
    assert [r["epoch"] for r in records] == list(range(1, config.epochs + 1))
    assert records[-1]["loss"] < records[0]["loss"] - 2.0  # nats: it learns
    evals = [r for r in records if "valid_elbo" in r]
    assert len(evals) == config.epochs // config.eval_every
    assert evals[-1]["valid_elbo"] > evals[0]["valid_elbo"]
    for r in evals:  # the encoder gradient's variance, with every validation
        assert 0 < r["grad_variance"] < r["grad_variance_sum"] < np.inf


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_evaluation_nll_is_below_the_negative_elbo(quick_runs, estimator):
    results = json.loads((quick_runs[estimator] / "results.json").read_text())
    assert results["status"] == "completed" and "nll" not in results  # --no-eval
    evaluation = json.loads((quick_runs[estimator] / "evaluation.json").read_text())
    assert evaluation["nll_samples"] == 10 and evaluation["examples"] == 100
    # The 10-sample bound is above the one-sample ELBO: 0 < NLL < −ELBO, all finite.
    assert 0 < evaluation["nll"] < evaluation["neg_elbo"] < np.inf
    assert np.isfinite(evaluation["train_neg_elbo"])
    last = _metrics(quick_runs[estimator])[-1]  # the same measurement at the same parameters
    assert evaluation["grad_variance"] == pytest.approx(last["grad_variance"], rel=1e-5)
    assert evaluation["log10_grad_variance"] == pytest.approx(np.log10(last["grad_variance"]))
    # Every compared estimator at the same parameters, the run's own among them (its value is
    # the one above: the same measurement).
    by = evaluation["grad_variance_by_estimator"]
    assert set(by) == {*bernoulli_vae.COMPARED, estimator}
    assert by[estimator] == pytest.approx(evaluation["grad_variance"], rel=1e-5)
    assert all(0 < v < np.inf for v in by.values())


def test_table_record_and_its_rendering(quick_runs, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "RECORDS", tmp_path / "records")
    monkeypatch.setattr(vae_records, "RESULTS", tmp_path)
    workdirs = [str(quick_runs[e]) for e in ESTIMATORS]
    assert bernoulli_vae.main(["table", *workdirs, "--record"]) == 0
    record = json.loads((tmp_path / "records" / "bernoulli_vae.json").read_text())
    runs = record["results"]["runs"]
    assert [r["train"]["config"]["estimator"] for r in runs] == list(ESTIMATORS)
    for r in runs:
        assert set(r["curves"]) == {"objective", "valid_elbo", "grad_variance"}
        assert [p[1] for p in r["curves"]["objective"]] == [25 * i for i in range(1, 17)]
    figure = record["results"]["plots"]["curves_by_model"]["nonlinear"]
    assert (tmp_path / figure).read_bytes()[:4] == b"\x89PNG"
    markdown = report.render(record)
    for r in runs:
        e = r["evaluation"]
        assert f"**{e['nll']:.2f} ± {e['nll_stderr']:.2f}**" in markdown
        assert f"| {e['log10_grad_variance']:.2f} |" in markdown
        assert e["command"] in markdown and r["train"]["command"] in markdown
    assert "Variance of the encoder's gradient on our nonlinear-model runs" in markdown
    relax = next(r for r in runs if r["train"]["config"]["estimator"] == "relax")
    ours, steps = relax["evaluation"]["train_neg_elbo"], relax["train"]["results"]["steps"]
    # The published RELAX row beside this run's training −ELBO, and the difference.
    row = f"| nonlinear | RELAX | train | 78.13 | {ours:.2f} | {steps} | {ours - 78.13:+.2f} |"
    assert row in markdown
    assert f"![nonlinear model curves]({figure})" in markdown
    assert "## The estimators at the same parameters" in markdown
    for r in runs:  # each run's row: the compared estimators' log10 variances, then its own
        by = r["evaluation"]["grad_variance_by_estimator"]
        assert " | ".join(f"{np.log10(by[e]):.2f}" for e in bernoulli_vae.COMPARED) in markdown
    assert "DisARM's variance is below ARM's at the same parameters in" in markdown


def test_bad_flags_exit_with_status_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:  # tyro lists the choices
        bernoulli_vae.main(["train", "--quick", "--workdir", str(tmp_path), "--estimator", "nvil"])
    assert exit_info.value.code == 2
    assert "invalid choice 'nvil'" in capsys.readouterr().err
    for flag, value, message in (
        ("--num-pairs", "0", "--num-pairs must be a positive integer, got 0"),
        ("--activation", "swish", "--activation must be one of leaky_relu, tanh"),
        ("--variance-estimates", "1", "--variance-estimates must be >= 2, got 1"),
    ):
        assert (
            bernoulli_vae.main(["train", "--quick", "--workdir", str(tmp_path), flag, value]) == 2
        )
        assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing started
