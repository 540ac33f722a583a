"""The evaluation end to end on a small hand-made dataset (real image files, a recorded run replayed):
report.json numbers computed by hand, bad data counted, files written, pictures linked, compare."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from evaluate.__main__ import route_dataset_path, run
from evaluate.baselines import load_baselines
from evaluate.compare import compare_reports
from stage.config import compose

ROOT = Path(__file__).resolve().parents[2]

L1 = [100, 100, 200, 140]  # img1 (br): ABC1234
L2 = [50, 50, 150, 110]  # img2 (us): a two-line plate AB12 / CD
L3 = [200, 150, 300, 190]  # img2 (us): OO0123 (O and 0 share a glyph)
CROP = [0, 0, 160, 80]  # crop1 (es): partial label 12*4AB*


def _scene(path: Path, plates: list[tuple[list[int], str]]) -> None:
    img = np.full((240, 320, 3), 70, np.uint8)
    for (x1, y1, x2, y2), text in plates:
        cv2.rectangle(img, (x1, y1), (x2, y2), (235, 235, 235), -1)
        for i, line in enumerate(reversed(text.split("/"))):  # "AB12/CD": a two-line plate
            cv2.putText(img, line, (x1 + 4, y2 - 8 - 22 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (20, 20, 20), 2)
    cv2.imwrite(str(path), img)


def make_dataset(root: Path) -> Path:
    """5 image lines (2 scenes, 1 crop, 1 corrupt file, 1 missing file), 2 malformed lines and one
    image file no line names."""
    images = root / "images"
    images.mkdir(parents=True)
    _scene(images / "img1.jpg", [(L1, "ABC1234")])
    _scene(images / "img2.jpg", [(L2, "AB12/CD"), (L3, "OO0123")])
    crop = np.full((80, 160, 3), 230, np.uint8)
    cv2.putText(crop, "12 4AB", (8, 55), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (10, 10, 10), 3)
    cv2.imwrite(str(images / "crop1.jpg"), crop)
    (images / "corrupt.jpg").write_bytes(b"this is not a JPEG")
    cv2.imwrite(str(images / "orphan.jpg"), crop)
    lines = [
        {
            "image": "images/img1.jpg",
            "width": 320,
            "height": 240,
            "region": "br",
            "plates": [{"box": L1, "text": "ABC1234"}],
        },
        {
            "image": "images/img2.jpg",
            "width": 320,
            "height": 240,
            "region": "us",
            "plates": [{"box": L2, "text": "AB12CD", "lines": 2}, {"box": L3, "text": "OO0123"}],
        },
        {
            "image": "images/crop1.jpg",
            "width": 160,
            "height": 80,
            "region": "es",
            "crop": True,
            "plates": [{"box": CROP, "text": None, "partial_text": "12*4AB*"}],
        },
        {
            "image": "images/corrupt.jpg",
            "width": 320,
            "height": 240,
            "region": "br",
            "plates": [{"box": L1, "text": "ZZZ999"}],
        },
        {
            "image": "images/missing.jpg",
            "width": 320,
            "height": 240,
            "region": "br",
            "plates": [{"box": L1, "text": "YYY888"}],
        },
    ]
    text = (
        "\n".join(json.dumps(x) for x in lines[:3])
        + "\n{not json\n"
        + json.dumps({"image": "images/x.jpg"})
        + "\n"
    )
    text += "\n".join(json.dumps(x) for x in lines[3:]) + "\n"
    manifest = root / "labels.jsonl"
    manifest.write_text(text)
    return manifest


def plate(box, text, det=None, score=None):
    return {"box": box, "text": text, "det_score": det, "score": score}


def recorded_run(
    path: Path, img1_text: str = "ABC1234", img2_text: str = "CDAB12", fp_text: str = "ZZ99"
) -> Path:
    """A predictions.jsonl as a predictor would have written it: img1's plate and a false positive,
    img2's two-line plate read in the wrong line order and its US plate missed; GT-crop readings."""
    header = {
        "adapter": {
            "name": "recorded",
            "backend": "onnx",
            "precision": "fp32",
            "threads": 2,
            "models": {
                "det": {"name": "plate_det", "path": "det.onnx", "sha256": "a" * 64, "input": [640, 640]},
                "ocr": {"name": "plate_ocr", "path": "ocr.onnx", "sha256": "b" * 64, "input": [128, 256]},
            },
        },
        "peak_rss_mb": 250.0,
    }
    recs = [
        {
            "image": "images/img1.jpg",
            "plates": [plate(L1, img1_text, 0.9, 0.8), plate([0, 0, 30, 20], fp_text, 0.4, 0.3)],
            "crop_reads": [plate(L1, "ABC1234", score=0.95)],
            "timings_ms": {"pre": [3.0], "det": [40.0], "ocr": [5.0, 7.0], "post": [1.0]},
            "total_ms": 60.0,
        },
        {
            "image": "images/img2.jpg",
            "plates": [plate(L2, img2_text, 0.8, 0.7)],
            "crop_reads": [plate(L2, "CD AB12", score=0.6), plate(L3, "000123", score=0.9)],
            "timings_ms": {"pre": [3.0], "det": [50.0], "ocr": [6.0], "post": [1.0]},
            "total_ms": 80.0,
        },
        {
            "image": "images/crop1.jpg",
            "plates": None,
            "crop_reads": [plate(CROP, "1234AB5", score=0.7)],
            "crop_timings_ms": {"ocr": [4.0]},
        },
    ]
    path.write_text("\n".join(json.dumps(x) for x in [{"header": header}] + recs) + "\n")
    return path


