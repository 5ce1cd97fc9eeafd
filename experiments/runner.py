"""The one runner every experiment script goes through.

A script is a frozen config dataclass (its fields, defaults and docstrings are the CLI: tyro
generates `--help` from them), a `quick` preset of it, and functions that take the config and a
`Run`. This module gives them the rest:

* `cli(...)`: the command line. `--quick` starts from the quick preset, every other flag overrides
  a field; the common flags (`RunFlags`: --workdir, --resume, --overwrite, --no-progress,
  --record) are the same in every script. Values are checked before any work starts (`validate`).
  A script with several commands (train, evaluate, ...) builds its train command with
  `command_type` and parses `prog [options] COMMAND [flags]` with `subcommands`.
* `Run`: the work directory (never overwritten by accident: `prepare_workdir`), named key streams
  (`run.key("init")` instead of magic `fold_in` numbers), provenance (commit, date, machine, load),
  wall and CPU time, and `run.finish(record)`, which writes `record.json` in the work directory
  and, with --record, a compact copy in experiments/results/records/ that `make results` renders.
* `main(fn)`: errors a user can fix (bad flag, missing data, damaged checkpoint) as one line and
  exit status 2; Ctrl-C as 130.
* `pyplot()`: matplotlib with the file-only backend.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Union

import tyro

REPO = Path(__file__).resolve().parent.parent
RECORDS = REPO / "experiments" / "results" / "records"


class UsageError(ValueError):
    """A flag or config value that cannot work; the message names it, what was expected and what
    came."""


# ---------------------------------------------------------------- command line
@dataclasses.dataclass(frozen=True)
class RunFlags:
    """Flags every experiment script takes."""

    workdir: Annotated[Path | None, tyro.conf.arg(aliases=("--out",))] = None
    """Where this run writes its files; default runs/<experiment>[-quick]. (--out: the same.)"""
    quick: bool = False
    """Start from the seconds-long preset (what the tests run); other flags override it."""
    resume: bool = False
    """Continue the run already in --workdir from its last checkpoint."""
    overwrite: bool = False
    """Move a run already in --workdir aside (to <workdir>.old-<time>) and start afresh."""
    progress: bool = True
    """Progress bars (--no-progress for logs)."""
    record: bool = False
    """Also write the record to experiments/results/records/, which `make results` renders."""


def _flat(tp: Any) -> Any:
    return Annotated[tp, tyro.conf.arg(name="")]


def cli(
    config_type: type,
    quick: Callable[[], Any],
    argv: Sequence[str] | None = None,
    *,
    description: str | None = None,
    validate: Callable[[Any], None] | None = None,
) -> tuple[Any, RunFlags]:
    """Parse `argv` into (config, flags): the config's fields and `RunFlags` as flat flags.

    `--quick` anywhere selects `quick()` as the starting point. `validate(config)` (and the
    generic checks of `check_config`) run before anything else; a bad value exits with status 2
    and a one-line message naming the flag.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    default = quick() if "--quick" in argv else config_type()
    command = command_type(config_type, default, doc=description)
    script = Path(sys.argv[0])  # usage line: the command a user types, not the file's path
    prog = f"python -m experiments.{script.stem}" if script.parent.name == "experiments" else None
    parsed = tyro.cli(command, args=argv, prog=prog)
    try:
        check_config(parsed.config)
        if validate is not None:
            validate(parsed.config)
        if parsed.run.resume and parsed.run.overwrite:
            raise UsageError("--resume and --overwrite exclude each other: choose one")
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    return parsed.config, parsed.run


def command_type(config_type: type, default: Any, *, extra: Any = None, doc: str | None = None):
    """The dataclass of a command that runs `config_type`: its fields (from `default`), the
    `RunFlags` and, if given, the fields of the dataclass instance `extra`, all as flat flags."""
    # Built with make_dataclass: the field types must be objects, not the strings that
    # `from __future__ import annotations` would make of a class body's annotations.
    fields = [
        ("config", _flat(config_type), dataclasses.field(default=default)),
        ("run", _flat(RunFlags), dataclasses.field(default=RunFlags())),
    ]
    if extra is not None:
        fields.append(("options", _flat(type(extra)), dataclasses.field(default=extra)))
    command = dataclasses.make_dataclass("Command", fields, frozen=True)
    command.__doc__ = doc or config_type.__doc__
    return command


