"""Every results file with a committed record equals its rendering from that record
(`make results`): no number in experiments/results/ is typed by hand, and the numbers of
benchmarks/README.md are the rendering of benchmarks/records/."""

from __future__ import annotations

import json
import re

import pytest

from benchmarks import report as bench_report
from experiments import reports

RECORDS = sorted(reports.RECORDS.glob("*.json"))


@pytest.mark.parametrize("record_path", RECORDS, ids=lambda p: p.stem)
def test_committed_markdown_is_the_rendering_of_its_record(record_path):
    markdown = reports.RESULTS / f"{record_path.stem}.md"
    assert markdown.exists(), f"{markdown} missing: run `make results`"
    assert markdown.read_text() == reports.render(record_path), (
        f"{markdown} differs from the rendering of {record_path}: run `make results`"
    )


@pytest.mark.parametrize("record_path", RECORDS, ids=lambda p: p.stem)
def test_every_record_says_what_ran_where_and_when(record_path):
    record = json.loads(record_path.read_text())
    for field in ("experiment", "command", "config", "provenance", "wall_seconds", "results"):
        assert field in record, f"{record_path.name} lacks {field!r}"
    for field in ("commit", "date", "cpu", "cpu_count", "load_average", "jax"):
        assert record["provenance"].get(field) is not None, f"{record_path.name}: {field}"
    assert not record["quick"], f"{record_path.name} is a --quick run; results come from full runs"


def test_check_mode_reports_a_stale_file(tmp_path, monkeypatch):
    """`--check` fails when a results file differs from its record's rendering."""
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / "toy.json").write_text(json.dumps({"experiment": "toy"}))
    (tmp_path / "toy.md").write_text("hand-edited\n")
    monkeypatch.setattr(reports, "RESULTS", tmp_path)
    monkeypatch.setattr(reports, "RECORDS", tmp_path / "records")
    monkeypatch.setattr(reports, "render", lambda path: "rendered\n")
    assert reports.main(["--check"]) == 1
    assert reports.main([]) == 0
    assert (tmp_path / "toy.md").read_text() == "rendered\n"
    assert reports.main(["--check"]) == 0


BENCH_RECORDS = sorted(bench_report.HERE.glob("records/*.json"))


def test_benchmarks_readme_is_the_rendering_of_its_records():
    text = bench_report.README.read_text()
    blocks = [m["path"] for m in bench_report.BLOCK.finditer(text)]
    assert sorted(blocks) == sorted(f"records/{p.name}" for p in BENCH_RECORDS), (
        "every benchmark record has one rendered block in benchmarks/README.md and back"
    )
    assert bench_report.rendered(text) == text, "benchmarks/README.md: run `make results`"


@pytest.mark.parametrize("record_path", BENCH_RECORDS, ids=lambda p: p.stem)
def test_every_benchmark_run_says_what_ran_where_and_when(record_path):
    record = json.loads(record_path.read_text())
    for run in record.get("runs", [record]):
        header = "\n".join(run["header"])
        for field in ("date", "machine", "git commit"):
            assert re.search(rf"^- {field}: \S", header, re.M), f"{record_path.name}: {field}"
        assert "command: python -m benchmarks." in header, record_path.name


def test_benchmarks_check_mode_reports_a_stale_table(tmp_path, monkeypatch):
    """`python -m benchmarks.report --check` fails when a rendered block was edited by hand."""
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / "toy.json").write_text("{}")
    readme = tmp_path / "README.md"
    marker = "<!-- rendered: records/toy.json -->\n{}<!-- end rendered: records/toy.json -->\n"
    readme.write_text("prose\n" + marker.format("| 1.00 |\n"))
    monkeypatch.setattr(bench_report, "render", lambda path, folder: "| 2.00 |\n")
    assert bench_report.main(["--check"], readme) == 1
    assert bench_report.main([], readme) == 0
    assert readme.read_text() == "prose\n" + marker.format("| 2.00 |\n")
    assert bench_report.main(["--check"], readme) == 0