def evaluate(manifest: Path, replay: Path, out: Path, *overrides: str) -> dict:
    cfg = compose(
        "evaluate",
        [
            f"src={manifest}",
            f"replay={replay}",
            f"report_dir={out}",
            "text.equivalences=[O0]",
            # the fixture's masked characters are drawn in its images: wildcard scoring
            "text.masked=wildcard",
            "size_buckets=[0,64,128,100000]",
            *overrides,
        ],
    )
    files = run(cfg)
    assert files["json"].is_file()
    return json.loads(files["json"].read_text())


@pytest.fixture
def dataset(tmp_path) -> Path:
    return make_dataset(tmp_path / "data")


def test_report_numbers_by_hand(dataset, tmp_path):
    r = evaluate(dataset, recorded_run(tmp_path / "a.jsonl"), tmp_path / "A")

    # Detection on the 2 scenes, 3 labels: TP .9 (L1), TP .8 (L2), FP .4; L3 missed.
    # AP50 by hand (Ultralytics' 101-point trapezoid): precision 1 up to recall 2/3, 0 beyond:
    # 66 steps of 0.01 at 1, then (1 + 0)/2 * 0.01 = 0.665. Exact boxes: the same at every IoU.
    det = r["detection"]
    assert (det["tp"], det["fp"], det["fn"]) == (2, 1, 1)
    assert det["precision"] == det["recall"] == round(2 / 3, 4)
    assert det["ap50"] == det["ap50_95"] == 0.665
    assert det["fp_per_image"] == 0.5

    # OCR on GT crops: ABC1234 exact; AB12CD read CDAB12 (4 edits); OO0123 read 000123 (exact, O=0);
    # 12*4AB* read 1234AB5 (exact, masked positions accept anything). 3/4 exact, CER 4/26.
    ocr = r["ocr"]
    assert (ocr["n"], ocr["exact"], ocr["cer"], ocr["chars"]) == (4, 0.75, round(4 / 26, 4), 26)
    assert ocr["partial_labels"] == 1
    assert ocr["by_lines"]["2"] == {
        "exact": 0.0,
        "cer": round(4 / 6, 4),
        "n": 1,
        "chars": 6,
        "exact_count": 0,
    }
    assert ocr["by_lines"]["unknown"]["exact"] == 1.0 and ocr["by_lines"]["unknown"]["n"] == 3

    # End to end on the scenes: L1 read, L2 misread, L3 missed; wrong reads: the FP and the misread.
    e2e = r["end_to_end"]
    assert (e2e["n"], e2e["read"], e2e["misread"], e2e["missed"]) == (3, 1, 1, 1)
    assert e2e["exact"] == round(1 / 3, 4) and e2e["wrong_reads"] == 2 and e2e["wrong_per_image"] == 1.0

    br, us, es = r["by_region"]["br"], r["by_region"]["us"], r["by_region"]["es"]
    assert (
        br["detection"]["precision"] == 0.5
        and br["detection"]["recall"] == 1.0
        and br["end_to_end"]["exact"] == 1.0
    )
    assert (
        us["detection"]["recall"] == 0.5
        and us["ocr"]["exact"] == 0.5
        and us["end_to_end"]["wrong_per_image"] == 1.0
    )
    assert es["detection"] is None and es["ocr"]["exact"] == 1.0 and es["end_to_end"]["n"] == 0

    # widths: L1, L2, L3 are 100 px (64-128), the crop 160 px (>=128)
    assert r["by_size"]["64-128"]["plates"] == 3 and r["by_size"]["64-128"]["detection"]["recall"] == round(
        2 / 3, 4
    )
    assert r["by_size"][">=128"]["ocr"]["exact"] == 1.0 and r["by_size"][">=128"]["detection"]["n"] == 0
    # in the 640x640 detector input the 320x240 scenes are scaled by 2: the three plates are 200 px
    # wide there (128-240); the crop has no detector width
    assert r["by_input_size"] == {"128-240": {"plates": 3, "detection": {"recall": round(2 / 3, 4)}}}
    assert r["config"]["detector_input"] == [640, 640]
    assert "| 128-240 | 3 | 66.7% |" in (tmp_path / "A" / "report.md").read_text()

    sp = r["speed"]
    assert sp["det_ms_p50"] == 45.0 and sp["ocr_ms_p50"] == 6.0 and sp["crop_ocr_ms_p50"] == 4.0
    assert sp["pipeline_fps"] == round(1000 / 70, 2)
    assert (sp["backend"], sp["precision"], sp["threads"], sp["peak_rss_mb"]) == ("onnx", "fp32", 2, 250.0)
    assert r["models"]["det"]["sha256"] == "a" * 64