def subcommands(
    commands: Mapping[str, type], argv: Sequence[str], *, top: Any, prog: str, description: str
) -> tuple[Any, Any]:
    """Parse `prog [top options] COMMAND [command options]` into (top options, command).

    `commands` maps each subcommand's name to its dataclass (e.g. from `command_type`; its
    docstring is its help line); `top` is a dataclass instance whose fields are the options
    before the subcommand. The generic `check_config` runs on the command and its parts;
    a bad value raises UsageError (`main` prints it as one line, exit status 2).
    """
    choices = tuple(
        Annotated[t, tyro.conf.subcommand(name, description=t.__doc__)]
        for name, t in commands.items()
    )
    fields = [
        ("command", Union[choices]),  # noqa: UP007 (a Union of a runtime tuple)
        ("top", _flat(type(top)), dataclasses.field(default=top)),
    ]
    parsed = tyro.cli(
        dataclasses.make_dataclass("Main", fields, frozen=True),
        args=list(argv),
        prog=prog,
        description=description,
        config=(tyro.conf.OmitSubcommandPrefixes,),
    )
    command = parsed.command
    for part in (command, *(getattr(command, f.name) for f in dataclasses.fields(command))):
        if dataclasses.is_dataclass(part):
            check_config(part)
    flags = getattr(command, "run", None)
    if isinstance(flags, RunFlags) and flags.resume and flags.overwrite:
        raise UsageError("--resume and --overwrite exclude each other: choose one")
    return parsed.top, command


def given(argv: Sequence[str], flag: str) -> bool:
    """Whether `flag` (e.g. "--k") is on the command line, as `--k 5` or `--k=5`."""
    return any(arg == flag or arg.startswith(flag + "=") for arg in argv)


def check_config(config: Any) -> None:
    """Generic checks of a config's values by field name: counts (`*_steps`, `epochs`, `*_every`,
    `batch*`, `*samples*`, `repeats`, `k`, ...) must be positive integers."""
    positive_words = ("steps", "epochs", "every", "batch", "samples", "repeats", "examples")
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        name = "--" + field.name.replace("_", "-")
        words = field.name.split("_")
        counts = any(word in positive_words for word in words) or field.name in ("k", "devices")
        if not counts or value is None or isinstance(value, bool):
            continue
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            if isinstance(v, int) and v <= 0:
                raise UsageError(f"{name} must be a positive integer, got {value!r}")


def require(condition: bool, flag: str, expected: str, got: Any) -> None:
    """Raise UsageError('--flag must be <expected>, got <got>') unless `condition`."""
    if not condition:
        raise UsageError(f"{flag} must be {expected}, got {got!r}")


def require_mesh_for_devices(config: Any) -> None:
    """A config with `mesh` and `devices` fields: --devices N (N > 1) needs --mesh data."""
    devices = config.devices
    require(config.mesh == "data" or devices in (None, 1), "--devices", "used with --mesh data",
            devices)  # fmt: skip


# ---------------------------------------------------------------- work directory
def prepare_workdir(workdir: Path, *, resume: bool, overwrite: bool) -> Path:
    """Make `workdir` ready for a run without ever losing one.

    A non-empty work directory is only used with `resume` (continue it) or `overwrite` (it is
    moved aside to <workdir>.old-<UTC time>, never deleted). Otherwise UsageError, touching
    nothing.
    """
    workdir = Path(workdir)
    occupied = workdir.exists() and any(workdir.iterdir())
    if occupied and overwrite:
        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        aside = workdir.with_name(f"{workdir.name}.old-{stamp}")
        shutil.move(str(workdir), str(aside))
        print(f"moved the earlier run in {workdir} to {aside}", file=sys.stderr)
    elif occupied and not resume:
        raise UsageError(
            f"--workdir {workdir} already holds a run; pass --resume to continue it or "
            f"--overwrite to move it aside (nothing was changed)"
        )
    elif resume and not occupied:
        raise UsageError(f"--resume: --workdir {workdir} holds no run to continue")
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


# ---------------------------------------------------------------- provenance
def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance() -> dict[str, Any]:
    """Where and when a run ran, measured now: commit (and whether the tree had changes), UTC
    date, CPU model and count, load average, JAX version and devices."""
    import jax

    status = _git("status", "--porcelain", "--untracked-files=no")
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "commit": _git("rev-parse", "--short=12", "HEAD"),
        "dirty": None if status is None else bool(status),
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in load],
        "python": platform.python_version(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
    }


