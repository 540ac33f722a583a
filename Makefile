# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Both create (or reuse) .venv, install the project and enable DeGirum's ONNX/CPU agent; both are
# idempotent (the install re-runs only when pyproject.toml changes).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.lpr-installed
PYTEST_ARGS ?=

.PHONY: setup demo test bench clean-runs

$(STAMP): pyproject.toml runtime/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch/torchvision first, by exact version, so pip takes the pair that lies on this disk.
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e ".[train,runtime,evaluate,dev]"
	touch $(STAMP)

setup: $(STAMP)
	$(PY) -m runtime.degirum_setup

demo: setup
	$(PY) -m data action=demo

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

clean-runs:
	rm -rf runs