def test_predictions_without_the_detector_input_give_no_input_breakdown(dataset, tmp_path):
    recorded = recorded_run(tmp_path / "a.jsonl")
    lines = recorded.read_text().splitlines()
    header = json.loads(lines[0])
    del header["header"]["adapter"]["models"]["det"]["input"]  # as files written before it was recorded
    recorded.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    r = evaluate(dataset, recorded, tmp_path / "A")
    assert r["by_input_size"] == {} and r["by_size"]["64-128"]["plates"] == 3
    assert "detector's input" not in (tmp_path / "A" / "report.md").read_text()


def test_bad_data_is_reported_and_counted_not_fatal(dataset, tmp_path):
    r = evaluate(dataset, recorded_run(tmp_path / "a.jsonl"), tmp_path / "A")
    ds = r["dataset"]
    assert (ds["images"], ds["evaluated_images"], ds["plates"]) == (5, 3, 6)
    p = ds["problems"]
    assert (p["unreadable_images"], p["malformed_lines"], p["unlabelled_images"]) == (2, 2, 1)
    issues = (tmp_path / "A" / "issues.txt").read_text()
    # each problem names the manifest file and line (or the orphan image file)
    assert f"{dataset}:4: malformed_json" in issues and f"{dataset}:5: malformed_record" in issues
    assert f"{dataset}:6: unreadable_image" in issues and "corrupt.jpg" in issues
    assert f"{dataset}:7: unreadable_image" in issues and "missing.jpg" in issues
    assert "orphan.jpg: unlabelled_image" in issues
    # the unreadable images' plates are in no metric
    assert r["ocr"]["n"] == 4 and r["detection"]["images"] == 2


def test_report_files_and_pictures(dataset, tmp_path):
    out = tmp_path / "A"
    r = evaluate(dataset, recorded_run(tmp_path / "a.jsonl"), out)
    for key in ("detection", "ocr", "end_to_end", "speed", "by_region", "models", "dataset"):
        assert key in r
    md = (out / "report.md").read_text()
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert set(linked) == {
        "pr_curve.png",
        "confusion.png",
        "speed.png",
        "failures_ocr.png",
        "failures_end_to_end.png",
        "false_positives.png",
    }
    for name in linked:
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert "| 66.7% | 66.7% |" in md  # detection P and R as a person reads them
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert "header" in json.loads(lines[0]) and len(lines) == 1 + 5  # every manifest image, evaluated or not
    errors = [json.loads(x)["error"] for x in lines[1:]]
    assert sum(e is not None for e in errors) == 2


