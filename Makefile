# Two commands on a fresh clone: `make run` and `make test`. Both create .venv first if needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench
# `make run`: a fresh work directory each time (a run never lands on an earlier one); ARGS adds
# flags to the training command (e.g. ARGS="--epochs 5").
WORKDIR ?= runs/demo/$(shell date -u +%Y%m%dT%H%M%SZ)
ARGS ?=

.PHONY: install run test lint bench results clean

# Python 3.11's own pip installs an editable project from pyproject.toml, so it is not upgraded
# first (5 s). Bytecode is compiled at install time: in one trial without it (--no-compile) the
# install took 14 s less and the tests 30 s more (each process compiled what it imported).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m experiments.vae_mnist train --quick --workdir $(WORKDIR) $(ARGS)

# -n 2: one pytest worker per core of the reference 2-core machine; --dist loadgroup balances
# single tests (tests/test_families.py alone is a third of the suite, so whole files would not
# balance) while keeping each family's Monte-Carlo tests, which share compiled code, together.
# --no-loadscope-reorder: hand out work in collection order, which tests/conftest.py sorts
# longest units first (xdist would sort groups by their number of tests).
# PYTHONDONTWRITEBYTECODE emptied: where the environment sets it (this project's machines do), each
# of the session's processes (two workers, the child runs) would compile the project's sources and
# pytest's rewritten test modules from scratch; with it empty, the first writes the bytecode and
# the others read it.
test: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n 2 --dist loadgroup --no-loadscope-reorder tests

# Every results markdown file that has a committed record, rendered from it (experiments/reports),
# and the numbers of benchmarks/README.md from benchmarks/records/ (benchmarks/report.py).
results: $(STAMP)
	$(BIN)/python -m experiments.reports
	$(BIN)/python -m benchmarks.report

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# Every benchmark: sampling, the VAE train step (its torch peers need torch: skipped with a
# message when torch does not import), and how the costs scale (benchmarks/README.md).
bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.sampling
	@if $(BIN)/python -c "import torch" 2>/dev/null; then \
		$(BIN)/python -m benchmarks.vae_train_step; \
	else \
		echo "skipping benchmarks.vae_train_step: torch is not importable (pip install -e '.[bench]')"; \
	fi
	$(BIN)/python -m benchmarks.scaling

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis runs
