"""How many plates DeGirum's guide code reads on our zoo, against ``python -m runtime``.

    python -m evaluate.degirum_guide_bench [--datasets openalpr_br_endtoend pl_parking] [--zoo DIR]
                                           [--limit N] [--json OUT.json]

For every photo of each set: the guide's code (runtime/degirum_guide.py: ``dg.load_model`` on the
zoo, local ONNX/CPU, detector, crop each bbox clipped, OCR each crop, characters sorted by x /
two-line order) and our runtime (the Predictor with its defaults, ONNX Runtime) read the plates;
a labelled plate counts as read when its text is among the image's readings. Prints both counts,
the guide path's share of the runtime's (the target is >= 95%), and the guide path with DeGirum's
default black letterbox fill (what a guide user gets who does not set the fill).

Datasets: names in conf/dataset/, folders of ../shared/datasets, or manifest paths. These are
evaluation sets: run this once per change, never to tune.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_DATASETS = ("openalpr_br_endtoend", "pl_parking")


@dataclass
class GuideComparison:
    dataset: str
    images: int = 0
    labelled: int = 0
    runtime_exact: int = 0
    guide_exact: int = 0
    guide_black_fill_exact: int | None = None
    errors: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def share(self) -> float:
        """The guide path's exact reads over the runtime's."""
        return self.guide_exact / self.runtime_exact if self.runtime_exact else float("nan")

    def line(self) -> str:
        black = (
            ""
            if self.guide_black_fill_exact is None
            else f", guide with black fill {self.guide_black_fill_exact}"
        )
        return (
            f"{self.dataset}: {self.labelled} labelled plates in {self.images} photos; read exactly by "
            f"runtime {self.runtime_exact}, guide path {self.guide_exact} ({100 * self.share:.1f}% of the "
            f"runtime's){black}"
        )


def manifest_path(name: str) -> Path:
    """A dataset name (conf/dataset/ or a folder of the shared datasets) or a manifest path."""
    p = Path(name)
    if p.suffix == ".jsonl" or p.is_dir():
        return p / "labels.jsonl" if p.is_dir() else p
    from stage.config import compose
    from train.mix import parse_sources

    paths = compose("evaluate").paths
    try:
        return Path(parse_sources([name], paths)[0].manifest)
    except Exception:  # not a configured dataset: a folder of the shared datasets
        return Path(str(paths.shared_datasets)) / name / "labels.jsonl"


def compare(
    manifest: str | Path,
    zoo: str | Path | None = None,
    limit: int | None = None,
    black_fill: bool = True,
    name: str | None = None,
) -> GuideComparison:
    """Both paths on every photo of ``manifest``; see the module's docstring."""
    from data.images import read_image
    from data.manifest import read_manifest
    from runtime.degirum_guide import load_guide_models, read_plates
    from runtime.pipeline import Predictor

    m = read_manifest(Path(manifest))
    items = [i for i in m.images if not i.is_crop][: limit or None]
    out = GuideComparison(dataset=name or Path(manifest).parent.name)
    det, ocr = load_guide_models(zoo)
    black = load_guide_models(zoo, fill=0) if black_fill else None
    predictor = Predictor(zoo)
    readers: dict[str, Any] = {
        "runtime": lambda img: {p.text for p in predictor.predict(img)},
        "guide": lambda img: {p.text for p in read_plates(det, ocr, img)},
    }
    if black is not None:
        readers["guide_black_fill"] = lambda img: {p.text for p in read_plates(black[0], black[1], img)}
    counts = dict.fromkeys(readers, 0)
    seconds = dict.fromkeys(readers, 0.0)
    try:
        for item in items:
            try:
                image = read_image(m.image_path(item))
            except (FileNotFoundError, ValueError) as e:
                out.errors.append(f"{m.path}:{item.line}: {e}")
                continue
            truth = [p.text for p in item.plates if p.text]
            out.images += 1
            out.labelled += len(truth)
            for key, read in readers.items():
                t = time.perf_counter()
                texts = read(image)
                seconds[key] += time.perf_counter() - t
                counts[key] += sum(text in texts for text in truth)
    finally:
        predictor.close()
    out.runtime_exact, out.guide_exact = counts["runtime"], counts["guide"]
    out.guide_black_fill_exact = counts.get("guide_black_fill")
    out.seconds = {k: round(v, 2) for k, v in seconds.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evaluate.degirum_guide_bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--datasets", nargs="+", default=list(DEFAULT_DATASETS))
    parser.add_argument(
        "--zoo", type=Path, default=None, help="model zoo (default: the runtime's shipped zoo)"
    )
    parser.add_argument("--limit", type=int, default=None, help="only the first N photos of each set")
    parser.add_argument("--no-black-fill", action="store_true", help="skip the black-fill run")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here too")
    args = parser.parse_args(argv)
    results = []
    try:
        for name in args.datasets:
            r = compare(manifest_path(name), args.zoo, args.limit, not args.no_black_fill, name=name)
            results.append(r)
            print(r.line(), flush=True)
            for e in r.errors:
                print(f"  skipped: {e}", file=sys.stderr)
    except (OSError, ValueError, RuntimeError) as e:  # missing zoo or dataset, DeGirum unavailable
        print(f"error: {e}", file=sys.stderr)
        return 2
    runtime = sum(r.runtime_exact for r in results)
    guide = sum(r.guide_exact for r in results)
    share = guide / runtime if runtime else float("nan")
    print(
        f"all: guide path {guide} vs runtime {runtime} plates read exactly "
        f"({100 * share:.1f}%; target >= 95%)"
    )
    if args.json:
        args.json.write_text(json.dumps([{**asdict(r), "share": r.share} for r in results], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