def test_replaying_a_report_reproduces_it_and_thresholds_rescore(dataset, tmp_path):
    a = evaluate(dataset, recorded_run(tmp_path / "a.jsonl"), tmp_path / "A")
    again = evaluate(dataset, tmp_path / "A" / "predictions.jsonl", tmp_path / "A2")
    for key in ("detection", "ocr", "end_to_end", "by_region", "by_size"):
        assert again[key] == a[key]
    assert again["speed"]["pipeline_fps"] == a["speed"]["pipeline_fps"]
    assert again["speed"]["peak_rss_mb"] == 250.0  # the recorded predictor's, not the replaying process's
    # at an operating threshold of 0.5 the false positive (.4) is gone; AP is unchanged
    hi = evaluate(dataset, tmp_path / "a.jsonl", tmp_path / "B", "match.operating_conf=0.5")
    assert hi["detection"]["precision"] == 1.0 and hi["detection"]["fp_per_image"] == 0.0
    assert hi["detection"]["ap50"] == a["detection"]["ap50"]
    assert hi["end_to_end"]["wrong_per_image"] == 0.5


def test_without_equivalence_the_us_plate_fails(dataset, tmp_path):
    r = evaluate(dataset, recorded_run(tmp_path / "a.jsonl"), tmp_path / "A", "text.equivalences=[]")
    assert r["ocr"]["exact"] == 0.5 and r["ocr"]["cer"] == round(6 / 26, 4)  # 2 more edits: OO read as 00


def test_compare_two_reports(dataset, tmp_path):
    evaluate(dataset, recorded_run(tmp_path / "a.jsonl"), tmp_path / "fp32")
    evaluate(
        dataset,
        recorded_run(tmp_path / "b.jsonl", img1_text="ABC1284", img2_text="AB12CD"),
        tmp_path / "int8",
    )
    cfg = compose(
        "evaluate",
        [
            "action=compare",
            f"reports=[{tmp_path / 'fp32'}/report.json,{tmp_path / 'int8'}/report.json]",
            f"report_dir={tmp_path / 'cmp'}",
        ],
    )
    files = run(cfg)
    md = files["md"].read_text()
    assert "| metric | fp32 | int8 |" in md
    # run b reads L2 and misreads L1: the same 1/3 end to end, by different plates; by region it differs
    assert "| end-to-end read | 33.3% | 33.3% |" in md
    assert "| e2e read [br] | 100.0% | 0.0% |" in md and "| e2e read [us] | 0.0% | 50.0% |" in md
    assert "![comparison](compare.png)" in md and files["png"].read_bytes()[:4] == b"\x89PNG"
    summary = json.loads(files["json"].read_text())
    assert summary["fp32"]["detection"]["ap50"] == summary["int8"]["detection"]["ap50"] == 0.665
    with pytest.raises(ValueError, match="two or more"):
        compare_reports([tmp_path / "fp32"], tmp_path / "cmp1")


def test_malformed_recorded_predictions_are_counted(dataset, tmp_path):
    recorded = recorded_run(tmp_path / "a.jsonl")
    recorded.write_text(recorded.read_text() + "{broken\n" + json.dumps({"plates": []}) + "\n")
    r = evaluate(dataset, recorded, tmp_path / "A")
    assert r["dataset"]["problems"]["malformed_predictions"] == 2 and r["ocr"]["n"] == 4
    issues = (tmp_path / "A" / "issues.txt").read_text()
    assert (
        f"{recorded}:5: malformed_prediction" in issues
        and f"{recorded}:6: malformed_prediction: missing 'image'" in issues
    )


def test_replay_of_another_dataset_is_counted_then_stops(dataset, tmp_path):
    other = tmp_path / "other.jsonl"
    other.write_text(
        json.dumps({"header": {}}) + "\n" + json.dumps({"image": "images/elsewhere.jpg", "plates": []}) + "\n"
    )
    cfg = compose("evaluate", [f"src={dataset}", f"replay={other}", f"report_dir={tmp_path / 'X'}"])
    with pytest.raises(RuntimeError, match="failed on each of the first 3 images"):
        run(cfg)


