"""Shared fixtures: the real datasets beside the checkout, and scratch folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Session fixtures with models exported by the export stage (tiny_weights, tiny_onnx, dev_zoo) for every
# stage;
# stream_fixtures: a real RTSP server (rtsp_server) and numbered video frames for video tests.
pytest_plugins = ["helpers.model_fixtures", "helpers.stream_fixtures"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATASETS = Path(os.environ.get("LPR_SHARED_DATASETS", PROJECT_ROOT.parent / "shared" / "datasets"))


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """../shared/datasets (read-only real photographs); tests that need it skip when it is absent."""
    if not (SHARED_DATASETS / "README.md").is_file():
        pytest.skip(f"real datasets not present at {SHARED_DATASETS}")
    return SHARED_DATASETS


@pytest.fixture(scope="session", autouse=True)
def _session_registry(tmp_path_factory):
    """The checkpoint registry of this session, set before the session fixtures train their tiny
    models (a function-scoped setenv would come after them)."""
    before = os.environ.get("LPR_TRUSTED_CHECKPOINTS")
    os.environ["LPR_TRUSTED_CHECKPOINTS"] = str(tmp_path_factory.getbasetemp() / "trusted_checkpoints.sha256")
    yield
    if before is None:
        os.environ.pop("LPR_TRUSTED_CHECKPOINTS", None)
    else:
        os.environ["LPR_TRUSTED_CHECKPOINTS"] = before


@pytest.fixture(autouse=True)
def _runs_in_tmp(tmp_path_factory, monkeypatch):
    """Stage runs started by tests write under a temporary folder, never into the source tree."""
    monkeypatch.setenv("LPR_RUNS", str(tmp_path_factory.getbasetemp() / "runs"))
    # One registry of this session's own checkpoints, whatever paths.runs a test gives its stages.
    monkeypatch.setenv(
        "LPR_TRUSTED_CHECKPOINTS", str(tmp_path_factory.getbasetemp() / "trusted_checkpoints.sha256")
    )
