"""The compile option for an OCR HEF run in batches: ``tasks.plate_ocr.batch_size`` is written into
the bundle's DeGirum entry (DEVICE EagerBatchSize), where the runtime reads it."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from compile import bundle as bundle_mod
from compile.errors import BundleError
from stage.config import compose


def _cfg(overrides: list[str]) -> dict:
    return OmegaConf.to_container(compose("compile", overrides), resolve=True)


@pytest.mark.shared_data
def test_ocr_batch_size_is_recorded_in_the_zoo_entry(tiny_onnx, shared_datasets, tmp_path):
    small = ["calib.size=8", "calib.min_size=8", "target=hailo8l"]
    batched, plain = tmp_path / "batched", tmp_path / "plain"
    bundle_mod.build(tiny_onnx["plate_ocr"], batched, _cfg([*small, "tasks.plate_ocr.batch_size=4"]))
    bundle_mod.build(tiny_onnx["plate_ocr"], plain, _cfg(small))

    def device(folder):
        spec = json.loads((folder / "bundle.json").read_text())
        return json.loads((folder / spec["degirum"]["template"]).read_text())["DEVICE"][0]

    assert device(batched)["EagerBatchSize"] == 4
    assert "EagerBatchSize" not in device(plain)  # batch 1: the entry stays as PySDK's default


def test_batch_size_below_one_is_refused(tiny_onnx, tmp_path):
    with pytest.raises(BundleError, match="batch_size=0"):
        bundle_mod.build(
            tiny_onnx["plate_ocr"], tmp_path / "b", _cfg(["calib.size=8", "tasks.plate_ocr.batch_size=0"])
        )
