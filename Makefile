# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Both create (or reuse) .venv, install the project and enable DeGirum's ONNX/CPU agent; both are
# idempotent (the install re-runs only when pyproject.toml changes).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.lpr-installed
PYTEST_ARGS ?=

.PHONY: setup system-deps demo test lint clean-runs

$(STAMP): pyproject.toml runtime/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch/torchvision first, by exact version, so pip takes the pair that lies on this disk.
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e ".[train,runtime,evaluate,eval-peers,dev]"
	touch $(STAMP)

setup: $(STAMP) system-deps
	$(PY) -m runtime.degirum_setup

# Debian packages for the stream tests' real RTSP server (GStreamer's, run by the system Python:
# tests/helpers/rtsp_server.py) and the event tests' real MQTT broker (mosquitto). Installed only where apt-get exists and we are root, only what is missing
# (a no-op once there); elsewhere, or when the install fails, the RTSP tests skip and say why.
SYSTEM_DEPS := gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good python3-gi mosquitto

system-deps:
	@command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] || exit 0; \
	missing=$$(for p in $(SYSTEM_DEPS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	[ -n "$$missing" ] || exit 0; \
	echo "system-deps: apt-get install $$missing (the RTSP server and MQTT broker for the tests)"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get install -y -qq --no-install-recommends $$missing >/dev/null 2>&1 \
		|| { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; } \
		|| echo "system-deps: warning: could not install $$missing; the RTSP and MQTT tests will skip"

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
	$(PY) -m data action=synth kind=video n=150 seed=0 out=$(DEMO)/video synth.video.pillar_frames=4
	$(PY) -m runtime $(DEMO)/video/video.mp4 --save $(DEMO)/video/annotated.mp4 --json > $(DEMO)/video/plates.jsonl
	@echo "demo: synthetic data, contact sheets and stats under $(DEMO)/; evaluation of the shipped models:"
	@echo "      $(DEMO)/evaluate/report.md; plates read by the runtime: $(DEMO)/plates.jsonl, pictures: $(DEMO)/annotated/"

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# Format, lint and type checks as configured in pyproject.toml (CI runs them before the tests).
lint: $(STAMP)
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .
	$(PY) -m mypy

clean-runs:
	rm -rf runs
