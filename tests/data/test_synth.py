"""The synthetic plate engine (data/synth): exact character boxes, shapes, determinism, CLI."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from data.images import read_image
from data.manifest import read_manifest
from data.synth import generate, load_style, render, render_plate, style_names
from data.synth.style import style_from_dict
from data.validate import validate

PROJECT_ROOT = Path(__file__).resolve().parents[2]
OCR_H, OCR_W = 128, 256  # conf/model/plate_ocr.yaml input size


def _inside(box, width, height, tol=0.01):
    x1, y1, x2, y2 = box
    return -tol <= x1 < x2 <= width + tol and -tol <= y1 < y2 <= height + tol


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_every_required_style_ships():
    names = set(style_names())
    assert {"eu", "es", "br_old", "mercosur", "us", "cn", "moto"} <= names
    assert load_style("moto").lines == 2
    assert all(load_style(n).lines == 1 for n in names - {"moto"})


@pytest.mark.parametrize("name", style_names())
def test_char_boxes_spell_the_text_in_reading_order(name):
    style = load_style(name)
    for seed in range(12):
        rp = render(name, None, np.random.default_rng(seed), px_per_mm=float(0.3 + 0.1 * seed))
        plate = rp.plate
        h, w = rp.image.shape[:2]
        assert plate.text and all(c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" for c in plate.text)
        assert "".join(c.char for c in plate.chars) == plate.text
        assert plate.lines == style.lines
        assert [c.line for c in plate.chars] == sorted(c.line for c in plate.chars)
        for line in range(plate.lines):
            on_line = [c for c in plate.chars if c.line == line]
            assert on_line, f"{name}: line {line} has no characters"
            xs = [c.box[0] for c in on_line]
            assert xs == sorted(xs), f"{name}: characters of line {line} are not left to right"
            # each box is the ink of its glyph: the image differs from the plate colour inside it
            for c in on_line:
                assert _inside(c.box, w, h), f"{name}: {c.char} box {c.box} outside {w}x{h}"
        if plate.lines == 2:
            top = max(c.box[3] for c in plate.chars if c.line == 0)
            bottom = min(c.box[1] for c in plate.chars if c.line == 1)
            assert top <= bottom, f"{name}: the two lines overlap"


def test_char_box_is_the_glyph_ink():
    rp = render("es", "1234BCD", np.random.default_rng(0), px_per_mm=1.0)
    gray = rp.image.min(axis=2).astype(np.int32)  # black ink on a white plate
    for c in rp.plate.chars:
        x1, y1, x2, y2 = (int(v) for v in c.box)
        inside = gray[y1:y2, x1:x2]
        assert inside.min() < 100, f"{c.char}: no ink inside its box"
        # the rows/columns just outside the box hold no ink of this glyph (tight box)
        ring = [
            gray[y1:y2, max(0, x1 - 1)],
            gray[y1:y2, min(gray.shape[1] - 1, x2)],
            gray[max(0, y1 - 1), x1:x2],
            gray[min(gray.shape[0] - 1, y2), x1:x2],
        ]
        assert all(r.min() > 60 for r in ring), f"{c.char}: ink just outside box {c.box}"


def test_render_plate_given_text_and_record():
    image, plate = render_plate("moto", "ABC1234", np.random.default_rng(1))
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
    assert plate.box == (0.0, 0.0, float(image.shape[1]), float(image.shape[0]))
    assert plate.text == "ABC1234" and plate.lines == 2
    assert "".join(c.char for c in plate.chars if c.line == 0) == "ABC"
    assert plate.extra["style"] == "moto"
    _, es = render_plate(load_style("es"), "9876XYZ", np.random.default_rng(2))
    assert "".join(c.char for c in es.chars) == "9876XYZ"
    with pytest.raises(ValueError, match="0-9A-Z"):
        render_plate("es", "12-34", np.random.default_rng(0))


def test_bad_style_names_the_problem():
    good = {
        "name": "x",
        "size_mm": [300, 100],
        "patterns": ["LL DD"],
        "text": {"height_mm": 60, "y_mm": 50},
        "fonts": ["dejavu-sans:Bold"],
        "variants": [{"background": "#ffffff", "text": "#000000"}],
    }
    assert style_from_dict(good, "x.yaml").patterns[0].n_chars == 4
    with pytest.raises(ValueError, match=r"x\.yaml.*unknown keys"):
        style_from_dict({**good, "colour": 1}, "x.yaml")
    with pytest.raises(ValueError, match=r"x\.yaml: patterns\[0\].*unknown symbol"):
        style_from_dict({**good, "patterns": ["LL?D"]}, "x.yaml")
    with pytest.raises(ValueError, match="#rrggbb"):
        style_from_dict({**good, "variants": [{"background": "white", "text": "#000000"}]}, "x.yaml")
    with pytest.raises(ValueError, match="unknown plate style"):
        load_style("atlantis")


def test_crops_are_the_ocr_input(tmp_path):
    path = generate("crops", 24, 5, tmp_path / "c", background_manifests=[], progress=False)
    manifest = read_manifest(path)
    assert len(manifest) == 24 and not manifest.issues
    assert validate(manifest, progress=False) == []
    styles = set()
    for item in manifest.images:
        image = read_image(manifest.image_path(item))
        assert image.shape == (OCR_H, OCR_W, 3)
        assert (item.width, item.height) == (OCR_W, OCR_H)
        assert item.extra["synthetic"] is True and item.extra["crop"] is True
        styles.add(item.extra["style"])
        (plate,) = item.plates
        assert plate.box == (0.0, 0.0, float(OCR_W), float(OCR_H))
        assert plate.lines in (1, 2)
        read = "".join(c.char for c in plate.chars)
        hidden = plate.extra.get("hidden_chars", 0)
        assert len(read) == len(plate.text) - hidden
        it = iter(plate.text)
        assert all(ch in it for ch in read), f"{read!r} is not {plate.text!r} in order"
        for c in plate.chars:
            assert _inside(c.box, OCR_W, OCR_H)
    assert len(styles) >= 3


def test_a_crops_frame_holds_every_cut_the_runtime_can_take():
    """An OCR crop's frame is the plate's reach: every jittered, padded cut of it lies inside."""
    from data.exporters import jitter_box
    from data.synth.dataset import _reach_margins
    from runtime.geometry import plate_crop_box

    rng = np.random.default_rng(0)
    for _ in range(2000):
        x1, y1 = rng.uniform(-20, 600, 2)
        box = (x1, y1, x1 + rng.uniform(1, 300), y1 + rng.uniform(1, 100))
        jitter, pad_x, pad_y = rng.uniform(0, 0.3), rng.uniform(0, 0.3), rng.uniform(0, 0.3)
        gx, gy = _reach_margins(box[2] - box[0], box[3] - box[1], jitter, pad_x, pad_y)
        for _ in range(5):
            region = plate_crop_box(jitter_box(box, jitter, rng), 10**6, 10**6, pad_x, pad_y)
            if region is not None:
                assert box[0] - gx <= region[0] and box[1] - gy <= region[1]
                assert region[2] <= box[2] + gx and region[3] <= box[3] + gy


def test_scenes_boxes_inside_and_plates_apart(tmp_path):
    path = generate("scenes", 6, 2, tmp_path / "s", background_manifests=[], progress=False)
    manifest = read_manifest(path)
    assert validate(manifest, progress=False) == []
    n_plates = 0
    for item in manifest.images:
        image = read_image(manifest.image_path(item))
        assert image.shape[:2] == (item.height, item.width)
        assert item.extra["synthetic"] is True and "crop" not in item.extra
        boxes = [p.box for p in item.plates]
        n_plates += len(boxes)
        for i, p in enumerate(item.plates):
            assert _inside(p.box, item.width, item.height)
            for c in p.chars:
                assert _inside(c.box, item.width, item.height)
                assert p.box[0] - 1 <= c.box[0] and c.box[2] <= p.box[2] + 1
            for q in boxes[i + 1 :]:
                overlap = min(p.box[2], q[2]) > max(p.box[0], q[0]) and min(p.box[3], q[3]) > max(
                    p.box[1], q[1]
                )
                assert not overlap, "two plates overlap"
    assert n_plates > 0


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = _digest(generate("crops", 8, 11, tmp_path / "a", background_manifests=[], progress=False).parent)
    b = _digest(generate("crops", 8, 11, tmp_path / "b", background_manifests=[], progress=False).parent)
    c = _digest(generate("crops", 8, 12, tmp_path / "c", background_manifests=[], progress=False).parent)
    assert a == b
    assert a["labels.jsonl"] != c["labels.jsonl"]
    assert sum(a[k] != c[k] for k in a if k.startswith("images/")) == 8
    s1 = _digest(generate("scenes", 4, 3, tmp_path / "s1", background_manifests=[], progress=False).parent)
    s2 = _digest(
        generate("scenes", 4, 3, tmp_path / "s2", background_manifests=[], progress=False, workers=2).parent
    )
    assert s1 == s2, "the number of workers must not change the output"


def test_a_set_made_in_parts_is_the_set_made_at_once(tmp_path):
    whole = generate("crops", 6, 4, tmp_path / "whole", background_manifests=[], progress=False)
    part = generate("crops", 2, 4, tmp_path / "part", background_manifests=[], progress=False, start=4)
    a, b = _digest(whole.parent), _digest(part.parent)
    assert sorted(k for k in b if k.startswith("images/")) == ["images/000004.jpg", "images/000005.jpg"]
    assert all(b[k] == a[k] for k in b if k.startswith("images/"))
    records = {r.image: r.to_dict() for r in read_manifest(whole).images}
    assert [r.to_dict() for r in read_manifest(part).images] == [
        records["images/000004.jpg"],
        records["images/000005.jpg"],
    ]


def test_same_seed_same_bytes_in_other_processes(tmp_path):
    """Another process (another string hash seed, empty caches) makes the same bytes."""
    code = (
        "import sys; from data.synth import generate; "
        "generate('crops', 6, 5, sys.argv[1], background_manifests=[], progress=False); "
        "generate('scenes', 2, 5, sys.argv[1] + '_scenes', background_manifests=[], progress=False)"
    )
    digests = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"p{hash_seed}"
        run = subprocess.run(
            [sys.executable, "-c", code, str(out)],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        )
        assert run.returncode == 0, run.stderr
        digests.append((_digest(out), _digest(Path(f"{out}_scenes"))))
    assert len(digests[0][0]) == 7 and len(digests[0][1]) == 3
    assert digests[0] == digests[1]


def test_cli_writes_a_valid_manifest(tmp_path):
    out = tmp_path / "cli"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "data",
            "action=synth",
            "kind=crops",
            "n=4",
            "seed=0",
            f"out={out}",
            "styles=[eu,es]",
            "synth.backgrounds.datasets=[]",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    lines = [json.loads(x) for x in (out / "labels.jsonl").read_text().splitlines()]
    assert len(lines) == 4 and {x["style"] for x in lines} <= {"eu", "es"}
    check = subprocess.run(
        [sys.executable, "-m", "data", "action=validate", f"src={out}"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_evaluation_only_sets_are_never_backgrounds():
    from data.synth.dataset import background_manifests, default_settings

    with pytest.raises(ValueError, match="evaluation only"):
        background_manifests(["openalpr_br_endtoend"], default_settings()["paths"])


@pytest.mark.shared_data
def test_real_backgrounds_hold_no_labelled_plate(shared_datasets, tmp_path):
    from data.synth.backgrounds import RealBackgrounds, boxes_overlap

    pool = RealBackgrounds(
        [shared_datasets / "uc3m_lp" / "labels.jsonl"], splits=["train"], margin=0.15, pool=16
    )
    assert len(pool) == 16
    rng = np.random.default_rng(0)
    views = [pool.sample(rng, 200, 80) for _ in range(10)]
    assert sum(v is not None for v in views) >= 8
    assert all(v.shape == (80, 200, 3) for v in views if v is not None)
    regions = [pool.region(rng, 200, 80) for _ in range(50)]
    assert sum(r is not None for r in regions) >= 40
    for found in regions:
        if found is not None:
            scene, box = found
            assert not any(boxes_overlap(box, p) for p in scene.plates), f"{scene.path}: region over a plate"
    path = generate(
        "scenes",
        3,
        0,
        tmp_path / "real",
        progress=False,
        background_manifests=[shared_datasets / "uc3m_lp" / "labels.jsonl"],
    )
    assert validate(read_manifest(path), progress=False) == []


def test_swedish_inspection_sticker_sits_between_the_groups_and_is_no_character():
    """Older Swedish plates carry a coloured sticker with a number between the letter and digit
    groups (read as 8, 0 or B by a model that never saw one): it is drawn in colour there and no
    character box covers it."""
    seen = 0
    for seed in range(40):
        rp = render("se", None, np.random.default_rng(seed), px_per_mm=1.0)
        chars = rp.plate.chars
        assert len(chars) == 6
        left, right = int(chars[2].box[2]), int(chars[3].box[0])
        if right - left < 8:
            continue
        between = rp.image[int(chars[2].box[1]) : int(chars[2].box[3]), left + 1 : right - 1].astype(np.int32)
        saturation = between.max(axis=2) - between.min(axis=2)
        if (saturation > 60).mean() > 0.05:  # the plate is white and the ink black: colour is the sticker
            seen += 1
    assert seen >= 3, f"the sticker was drawn on {seen} of 40 Swedish plates"


def test_same_glyph_draws_a_character_in_another_shape_labelled_as_itself():
    base = {
        "name": "bar_one",
        "size_mm": [400, 130],
        "patterns": ["LLL-DDDD"],
        "text": {"height_mm": 68, "y_mm": 70, "monospace": True},
        "fonts": ["oswald:500"],
        "variants": [{"background": "#bcbcbc", "text": "#1c1c1c"}],
    }

    def widths(style, seed):
        plate = render(style, "III1111", np.random.default_rng(seed), px_per_mm=1.0).plate
        assert "".join(c.char for c in plate.chars) == "III1111"  # labels follow the text, not the shape
        return [round(c.box[2] - c.box[0]) for c in plate.chars]

    plain = style_from_dict(base, "bar_one.yaml")
    shape_i = {**base, "text": {**base["text"], "same_glyph": {"as": {"1": "I"}, "probability": 1.0}}}
    aliased = style_from_dict(shape_i, "bar_one.yaml")
    w = widths(plain, 0)
    assert w[3] > w[0], "the font's own 1 is wider than its I (the flag)"
    for seed in range(3):
        w = widths(aliased, seed)
        assert len(set(w)) == 1, f"every 1 drawn as the I bar: widths {w}"
    # probability 0: the font's own shapes
    off = {**base, "text": {**base["text"], "same_glyph": {"as": {"1": "I"}, "probability": 0.0}}}
    never = style_from_dict(off, "x")
    assert widths(never, 0)[3] > widths(never, 0)[0]
    assert load_style("br_old").text.same_glyph == {"1": "I"}
    with pytest.raises(ValueError, match=r"bar_one\.yaml: text\.same_glyph"):
        style_from_dict({**base, "text": {**base["text"], "same_glyph": {"as": {"1": "II"}}}}, "bar_one.yaml")
    with pytest.raises(ValueError, match=r"same_glyph\.probability"):
        too_likely = {**base, "text": {**base["text"], "same_glyph": {"as": {"1": "I"}, "probability": 2}}}
        style_from_dict(too_likely, "bar_one.yaml")


def test_confusables_are_drawn_more_often_and_come_from_the_config(tmp_path):
    from data.synth.dataset import default_settings

    style = load_style("br_old")  # LLL-DDDD: 26 letters per letter slot

    def share_of(chars: str, boost: float, confusables: str) -> float:
        rng = np.random.default_rng(3)
        letters = "".join(style.sample_text(rng, boost, confusables)[0][:3] for _ in range(3000))
        return sum(letters.count(c) for c in chars) / len(letters)

    plain = share_of("DQ", 1.0, "DQ")
    boosted = share_of("DQ", 4.0, "DQ")
    # 2 of 26 letters: 7.7% drawn plainly; 4x as likely each: 8 / 32 = 25%
    assert abs(plain - 2 / 26) < 0.02, plain
    assert abs(boosted - 8 / 32) < 0.03, boosted
    assert abs(share_of("DQ", 4.0, "O0") - 2 / 28) < 0.02, "only the configured characters are boosted"
    settings = default_settings()
    assert set("OQD0") <= set(settings["confusables"]), "worn O and Q read as D: boosted by default"
    # The setting reaches the images: a set made with only D boosted holds more D than one with none.
    counts = {}
    for name, chars in (("d", "D"), ("none", "")):
        generate(
            "crops",
            40,
            5,
            tmp_path / name,
            styles=["br_old"],
            confusable_boost=6.0,
            confusables=chars,
            background_manifests=[],
            progress=False,
        )
        texts = "".join(r.plates[0].text[:3] for r in read_manifest(tmp_path / name / "labels.jsonl").images)
        counts[name] = texts.count("D")
    assert counts["d"] > 2 * max(counts["none"], 1), counts
