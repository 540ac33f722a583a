# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Both create (or reuse) .venv, install the project and enable DeGirum's ONNX/CPU agent; both are
# idempotent (the install re-runs only when pyproject.toml changes).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.lpr-installed
PYTEST_ARGS ?=

.PHONY: setup demo test clean-runs

$(STAMP): pyproject.toml runtime/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch/torchvision first, by exact version, so pip takes the pair that lies on this disk.
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e ".[train,runtime,evaluate,dev]"
	touch $(STAMP)

setup: $(STAMP)
	$(PY) -m runtime.degirum_setup

DEMO := runs/demo

# The main job on defaults that need nothing else present: a sample set the project makes itself.
demo: setup
	$(PY) -m data action=synth kind=scenes n=24 seed=0 out=$(DEMO)/scenes
	$(PY) -m data action=synth kind=crops n=48 seed=0 out=$(DEMO)/crops
	$(PY) -m data action=validate src=$(DEMO)/scenes
	$(PY) -m data action=stats src=$(DEMO)/scenes out=$(DEMO)/scenes/stats
	$(PY) -m data action=show src=$(DEMO)/scenes out=$(DEMO)/scenes show.tile=400 show.columns=4
	$(PY) -m data action=show src=$(DEMO)/crops out=$(DEMO)/crops show.tile=256 show.columns=4
	$(PY) -m evaluate report_dir=$(DEMO)/evaluate
	$(PY) -m runtime $(DEMO)/scenes/images --save $(DEMO)/annotated --json > $(DEMO)/plates.jsonl
	@echo "demo: synthetic data, contact sheets and stats under $(DEMO)/; evaluation of the shipped models:"
	@echo "      $(DEMO)/evaluate/report.md; plates read by the runtime: $(DEMO)/plates.jsonl, pictures: $(DEMO)/annotated/"

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

clean-runs:
	rm -rf runs
