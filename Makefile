# Two entry points (see README): `make demo` (main job) and `make test` (the test suite).
# Each sets up its own virtual environment with pinned dependencies first.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: venv test test-full demo bench validate clean

$(VENV)/.installed: requirements.txt setup.py
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11) on PATH"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

venv: $(VENV)/.installed

test: venv
	$(PY) -m pytest -q tests

demo: venv
	$(PY) -m opensim_surrogate demo --out runs/demo

bench: venv
	$(PY) -m pytest benchmarks --benchmark-only -q
	$(PY) -m opensim_surrogate.bench_report benchmarks/RESULTS.md --readme README.md

clean:
	rm -rf $(VENV) runs .pytest_cache .benchmarks
