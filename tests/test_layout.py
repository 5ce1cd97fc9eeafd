"""The folders are the architecture (docs/DESIGN.md, "Layout"): each package imports only from the
layers below it, `import reparam` loads no flax, orbax or file/network I/O, and the earlier flat
module names still resolve to the same module objects."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "reparam"

# Lower rank = lower layer. A module may import from its own package and from lower ranks only.
RANKS = {
    "reparam.checks": 0,
    "reparam._linalg": 0,
    "reparam.families": 1,
    "reparam.estimators": 2,
    "reparam.models": 3,
    "reparam.nn": 4,
    "reparam.train": 5,
    "reparam.vi": 6,
    "reparam.rl": 6,
}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    for depth in (2, 1):
        name = ".".join(parts[:depth])
        if name in RANKS:
            return name
    return None


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "reparam":  # `from reparam import checks, estimators`
                found += [(node.lineno, f"reparam.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return [(line, name) for line, name in found if name.startswith("reparam.")]


def _library_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE or p.stem != "__init__")


@pytest.mark.parametrize("path", _library_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_a_higher_layer(path: Path):
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    own = _layer(module)
    assert own is not None, f"{module} is in no layer of RANKS: add its package there"
    for line, name in _imports(path):
        target = _layer(name)
        assert target is not None, f"{path.name}:{line} imports {name}, which is in no layer"
        assert target == own or RANKS[target] < RANKS[own], (
            f"{module} (layer {own}, rank {RANKS[own]}) imports {name} at line {line} "
            f"(layer {target}, rank {RANKS[target]}): imports must point down"
        )


def test_import_reparam_loads_no_flax_orbax_or_io_modules():
    code = (
        "import sys, reparam; "
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('flax', 'orbax', 'tqdm', 'matplotlib') or m.startswith(('reparam.train', "
        "'reparam.nn', 'reparam.vi', 'reparam.rl', 'reparam.models')))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "", f"`import reparam` loaded: {out.stdout.strip()}"


def test_earlier_flat_names_resolve_to_the_same_modules():
    import importlib

    import reparam
    from reparam import families

    assert reparam.normal is families.normal
    for old, new in reparam._MOVED.items():
        assert importlib.import_module(old) is importlib.import_module(new), old
        assert importlib.import_module(new).__spec__.name == new  # not renamed by the alias
    from reparam.data import DataError  # a `from old.path import name` keeps working

    from reparam.train.data import DataError as Same

    assert DataError is Same
