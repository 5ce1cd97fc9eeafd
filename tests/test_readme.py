"""The README's examples run as written (a user copies them first): its Python blocks, and every
shell command in it (`python -m ...`, `make ...`, in code blocks and in inline code).

Long commands run shortened, never skipped: a training gets --quick, one epoch and no final
evaluation, an evaluation few samples, an experiment without a subcommand --help; make targets
are dry runs (`make -n`) except `run`, whose command runs; runs/ becomes a temporary folder.
"""

from __future__ import annotations

import pathlib
import re
import runpy
import shlex
import subprocess
import sys
import time
import warnings

import jax
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SHELL = re.compile(r"^(python -m |make )")


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks, "README has no python example"
    namespace: dict = {}
    # The README reuses one key on purpose, to show sample == transform(noise) for that key.
    with jax.debug_key_reuse(False):
        for block in blocks:
            exec(compile(block, str(README), "exec"), namespace)


def readme_commands(text: str) -> list[str]:
    """Every shell command of `text`: lines of non-Python code blocks and inline code spans that
    start with `python -m` or `make`, in order, without trailing comments."""
    commands = []
    blocks = re.findall(r"```([a-z]*)\n(.*?)```", text, flags=re.DOTALL)
    for language, block in blocks:
        if language in ("", "bash", "sh", "shell", "console"):
            commands += [line.strip() for line in block.splitlines()]
    prose = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    commands += re.findall(r"`([^`\n]+)`", prose)
    return [c.split(" #")[0].strip() for c in commands if SHELL.match(c.strip())]


def test_readme_commands_are_found():
    commands = readme_commands(README.read_text())
    assert "make run" in commands and "make test" in commands
    assert any(c.startswith("python -m experiments.vae_mnist evaluate") for c in commands)
    assert any(c.startswith("python -m experiments.gumbel_vae train") for c in commands)


def shortened(argv: list[str], tmp: pathlib.Path) -> list[str]:
    """`python -m experiments.X ...` arguments made cheap (see the module docstring)."""
    argv = [str(tmp / arg) if arg.startswith("runs/") else arg for arg in argv]
    argv = [arg for arg in argv if arg != "--quick"]  # given once below
    if len(argv) == 1 or argv[1].startswith("-"):
        # An experiment without subcommands: its full run is its own test's job; here its flags
        # are parsed (an unknown or malformed one fails) and its help printed.
        return [*argv, "--help"]
    if argv[1] == "train":
        return [*argv, "--quick", "--epochs", "1", "--no-eval", "--no-progress"]
    if argv[1] == "evaluate":
        return [*argv, "--k", "10", "--examples", "50"]
    return argv


def run_python_module(argv: list[str]) -> int:
    """`python -m ARGV` in this process (no second interpreter to start, no JAX to import)."""
    saved = sys.argv
    sys.argv = [argv[0], *argv[1:]]
    try:
        with warnings.catch_warnings():
            # runpy warns that the tests imported the module before; running it again is the point.
            warnings.filterwarnings("ignore", "'experiments", RuntimeWarning)
            runpy.run_module(argv[0], run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        return 0 if exit_.code is None else exit_.code
    finally:
        sys.argv = saved
    return 0


def dry_run(target: list[str]) -> str:
    """What `make TARGET` would run (`make -n`), with this interpreter for the .venv's."""
    bin_dir = pathlib.Path(sys.executable).parent
    flags = ["-n", f"BIN={bin_dir}", "STAMP=", "BENCH_STAMP="]
    result = subprocess.run(["make", *flags, *target], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"make {' '.join(target)} failed: {result.stderr}"
    return result.stdout


def test_readme_commands_run(tmp_path, capsys):
    for command in readme_commands(README.read_text()):
        words = shlex.split(command)
        if words[0] == "make":
            planned = dry_run(words[1:])
            if words[1:] != ["run"]:
                continue
            # `make run` trains into a fresh runs/demo/<UTC time>; a second one, a second
            # later, gets another folder. Its command runs here, with its folder in tmp_path.
            (line,) = [line for line in planned.splitlines() if "-m experiments." in line]
            assert re.search(r"--workdir runs/demo/\d{8}T\d{6}Z", line), line
            time.sleep(1.1)
            assert dry_run(["run"]) != planned
            words = ["python", *shlex.split(line)[1:]]
        status = run_python_module(shortened(words[2:], tmp_path))
        output = capsys.readouterr()
        assert status == 0, f"README command failed: {command}\n{output.err[-3000:]}"
    assert list((tmp_path / "runs" / "demo").glob("*/checkpoints"))  # make run's training


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("```\nmake run  # demo\n```\nAlso `make lint`.", ["make run", "make lint"]),
        ("```python\npython -m x\n```\n| `python -m y --k 5` |", ["python -m y --k 5"]),
        ("`--model vae` and `reparam.train`", []),
    ],
)
def test_commands_are_extracted(text, expected):
    assert readme_commands(text) == expected
