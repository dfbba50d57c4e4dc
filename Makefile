# The README's commands. Each creates or reuses .venv and installs the project into it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo lab test test-python test-oldest check check-js js fmt serve venv clean bench coverage

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# The example notebooks, run on the embedded server: executed copies and HTML in demo-output/.
demo: $(STAMP)
	$(BIN)/falnb demo --notebook $(sort $(wildcard notebooks/*.ipynb))

# JupyterLab on the example notebooks (they run offline, on the embedded server).
lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

serve: $(STAMP)
	$(BIN)/falnb serve

check: $(STAMP)
	$(BIN)/ruff format --check falnb tests benchmarks
	$(BIN)/ruff check falnb tests benchmarks
	$(BIN)/mypy
	$(BIN)/mypy tests
	$(MAKE) --no-print-directory check-js

# The widget sources: biome (format + lint), and the shipped falnb/static must match js/src.
# Node is required, not optional: a check that skips itself passes on anything. `npm ci`
# installs exactly the lock (which holds every platform's biome binary) and never rewrites it.
check-js:
	@command -v node >/dev/null 2>&1 || { \
		echo "node not found: the JS checks need Node.js 18+ (biome, esbuild)" >&2; exit 1; }
	cd js && npm ci --silent --no-audit --no-fund && npm run --silent check

js:
	cd js && npm ci --silent --no-audit --no-fund && npm run --silent build

fmt: $(STAMP)
	$(BIN)/ruff format falnb tests benchmarks
	$(BIN)/ruff check --fix falnb tests benchmarks
	cd js && npm run --silent fmt

test: check
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Line and branch coverage of falnb by the suite less the browser layer (a report, not a gate).
coverage: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider --ignore=tests/browser --cov --cov-report=term $(PYTEST_ARGS)

# Another Python (the oldest supported, 3.10, and the newest, 3.12 and 3.13), without the
# browser layer, in its own venv: make test-python PY=python3.12 (or a path to an interpreter).
PY ?= python3.10
PY_VENV = .venv-$(notdir $(PY))
test-python:
	$(PY) -m venv $(PY_VENV)
	$(PY_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PY_VENV)/bin/python -m pip install --quiet -e '.[dev]'
	$(PY_VENV)/bin/python -m pytest -p no:cacheprovider --ignore=tests/browser $(PYTEST_ARGS)

# The oldest Python falnb supports (pyproject's requires-python): make test-oldest PY_OLDEST=...
PY_OLDEST ?= python3.10
test-oldest:
	$(MAKE) --no-print-directory test-python PY=$(PY_OLDEST)

# Every side-by-side figure (benchmarks/suite.py): writes benchmarks/results/latest.json and the
# README's table. BENCH_ARGS=--quick checks the plumbing in seconds; --no-browser skips Chromium.
bench: $(STAMP)
	$(BIN)/python benchmarks/suite.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .venv-oldest .venv-python3.* .pytest_cache .mypy_cache .ruff_cache build dist
