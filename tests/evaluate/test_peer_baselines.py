"""Peers beside ours: PaddleOCR (rapidocr_onnxruntime) on real crops and photos, the one-line pick of
text spotting on constructed line lists, the report's side-by-side rows, compare, and EasyOCR's
skip path (its package and model files are not installed here)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from data.images import read_image
from data.manifest import read_manifest
from evaluate.__main__ import run
from evaluate.baselines import BaselineUnavailable, load_baselines
from evaluate.compare import baseline_column, compare_reports
from evaluate.spotting import FALLBACK, NO_LINES, OVERLAP, PickRules, any_line_reads, overlap, pick_line
from evaluate.text import Label, TextRules
from runtime.records import Plate
from stage.config import compose
from stage.errors import UsageError

HAVE_RAPIDOCR = importlib.util.find_spec("rapidocr_onnxruntime") is not None
needs_rapidocr = pytest.mark.skipif(
    not HAVE_RAPIDOCR, reason="rapidocr_onnxruntime not installed (pip install 'lpr-toolchain[eval-peers]')"
)
RULES = TextRules()
PLATE_BOX = (100.0, 100.0, 300.0, 160.0)


def line(text: str | None, box, score: float = 0.9) -> Plate:
    return Plate(box=tuple(float(v) for v in box), text=text, score=score)


# ------------------------------------------------------------------------------------- the one-line pick


def test_pick_prefers_the_plate_like_line_on_the_plate():
    city = line("MG-MONTES CLAROS", (110, 102, 290, 118), score=0.99)  # the city strip printed on the plate
    plate = line("GWT-2180", (112, 120, 288, 158), score=0.80)
    sign = line("AB12345", (400, 10, 500, 40), score=0.99)  # plate-like, but elsewhere in the image
    pick = pick_line([sign, city, plate], PLATE_BOX, RULES)
    assert pick.how == OVERLAP and pick.line is plate
    # without the labelled box the engine has two plate-like lines; the more confident one wins
    blind = pick_line([sign, city, plate], None, RULES)
    assert blind.how == FALLBACK and blind.line is sign


def test_pick_falls_back_to_the_most_plate_like_line_of_the_image():
    lines = [
        line("JAC", (10, 10, 40, 30), score=0.99),  # too short
        line("WWW.AUTOSHOP.COM", (10, 300, 200, 330), score=0.99),  # too long once normalised
        line("ABCDEF", (400, 300, 480, 330), score=0.99),  # right length, letters only
        line("QRS 4521", (500, 300, 600, 330), score=0.60),  # right length, letters and digits
    ]
    pick = pick_line(lines, PLATE_BOX, RULES)  # nothing overlaps the plate
    assert pick.how == FALLBACK and pick.line is lines[3]
    # none in range: the closest to the range wins (3 characters is 1 short, 13 is 5 too many)
    pick = pick_line(lines[:2], PLATE_BOX, RULES)
    assert pick.line is lines[0]
    # a narrower range changes which lines are plate-like
    pick = pick_line(lines, None, RULES, PickRules(min_chars=2, max_chars=3))
    assert pick.line is lines[0]


def test_pick_with_no_text_and_the_overlap_threshold():
    assert pick_line([], PLATE_BOX, RULES).how == NO_LINES
    assert pick_line([line(None, (110, 110, 200, 150)), line("-·-", (0, 0, 9, 9))], PLATE_BOX, RULES) == (
        pick_line([], PLATE_BOX, RULES)
    )
    # half of this line lies on the plate: on it at min_overlap 0.5, not at 0.6
    half = line("ABC1234", (250, 120, 350, 150))
    assert overlap(half.box, PLATE_BOX) == pytest.approx(0.5)
    assert pick_line([half], PLATE_BOX, RULES).how == OVERLAP
    assert pick_line([half], PLATE_BOX, RULES, PickRules(min_overlap=0.6)).how == FALLBACK
    # a line box larger than a tight plate box still counts as on the plate (smaller box's area)
    assert overlap((90, 90, 310, 170), PLATE_BOX) == 1.0 and overlap((0, 0, 10, 10), PLATE_BOX) == 0.0


def test_any_line_is_an_upper_bound_under_the_text_rules():
    lines = [line("AY0·9034", (538, 422, 684, 462)), line("JAC", (1164, 17, 1225, 41))]
    us_rules = TextRules(equivalences=("O0",))  # O and 0 compare equal
    labelled = Plate(box=(528.0, 412.0, 690.0, 464.0), text="AYO9034")
    assert not any_line_reads(lines, RULES.label(labelled), RULES)
    assert any_line_reads(lines, us_rules.label(labelled), us_rules)
    assert not any_line_reads(lines, Label("AYO9035"), RULES)
    pick = pick_line(lines, labelled.box, us_rules)
    assert pick.how == OVERLAP and pick.line is lines[0]


# ------------------------------------------------------------------------------- PaddleOCR on real data


@needs_rapidocr
@pytest.mark.shared_data
def test_paddleocr_reads_real_crops(shared_datasets):
    manifest = read_manifest(shared_datasets / "openalpr_br_crops" / "labels.jsonl")
    ready, skipped = load_baselines(["paddleocr"], {"paddleocr": {"threads": 1}})
    reader = ready["paddleocr"]
    d = reader.describe()
    assert not skipped and d["version"].startswith("rapidocr_onnxruntime 1.4")
    assert {m["name"] for m in d["models"].values()} >= {"ch_PP-OCRv4_det_infer", "ch_PP-OCRv4_rec_infer"}
    assert all(Path(m["path"]).is_file() and len(m["sha256"]) == 64 for m in d["models"].values())
    items = manifest.images[:6]
    read = 0
    for item in items:
        image = read_image(manifest.image_path(item))
        boxes = [p.box for p in item.plates]
        (plate,) = reader.read_plates(image, boxes, item.image)
        assert plate.box == boxes[0] and plate.text and 0.0 < plate.score <= 1.0
        read += RULES.is_read(RULES.label(item.plates[0]), plate.text)
    # clean, frontal Brazilian plate crops: PP-OCRv4 reads most of them exactly
    assert read >= len(items) // 2, f"PaddleOCR read {read}/{len(items)} crops"
    assert len(reader.timings()["ocr"]) == len(items) and reader.timings() == {}


def _evaluate(tmp_path: Path, name: str, *overrides: str) -> tuple[dict, dict]:
    cfg = compose("evaluate", [f"report_dir={tmp_path / name}", "threads=1", *overrides])
    files = run(cfg)
    return json.loads(files["json"].read_text()), files


@needs_rapidocr
@pytest.mark.shared_data
def test_report_puts_paddleocr_beside_ours(shared_datasets, tmp_path):
    report, files = _evaluate(
        tmp_path,
        "peers",
        f"src={shared_datasets / 'hr_zagreb' / 'labels.jsonl'}",
        "limit=2",
        "baselines=[paddleocr,easyocr]",
        "gallery.versus=paddleocr",
    )
    b = report["baselines"]["paddleocr"]
    n = report["ocr"]["n"]
    assert n == 2 and b["ocr"]["n"] == n and b["by_region"]["hr"]["ocr"]["n"] == n
    e2e, any_line, blind = b["end_to_end"], b["end_to_end_any_line"], b["end_to_end_blind"]
    assert e2e["n"] == any_line["n"] == blind["n"] == n
    assert e2e["read"] + e2e["misread"] + e2e["missed"] == n
    assert e2e["picked_by_overlap"] + e2e["picked_by_plate_like"] + e2e["missed"] == n
    # the any-line count is an upper bound of both one-line picks
    assert any_line["read"] >= e2e["read"] and any_line["read"] >= blind["read"]
    assert sum(v["ocr"]["n"] for v in b["by_size"].values()) == n
    for what in ("ocr", "end_to_end"):
        v = b["versus"][what]
        assert v["both"] + v["only_ours"] + v["only_baseline"] + v["neither"] == v["n"] == n
    assert b["speed"]["ocr_calls"] == n and b["speed"]["images_timed"] == 2 and b["speed"]["threads"] == 1
    assert report["baselines"]["easyocr"]["ocr"] is None
    # every text line it spotted is kept with its polygon, to re-score or replay
    lines = [json.loads(x) for x in files["predictions"].read_text().splitlines()[1:]]
    spotted = [p for rec in lines for p in rec["baseline_lines"]["paddleocr"]]
    assert spotted and all(len(p["quad"]) == 4 and p["text"] for p in spotted)

    md = files["md"].read_text()
    assert "| ours |" in md and f"| paddleocr | {100 * b['ocr']['exact']:.1f}% |" in md
    assert f"| paddleocr: one line | {100 * e2e['exact']:.1f}% |" in md
    assert f"| paddleocr: any line (upper bound) | {100 * any_line['exact']:.1f}% |" in md
    assert "| hr | ours |" in md and "| hr | paddleocr |" in md
    assert "| easyocr | - | - | - | skipped: " in md
    if b["versus"]["ocr"]["only_baseline"] or b["versus"]["end_to_end"]["only_baseline"]:
        assert "versus_paddleocr" in files and "![plates paddleocr reads and we do not]" in md

    # a replay re-scores the recorded lines into the same numbers, and compare takes both reports
    again, _ = _evaluate(
        tmp_path, "replayed", f"src={shared_datasets / 'hr_zagreb' / 'labels.jsonl'}", "limit=2",
        f"replay={files['predictions']}",
    )  # fmt: skip
    for key in ("ocr", "end_to_end", "end_to_end_any_line", "end_to_end_blind", "by_size", "versus"):
        assert again["baselines"]["paddleocr"][key] == b[key]
    cmp = compare_reports([files["json"], tmp_path / "replayed"], tmp_path / "cmp", names=["a", "b"])
    cmp_md = cmp["md"].read_text()
    assert "| metric | a | a/paddleocr | b | b/paddleocr |" in cmp_md
    row = next(r for r in cmp_md.splitlines() if r.startswith("| end-to-end any line"))
    assert row.count(f"{100 * any_line['exact']:.1f}%") == 2
    summary = json.loads(cmp["json"].read_text())
    assert summary["a/paddleocr"]["end_to_end"]["exact"] == e2e["exact"]


def test_compare_reads_schema_1_baseline_blocks():
    old = {"ocr": {"exact": 0.5, "cer": 0.1, "n": 2}, "by_region": {"br": {"exact": 0.5, "cer": 0.1, "n": 2}}}
    col = baseline_column(old)
    assert col["by_region"]["br"]["ocr"]["exact"] == 0.5 and col["end_to_end"] == {}


# ------------------------------------------------------------------------------ missing engines and extras


def test_missing_rapidocr_names_the_extra(monkeypatch, tmp_path):
    ready, skipped = load_baselines(["paddleocr"], {"paddleocr": {"model_dir": str(tmp_path)}})
    if HAVE_RAPIDOCR:  # installed, but the folder given holds no models: named, never fetched
        assert ready == {} and str(tmp_path / "ch_PP-OCRv4_det_infer.onnx") in skipped["paddleocr"]
        assert "eval-peers" in skipped["paddleocr"]
    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)  # as if the extra were not installed
    ready, skipped = load_baselines(["paddleocr"])
    assert ready == {} and "pip install 'lpr-toolchain[eval-peers]'" in skipped["paddleocr"]
    with pytest.raises(BaselineUnavailable, match=r"baseline paddleocr: .*eval-peers"):
        load_baselines(["paddleocr"], missing="error")


def test_easyocr_is_skipped_with_the_reason(tmp_path):
    if importlib.util.find_spec("easyocr") is not None:
        pytest.skip("easyocr is installed here: the not-installed path is not reachable")
    ready, skipped = load_baselines(["easyocr"], {"easyocr": {"model_dir": None}})
    assert ready == {} and "easyocr is not installed" in skipped["easyocr"]
    assert "model_dir is not set" in skipped["easyocr"]
    ready, skipped = load_baselines(["easyocr"], {"easyocr": {"model_dir": str(tmp_path)}})
    assert f"model files missing in {tmp_path}: craft_mlt_25k.pth, english_g2.pth" in skipped["easyocr"]
    (tmp_path / "craft_mlt_25k.pth").write_bytes(b"")
    (tmp_path / "latin_g2.pth").write_bytes(b"")
    _, skipped = load_baselines(
        ["easyocr"], {"easyocr": {"model_dir": str(tmp_path), "recognizer": "latin_g2", "lang": ["pt"]}}
    )
    assert "missing" not in skipped["easyocr"] and "easyocr is not installed" in skipped["easyocr"]


def test_baseline_missing_error_stops_the_run(tmp_path):
    cfg = compose(
        "evaluate",
        ["baselines=[easyocr]", "baseline_missing=error", f"report_dir={tmp_path / 'x'}", "sample.n=1"],
    )
    if importlib.util.find_spec("easyocr") is not None:
        pytest.skip("easyocr is installed here")
    with pytest.raises(UsageError, match="baseline easyocr: easyocr is not installed"):
        run(cfg)
    with pytest.raises(UsageError, match=r"gallery.versus=paddleocr is not among baselines=\[easyocr\]"):
        run(compose("evaluate", ["baselines=[easyocr]", "gallery.versus=paddleocr", "sample.n=1"]))
    assert not (tmp_path / "x" / "report.json").exists()
