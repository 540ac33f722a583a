"""action=refresh: rewrite the zoo files of models already exported, without exporting again.

    python -m export action=refresh onnx=runtime/zoo

For every entry under the folder: Ultralytics' metadata of the ONNX loses any absolute path of
the build machine; the JSON is written again by the export stage's own generator
(:func:`export.zoo.write_entry`, settings from conf/export.yaml), then, where DeGirum's ONNX/CPU
agent runs, its post-processing is tuned (export/degirum_tune.py, on training images) and the
round trip measured; ``export_report.json`` keeps its history with portable paths. The model's
weights, graph and our ``lpr.*`` metadata stay as they are.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from export.zoo import ZooEntry, check_entry, entry_paths, portable, strip_machine_paths, write_entry


def _scrub_onnx(path: Path) -> bool:
    """Strip machine paths from the ONNX's non-``lpr.`` metadata; True when the file changed."""
    import onnx

    model = onnx.load(str(path))
    changed = False
    for prop in model.metadata_props:
        clean = strip_machine_paths(prop.value)
        if clean != prop.value:
            prop.value, changed = clean, True
    if changed:
        onnx.save(model, str(path))
    return changed


def _entries(zoo: Path) -> list[ZooEntry]:
    from export.run import _is_zoo_config

    configs = [c for c in sorted(zoo.glob("*/*.json")) if c.stem == c.parent.name and _is_zoo_config(c)]
    return [entry_paths(zoo, c.stem) for c in configs]


def refresh_zoo(cfg: DictConfig) -> list[str]:
    """Refresh every entry of ``cfg.onnx`` (a zoo folder); returns one line per entry."""
    from export.run import _degirum_wanted, default_post, degirum_report
    from runtime.metadata import read_onnx_metadata

    zoo = Path(str(cfg.onnx))
    entries = _entries(zoo)
    if not entries:
        raise FileNotFoundError(f"{zoo}: no zoo entries (<name>/<name>.json) to refresh")
    by_name = {e.name: e for e in entries}
    lines = []
    for entry in entries:
        scrubbed = _scrub_onnx(entry.model)
        meta = read_onnx_metadata(entry.model)
        task = meta.task
        write_entry(
            entry,
            meta,
            float(cfg.zoo.conf_threshold),
            float(cfg.zoo.nms_threshold),
            int(cfg.zoo.max_detections[task]),
            int(cfg.zoo.config_version),
            default_post(cfg, task),
        )
        check_entry(entry.config)
        lines.append(
            f"{entry.config}: written" + (" (machine paths removed from the ONNX)" if scrubbed else "")
        )
    for entry in entries:
        meta = read_onnx_metadata(entry.model)
        report_path = entry.folder / "export_report.json"
        report: dict[str, Any] = json.loads(report_path.read_text()) if report_path.is_file() else {}
        if "weights" in report:
            report["weights"] = portable(report["weights"], entry.folder)
        report["metadata"] = meta.to_props()
        if meta.precision == "fp32" and _degirum_wanted(cfg.degirum.check, zoo):
            int8 = by_name.get(entry.name.replace("_float_", "_quant_"))
            scratch = Path(tempfile.mkdtemp(prefix="lpr_refresh_"))
            try:
                report["degirum"] = degirum_report(cfg, meta.task, entry, int8, meta, scratch)
            finally:
                import shutil

                shutil.rmtree(scratch, ignore_errors=True)
            if int8 is not None:
                _copy_degirum(int8, report["degirum"])
        report_path.write_text(json.dumps(report, indent=2, default=str) + "\n")
        lines.append(f"{report_path}: written")
    return lines


def _copy_degirum(int8: ZooEntry, degirum: dict[str, Any]) -> None:
    """The int8 entry's report says which settings it carries and where they were measured."""
    path = int8.folder / "export_report.json"
    report = json.loads(path.read_text()) if path.is_file() else {}
    if "weights" in report:
        report["weights"] = portable(report["weights"], int8.folder)
    report["degirum"] = {"tune_of_fp32": degirum.get("tune", {}).get("chosen"), **degirum}
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
