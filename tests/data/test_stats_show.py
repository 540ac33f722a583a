"""Dataset statistics and contact sheets on real data."""

from __future__ import annotations

import json

import cv2
import pytest
from helpers.data_scenes import run_data

from data.manifest import read_manifest


@pytest.mark.shared_data
def test_stats_and_contact_sheet_on_real_data(tmp_path, shared_datasets):
    out = tmp_path / "stats"
    proc = run_data("action=stats", f"src={shared_datasets / 'uc3m_lp'}", f"out={out}")
    assert proc.returncode == 0, proc.stderr
    stats = json.loads((out / "stats.json").read_text())
    manifest = read_manifest(shared_datasets / "uc3m_lp")
    assert stats["images"] == len(manifest.images)
    assert stats["plates"] == sum(len(i.plates) for i in manifest.images)
    assert stats["char_boxes"] == sum(len(p.chars) for _, p in manifest.plates)
    assert sum(stats["plate_width_buckets"].values()) == stats["plates"]
    assert "plates_with_char_boxes" in proc.stdout
    plot = cv2.imread(str(out / "stats.png"))
    assert plot is not None and plot.shape[0] > 300
    sheet_dir = tmp_path / "show"
    proc = run_data(
        "action=show",
        f"src={shared_datasets / 'uc3m_lp'}",
        f"out={sheet_dir}",
        "show.n=12",
        "show.columns=4",
        "show.tile=200",
    )
    assert proc.returncode == 0, proc.stderr
    sheet = cv2.imread(str(sheet_dir / "contact_sheet.png"))
    assert sheet.shape == (3 * 200, 4 * 200, 3)
    assert sheet.std() > 10  # real pictures were drawn, not a blank canvas
