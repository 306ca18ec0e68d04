# The two commands: `make demo` and `make test`. Both build .venv on first use.
# Prefect 1 needs Python 3.9-3.11 (pendulum 2 has no build for newer ones);
# the newest one on PATH is used unless PYTHON=/path/to/python is given.
PYTHON ?= $(shell for v in python3.11 python3.10 python3.9 python3; do \
	p=$$(command -v $$v) && $$p -c 'import sys; sys.exit(not (3, 9) <= sys.version_info[:2] <= (3, 11))' 2>/dev/null \
	&& echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean docs
.DEFAULT_GOAL := test

$(STAMP): requirements-dev.txt cookiecutter.json tools/pins.py
	@test -n "$(PYTHON)" || { echo "error: Python 3.9, 3.10 or 3.11 is required (Prefect 1); install one or pass PYTHON=/path/to/python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python tools/pins.py requirements > $(VENV)/pins.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -r $(VENV)/pins.txt
	$(BIN)/python -m pip check
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python tools/demo.py

test: $(STAMP)
	$(BIN)/python -m pytest

# Maintainers: resolve the newest working pin set per supported Python, rewrite
# cookiecutter.json's _pins, check _conda_forge against conda-forge's repodata (this
# stops with NOT CHECKED when conda-forge is out of reach), then prove every set with
# the whole suite.
.PHONY: refresh-pins
refresh-pins: $(STAMP)
	$(BIN)/python tools/refresh_pins.py
	$(MAKE) test

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The flows against plain Dask (README "Benchmarks"): a table on stdout, build/bench/results.json
# and docs/benchmark.png. BENCH_ARGS=--sweep measures the tuned defaults one at a time instead.
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# The README's flow diagrams: bake the defaults, draw each flow (needs Graphviz's dot).
docs: $(STAMP)
	rm -rf build/docs
	$(BIN)/cookiecutter --no-input --output-dir build/docs .
	cd build/docs/timeseries-pipeline && PYTHONPATH=. $(CURDIR)/$(BIN)/python -m timeseries_pipeline diagram --output-dir $(CURDIR)/docs

clean:
	rm -rf $(VENV) build .pytest_cache
