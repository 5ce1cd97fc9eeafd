"""Every results file with a committed record equals its rendering from that record
(`make results`): no number in experiments/results/ is typed by hand."""

from __future__ import annotations

import json

import pytest

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
