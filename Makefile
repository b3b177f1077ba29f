# One-command setup: `make test` and `make demo` install everything they need.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_VERSION ?= 2.13.0

.PHONY: setup node python test test-ts test-py demo examples bench vectors clean

setup: node python

node: node_modules/.installed dist/.built

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

dist/.built: node_modules/.installed tsconfig.json $(shell find ts/src -name '*.ts' 2>/dev/null)
	npx tsc -p tsconfig.json
	@chmod +x dist/cli.js
	@touch $@

python: $(VENV)/.installed

# torch goes in first, pinned, and only when missing: a bare `torch` requirement
# with no torch installed would pull the CUDA build (GBs).
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -c 'import torch' 2>/dev/null || $(PIP) install -q torch==$(TORCH_VERSION)
	$(PIP) install -q -e '.[dev]'
	@touch $@

test: setup test-ts test-py

test-ts:
	npx vitest run

test-py:
	$(PY) -m pytest -q

demo: setup
	$(PY) examples/train_digits.py --compare

# The seed's experiments on digits: tables on stdout, plots in examples/out/.
examples: setup
	$(PIP) install -q -e '.[examples]'
	for name in budget_sweep anytime snapshot_ensemble range_test; do $(PY) examples/$$name.py || exit 1; done

# `make bench BENCH_ARGS=--quick` for a ~2.5 minute version; see docs/benchmarks.md.
BENCH_ARGS ?=
bench: setup
	$(PY) bench/run.py $(BENCH_ARGS)

# Re-run torch 2.13 over every conformance config (writes proto/vectors/torch/*.json).
vectors: python
	$(PY) proto/vectors/generate.py

clean:
	rm -rf dist node_modules $(VENV)
