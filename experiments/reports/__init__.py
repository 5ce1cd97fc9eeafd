"""Results markdown rendered from committed run records (`make results`).

A run started with `--record` writes experiments/results/records/<name>.json (see
`experiments.runner.Run.finish`). Each experiment has a module here with
`render(record) -> str`, the whole markdown file built from the record alone. This module renders
every record into experiments/results/<name>.md, so no number in a results file is typed by hand:

    python -m experiments.reports            # rewrite every results file that has a record
    python -m experiments.reports --check    # exit 1 if a committed file differs (what CI tests)
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent / "results"
RECORDS = RESULTS / "records"


def render(record_path: Path) -> str:
    """The markdown of one record, by its experiment's `render`."""
    record = json.loads(record_path.read_text())
    module = importlib.import_module(f"experiments.reports.{record['experiment']}")
    return module.render(record)


def rendered() -> dict[Path, str]:
    """Every results file that has a record -> its rendered markdown."""
    return {RESULTS / f"{p.stem}.md": render(p) for p in sorted(RECORDS.glob("*.json"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    stale = []
    for path, text in rendered().items():
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path)
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(RESULTS.parent.parent)}")
    for path in stale:
        print(f"{path} differs from its record's rendering: run `make results`", file=sys.stderr)
    return 1 if stale else 0
