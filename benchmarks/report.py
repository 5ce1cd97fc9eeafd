"""The numbers of benchmarks/README.md, rendered from the committed records in benchmarks/records/.

A benchmark run writes a JSON record (`--json PATH`; benchmarks.scaling by default): the header
it printed (date, machine, load, commit, command), its arguments and raw times. The README's
prose is hand-written; its numbers sit between marker comments,

    <!-- rendered: records/NAME.json -->
    ...
    <!-- end rendered: records/NAME.json -->

and are the rendering of that record by `benchmarks.<MODULE>.render(record)`, MODULE being NAME
up to its first "-" (records/sampling-process.json is rendered by benchmarks.sampling):

    python -m benchmarks.report            # rewrite the rendered parts of benchmarks/README.md
    python -m benchmarks.report --check    # exit 1 if one differs from its record (CI)

`make results` runs it after experiments.reports.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
from pathlib import Path

from benchmarks import implicit

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
BLOCK = re.compile(
    r"(?P<open><!-- rendered: (?P<path>records/[\w.-]+\.json) -->\n)"
    r"(?P<body>.*?)"
    r"(?P<close><!-- end rendered: (?P=path) -->)",
    re.S,
)


def render_implicit(record: dict) -> list[str]:
    """benchmarks.implicit's record (one run, or {"runs": [...]}): each run's header, table and
    notes. Here rather than in benchmarks/implicit.py, whose samplers are being reworked."""
    lines: list[str] = []
    for run in record.get("runs", [record]):
        cells = [
            implicit.Cell(c["family"], c["concentration"], c["workload"], c["draws_per_call"],
                          c["times_s"])
            for c in run["cells"]
        ]  # fmt: skip
        present = {name for c in cells for name in c.times}
        contenders = [name for name in implicit.CONTENDERS if name in present]
        title, *rest = run["header"]
        lines += ["" if lines else None, "### " + title.lstrip("# "), *rest, ""]
        lines += [
            "Millions of draws per second, draws / draws + gradient (median); reparam ÷ X: "
            "median of per-round paired time ratios, > 1 means reparam is faster.",
            "",
            *implicit.table(cells, contenders),
        ]
        if run["notes"]:
            lines += ["", "Notes:", *(f"- {note}" for note in run["notes"])]
    return [line for line in lines if line is not None]


def render(path: str, folder: Path = HERE) -> str:
    """The rendering of the record at `folder / path` (e.g. "records/sampling.json")."""
    name = Path(path).stem
    record = json.loads((folder / path).read_text())
    module = name.split("-")[0]
    if module == "implicit":
        lines = render_implicit(record)
    else:
        lines = importlib.import_module(f"benchmarks.{module}").render(record)
    return "\n".join(lines) + "\n"


def rendered(text: str, folder: Path = HERE) -> str:
    """`text` (the README) with every marked block replaced by its record's rendering."""

    def block(match: re.Match) -> str:
        return match["open"] + render(match["path"], folder) + match["close"]

    return BLOCK.sub(block, text)


def main(argv: list[str] | None = None, readme: Path = README) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    text = readme.read_text()
    new = rendered(text, readme.parent)
    if args.check:
        if new != text:
            print(f"{readme} differs from its records' rendering: run `make results`",
                  file=sys.stderr)  # fmt: skip
            return 1
        return 0
    readme.write_text(new)
    print(f"wrote {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