def describe_machine(record: Mapping[str, Any]) -> str:
    """One sentence on a record's machine, from what was measured (never fixed text)."""
    p = record["provenance"]
    start, end = p["load_average"], record.get("load_average_end", p["load_average"])
    return (
        f"{p['cpu']} ({p['cpu_count']} cores, {p['backend']}: {len(p['devices'])} device(s)); "
        f"1-min load average {start[0]:.2f} at the start, {end[0]:.2f} at the end"
    )


# ---------------------------------------------------------------- the run
@dataclasses.dataclass
class Run:
    """One run of an experiment: its config, flags, work directory, keys and clocks."""

    experiment: str
    config: Any
    flags: RunFlags
    workdir: Path
    command: str
    started: float = dataclasses.field(default_factory=time.perf_counter)
    started_cpu: float = dataclasses.field(default_factory=time.process_time)
    provenance: dict = dataclasses.field(default_factory=provenance)

    @property
    def progress(self) -> bool:
        return self.flags.progress

    def key(self, stream: str, seed: int | None = None):
        """The key of the named stream: fold_in(key(seed), crc32(stream)); independent streams
        by name, the same key for the same (seed, name) in every run."""
        seed = getattr(self.config, "seed", 0) if seed is None else seed
        return stream_key(seed, stream)

    def finish(self, results: Mapping[str, Any], name: str | None = None) -> dict[str, Any]:
        """The run's record (command, config, provenance, wall and CPU seconds, `results`),
        written to <workdir>/record.json and, with --record, to the committed records folder."""
        record = {
            "experiment": self.experiment,
            "command": self.command,
            "config": _jsonable(dataclasses.asdict(self.config)),
            "quick": self.flags.quick,
            "provenance": self.provenance,
            "wall_seconds": time.perf_counter() - self.started,
            "cpu_seconds": time.process_time() - self.started_cpu,
            "load_average_end": [round(x, 2) for x in os.getloadavg()],
            "results": _jsonable(dict(results)),
        }
        text = json.dumps(record, indent=1, allow_nan=True) + "\n"
        (self.workdir / "record.json").write_text(text)
        if self.flags.record:
            RECORDS.mkdir(parents=True, exist_ok=True)
            (RECORDS / f"{name or self.experiment}.json").write_text(text)
        return record


def stream_key(seed: int, stream: str):
    """fold_in(key(seed), crc32(stream)): the key of a named stream (see `Run.key`), for code
    that has a seed but no `Run` (a model's set-up, called by tests too)."""
    import jax  # here, as in `provenance`: --help and bad flags answer without loading JAX

    return jax.random.fold_in(jax.random.key(seed), zlib.crc32(stream.encode()) & 0x7FFFFFFF)


def start(
    experiment: str,
    config: Any,
    flags: RunFlags,
    argv: Sequence[str] | None = None,
    *,
    primary: bool = True,
) -> Run:
    """Prepare the work directory (`prepare_workdir`) and start the clocks.

    In a multi-process run every process calls this with the same flags and one shared work
    directory; only the one with `primary=True` checks and prepares it (the others would find
    it occupied by the first).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    suffix = "-quick" if flags.quick else ""
    workdir = flags.workdir or Path("runs") / f"{experiment}{suffix}"
    try:
        if primary:
            workdir = prepare_workdir(workdir, resume=flags.resume, overwrite=flags.overwrite)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    command = f"python -m experiments.{experiment} {shlex.join(argv)}".strip()
    return Run(experiment, config, flags, workdir, command)


def _jsonable(value: Any) -> Any:
    import numpy as np

    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "shape") and hasattr(value, "tolist"):  # numpy and jax arrays
        return np.asarray(value).tolist()
    return value


def read_record(name: str, folder: Path = RECORDS) -> dict[str, Any]:
    return json.loads((folder / f"{name}.json").read_text())


# ---------------------------------------------------------------- errors and plots
def main(command: Callable[[], int | None]) -> int:
    """`command()`, with the errors a user can fix printed as one line and exit status 2, and
    Ctrl-C as exit status 130."""
    from reparam.train import CheckpointError
    from reparam.train.data import DataError

    try:
        return command() or 0
    except (FileNotFoundError, DataError, CheckpointError, UsageError, ValueError) as error:
        text = f"{type(error).__name__}: {error}".strip().splitlines()[0]
        print(f"error: {text}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def pyplot():
    """matplotlib.pyplot with the Agg backend (files only; no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