def test_baselines_skip_cleanly_when_not_installed(dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no tesseract on this PATH
    # paddleocr and easyocr: tests/evaluate/test_peer_baselines.py
    ready, skipped = load_baselines(["tesseract"])
    assert ready == {} and "not on PATH" in skipped["tesseract"]
    with pytest.raises(ValueError, match="unknown baseline"):
        load_baselines(["nope"])
    r = evaluate(dataset, recorded_run(tmp_path / "a.jsonl"), tmp_path / "A", "baselines=[tesseract]")
    assert r["baselines"]["tesseract"]["ocr"] is None
    assert "not on PATH" in r["baselines"]["tesseract"]["describe"]["skipped"]
    assert "skipped: tesseract is not on PATH" in (tmp_path / "A" / "report.md").read_text()


def test_dataset_path_on_the_command_line(dataset, tmp_path):
    assert route_dataset_path(["dataset=uc3m_lp", f"dataset={dataset}", "x=1"]) == [
        "dataset=uc3m_lp",
        f"src={dataset}",
        "x=1",
    ]
    env = {**os.environ, "LPR_RUNS": str(tmp_path / "runs")}
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "evaluate",
            f"dataset={dataset}",
            f"replay={recorded_run(tmp_path / 'a.jsonl')}",
            "text.equivalences=[O0]",
            "text.masked=wildcard",
            "gallery=0",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert "OCR (GT crops): exact 75.0% CER 15.4% n=4" in res.stdout
    report = Path(re.search(r"json:\s+(\S+)", res.stdout).group(1))
    assert report.is_relative_to(tmp_path / "runs" / "evaluate")
    # no dataset at all: the shipped models on a synthetic sample set the stage makes itself
    res = subprocess.run(
        [sys.executable, "-m", "evaluate", "sample.n=6", "gallery=0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert "no dataset given: evaluating on 6 synthetic scenes" in res.stdout
    sample_report = json.loads(Path(re.search(r"json:\s+(\S+)", res.stdout).group(1)).read_text())
    assert sample_report["dataset"]["images"] == 6 and sample_report["dataset"]["plates"] > 0


# --------------------------------------------------------------------------------------------- real data


@pytest.mark.shared_data
def test_oracle_on_real_scenes_with_partial_labels_is_perfect(shared_datasets, tmp_path):
    """The labels as predictions must score perfectly on real data: checks the plumbing (image
    paths, crops, partial labels, matching) where it will be used."""
    cfg = compose(
        "evaluate",
        ["dataset=uc3m_lp", "adapter=oracle", "limit=25", f"report_dir={tmp_path / 'o'}", "gallery=0"],
    )
    files = run(cfg)
    r = json.loads(files["json"].read_text())
    assert r["dataset"]["partial_labels"] > 0 and r["dataset"]["evaluated_images"] == 25
    assert r["detection"]["recall"] == 1.0 and r["detection"]["ap50"] == 0.995
    assert r["ocr"]["exact"] == 1.0 and r["ocr"]["cer"] == 0.0 and r["end_to_end"]["exact"] == 1.0
    assert r["end_to_end"]["wrong_per_image"] == 0.0
    # and a replay of that run is the same report
    again = evaluate(
        shared_datasets / "uc3m_lp" / "labels.jsonl",
        files["predictions"],
        tmp_path / "r",
        "limit=25",
        "size_buckets=[0,32,64,96,128,192,256,100000]",
        "text.equivalences=[]",
        "text.masked=visible",
    )
    for key in ("detection", "ocr", "end_to_end", "by_region", "by_size"):
        assert again[key] == r[key]


@pytest.mark.shared_data
def test_dataset_config_brings_its_equivalences(shared_datasets, tmp_path):
    cfg = compose(
        "evaluate",
        ["dataset=openalpr_us_crops", "adapter=oracle", "limit=10", f"report_dir={tmp_path / 'u'}"],
    )
    assert list(cfg.text.equivalences) == ["O0"]
    r = json.loads(run(cfg)["json"].read_text())
    assert (
        r["config"]["equivalences"] == ["O0"] and r["ocr"]["exact"] == 1.0 and r["detection"]["ap50"] is None
    )
    assert r["dataset"]["crop_images"] == 10 and r["end_to_end"]["n"] == 0


@pytest.mark.shared_data
@pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract not installed (apt-get install tesseract-ocr)"
)
def test_tesseract_baseline_reads_real_crops(shared_datasets, tmp_path):
    ready, skipped = load_baselines(["tesseract"])
    reader = ready["tesseract"]
    assert not skipped and reader.describe()["version"].startswith("tesseract")
    img = np.full((80, 240, 3), 255, np.uint8)
    cv2.putText(img, "ABC123", (10, 58), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (0, 0, 0), 4)
    box = (0.0, 0.0, 240.0, 80.0)
    (p,) = reader.read_plates(img, [box], "rendered")
    assert p.box == box and p.text and set(p.text) <= set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    assert len(reader.timings()["ocr"]) == 1
    cfg = compose(
        "evaluate",
        [
            "dataset=openalpr_us_crops",
            "adapter=oracle",
            "limit=8",
            "baselines=[tesseract]",
            f"report_dir={tmp_path / 't'}",
        ],
    )
    r = json.loads(run(cfg)["json"].read_text())
    b = r["baselines"]["tesseract"]
    assert (
        b["ocr"]["n"] == 8
        and 0.0 <= b["ocr"]["exact"] <= 1.0
        and b["describe"]["version"].startswith("tesseract")
    )
    md = (tmp_path / "t" / "report.md").read_text()
    assert "| tesseract |" in md and "| ours |" in md


def test_unlabelled_images_only_beside_the_manifest(dataset, tmp_path):
    from data.manifest import read_manifest
    from evaluate.runner import unlabelled_images

    found = unlabelled_images(read_manifest(dataset))
    assert [Path(i.file).name for i in found] == ["orphan.jpg"] and found[0].kind == "unlabelled_image"
    # a subset manifest kept elsewhere names images of a shared folder on purpose: not checked
    subset = tmp_path / "runs" / "subset" / "labels.jsonl"
    subset.parent.mkdir(parents=True)
    subset.write_text(
        json.dumps({"image": "../../data/images/img1.jpg", "width": 320, "height": 240, "plates": []}) + "\n"
    )
    kept = read_manifest(subset, roots=[tmp_path / "data"])  # its images lie in the shared folder
    assert len(kept.images) == 1 and unlabelled_images(kept) == []


@pytest.mark.shared_data
def test_splits_evaluates_only_the_held_out_images(shared_datasets, tmp_path):
    """data's split by text, then evaluate splits=[val,test]: only the held-out plates are scored."""
    from data.manifest import read_manifest, rebase, write_manifest
    from data.split import assign_splits

    source = read_manifest(shared_datasets / "openalpr_us_crops" / "labels.jsonl")
    items = rebase(source, tmp_path)[:60]
    counts = assign_splits(items, {"train": 0.6, "val": 0.2, "test": 0.2})
    manifest = write_manifest(tmp_path / "labels.jsonl", items)
    cfg = compose(
        "evaluate",
        [
            f"src={manifest}",
            "adapter=oracle",
            "splits=[val,test]",
            f"report_dir={tmp_path / 'h'}",
            "gallery=0",
        ],
    )
    r = json.loads(run(cfg)["json"].read_text())
    assert r["dataset"]["crop_images"] == counts["val"] + counts["test"] < 60
    assert r["ocr"]["n"] == counts["val"] + counts["test"]
    cfg = compose(
        "evaluate", [f"src={manifest}", "adapter=oracle", "splits=[nope]", f"report_dir={tmp_path / 'x'}"]
    )
    with pytest.raises(ValueError, match="no image in splits"):
        run(cfg)


def test_region_rules_correct_readings_as_deployed(shared_datasets, tmp_path):
    """region=br: the runtime reads with the Brazilian patterns, as `python -m runtime --region br`
    would; the report says so, and a text the rules could correct now fits a pattern."""
    from runtime.rules import load_rules

    rules = load_rules("br")
    reports, markdown = {}, {}
    for region in (None, "br"):
        cfg = compose(
            "evaluate",
            [
                "dataset=openalpr_br_endtoend",
                "limit=12",
                "gallery=0",
                "end_to_end=false",
                f"report_dir={tmp_path / str(region)}",
            ]
            + ([f"region={region}", "+pipeline.zoom_out=false"] if region else []),
        )
        files = run(cfg)
        reports[region] = (
            json.loads(files["json"].read_text()),
            [json.loads(line) for line in files["predictions"].read_text().splitlines()[1:]],
        )
        markdown[region] = files["md"].read_text()
    assert (
        reports[None][0]["predictor"].get("region") is None
        and reports["br"][0]["predictor"]["region"] == "br"
    )
    # Every pipeline setting is in the report, and the ones given that differ from the defaults
    # are named, so a report stays readable when a default changes.
    plain_settings, br_settings = (reports[k][0]["predictor"] for k in (None, "br"))
    assert (
        plain_settings["pipeline"]["zoom_out"] is True
        and "zoom_out" not in plain_settings["pipeline_changed"]
    )
    assert br_settings["pipeline_changed"]["zoom_out"] is False
    assert br_settings["pipeline_changed"]["region"] == "br"
    assert "zoomed-out look" in markdown[None] and "`zoom_out=False`" in markdown["br"]

    def texts(preds):
        return [p["text"] for rec in preds for p in rec.get("crop_reads", []) if p.get("text")]

    plain, ruled = texts(reports[None][1]), texts(reports["br"][1])
    assert len(plain) == len(ruled) > 0
    # The rules only ever move a reading onto a pattern (12 shipped-model reads: 3 moved, 8 -> 11 fit).
    assert all(rules.matches(r) for p, r in zip(plain, ruled, strict=True) if p != r)
    assert sum(map(rules.matches, ruled)) >= sum(map(rules.matches, plain))
    assert reports["br"][0]["ocr"]["exact"] >= reports[None][0]["ocr"]["exact"]
    # Each ruled reading keeps the model's raw_text and names the format's region; the report
    # counts the rules' changes in both directions.
    reads = [p for rec in reports["br"][1] for p in rec.get("crop_reads", []) if p.get("text")]
    assert [p["raw_text"] for p in reads] == plain
    assert {p["region_match"] for p in reads} <= {"br", "none"}
    changes, ocr = reports["br"][0]["ocr"]["region_rules"], reports["br"][0]["ocr"]
    assert reports[None][0]["ocr"]["region_rules"] is None
    assert changes["changed"] == sum(p != r for p, r in zip(plain, ruled, strict=True))
    gained = changes["wrong_to_right"] - changes["right_to_wrong"]
    assert round(ocr["exact"] * ocr["n"]) - round(reports[None][0]["ocr"]["exact"] * ocr["n"]) == gained


def test_false_positives_that_read_as_a_plate_of_the_region_are_counted(dataset, tmp_path):
    """img1 is Brazilian: its false positive read as QRS4567 fits Brazil's grey plate (another car's
    plate the labels leave out, most likely); read as ZZ99 it fits nothing."""
    other_car = evaluate(dataset, recorded_run(tmp_path / "a.jsonl", fp_text="QRS4567"), tmp_path / "A")
    assert other_car["detection"]["fp"] == 1 and other_car["detection"]["fp_plate_like"] == 1
    assert "1 of the 1 read as a whole plate" in (tmp_path / "A" / "report.md").read_text()
    noise = evaluate(dataset, recorded_run(tmp_path / "b.jsonl"), tmp_path / "B")
    assert noise["detection"]["fp"] == 1 and noise["detection"]["fp_plate_like"] == 0
    assert "read as a whole plate" not in (tmp_path / "B" / "report.md").read_text()


def test_compare_names_the_pipeline_settings_two_runs_differ_in(shared_datasets, tmp_path):
    """Two runtime reports of one set, the second with the zoomed-out look off: the comparison says
    which setting differs, so a default that changed between versions is not missed."""
    paths = []
    for name, extra in (("on", []), ("off", ["+pipeline.zoom_out=false"])):
        cfg = compose(
            "evaluate",
            [
                "dataset=openalpr_br_endtoend",
                "limit=3",
                "gallery=0",
                "end_to_end=false",
                f"report_dir={tmp_path / name}",
            ]
            + extra,
        )
        paths.append(run(cfg)["json"])
    cmp = compose(
        "evaluate", ["action=compare", f"reports=[{paths[0]},{paths[1]}]", f"report_dir={tmp_path / 'cmp'}"]
    )
    md = run(cmp)["md"].read_text()
    note = next(line for line in md.splitlines() if "pipeline settings differ" in line)
    assert "`zoom_out` on True, off False" in note
    assert "threads" not in note  # only what differs is named
