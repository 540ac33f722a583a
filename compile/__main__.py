"""python -m compile model=PATH.onnx target=hailo8l|hailo8 out=DIR [key=value ...]

Builds a complete Hailo DFC bundle for an exported model (see compile/bundle.py for the layout) and,
when the Hailo Dataflow Compiler (hailo_sdk_client) is installed, runs it and reports the DFC's log,
optimisation level and noise figures. Without the DFC it exits 0 saying which command to run where
the DFC is. Exit codes: 0 ok, 1 the DFC run failed, 2 the command could not run (bad model/option).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

import stage.config  # noqa: F401  (registers ${lpr.root:} before Hydra composes)
from stage.errors import UsageError
from stage.main import stage_main


def cli_args(argv: list[str]) -> list[str]:
    """`model=PATH` is the stage's documented argument, but Hydra reserves `model` for the
    conf/model/ group: pass it on as the config key `onnx`."""
    return [f"onnx={a.split('=', 1)[1]}" if a.startswith("model=") else a for a in argv]


def dfc_available() -> bool:
    return importlib.util.find_spec("hailo_sdk_client") is not None


def default_out(cfg: DictConfig, net: str) -> Path:
    return Path(cfg.paths.runs) / "compile" / f"{net}_{cfg.target.name}" / time.strftime("%Y%m%d-%H%M%S")


def report_dfc(bundle_dir: Path) -> None:
    """Print what the runner's report says: versions, optimisation level, noise figures."""
    path = bundle_dir / "build" / "report.json"
    if not path.is_file():
        print(f"no report from the DFC run ({path} missing)")
        return
    r = json.loads(path.read_text())
    print(
        f"DFC {r.get('dfc_version')} -> {r.get('hw_arch')}; device needs HailoRT {r.get('hailort_required')}"
    )
    print(f"stages done: {', '.join(r.get('stages_done', []))}")
    print(
        f"optimisation level: requested {r.get('optimization_level_requested')}, "
        f"effective {r.get('optimization_level_effective')}"
    )
    log = r.get("log", {})
    if log.get("calibration_entries"):
        print(f"calibration entries used by the DFC: {log['calibration_entries']}")
    for layer, db in sorted(log.get("snr_db", {}).items(), key=lambda kv: kv[1]):
        print(f"  SNR {db:7.2f} dB  {layer}")
    for note in log.get("notes", [])[-10:]:
        print(f"  log: {note}")
    if r.get("hef"):
        print(f"HEF: {r['hef']} (sha256 {r.get('hef_sha256', '')[:16]}…); DeGirum: {r.get('degirum_json')}")
    if r.get("error"):
        print(f"DFC run failed: {r['error']}")
    print(f"DFC log: {r.get('log_path')}")


def run(cfg: DictConfig) -> int:
    from compile.bundle import build, net_name_for, read_model

    if OmegaConf.is_missing(cfg, "onnx") or not cfg.onnx:
        raise UsageError("no model: give model=PATH.onnx (an export from `python -m export`)")
    onnx_path = Path(cfg.onnx)
    wanted = dfc_available() if str(cfg.run_dfc).lower() == "auto" else bool(cfg.run_dfc)
    if wanted and not dfc_available():
        raise UsageError("run_dfc=true but hailo_sdk_client (the Hailo DFC) is not importable here")
    meta, _ = read_model(onnx_path)
    out = Path(cfg.out) if cfg.out else default_out(cfg, net_name_for(meta, cfg.net_name))
    bundle = build(onnx_path, out, OmegaConf.to_container(cfg, resolve=True))
    spec = bundle.spec
    print(
        f"model {onnx_path}: {spec['task']}, {spec['num_classes']} classes, input {spec['input_shape']}, "
        f"Detect layer model.{spec['detect_layer_index']}, reg_max {spec['reg_max']}, strides "
        f"{spec['strides']}"
    )
    for e in spec["end_nodes"]:
        print(f"  end node {e['key']:8s} {e['onnx_node']}  ({e['branch']}, {e['channels']} ch)")
    print(bundle.calibration.summary())
    for issue in bundle.calibration.issues[:10]:
        print(f"  {issue}")
    print(f"contact sheet: {bundle.file('contact_sheet')}")
    print(
        f"model script: {bundle.file('model_script_template')}; NMS on chip: {spec['nms_on_chip']}; "
        f"DeGirum: {spec['degirum']['model_name']} ({spec['degirum']['postprocess']})"
    )

    if not wanted:
        why = "the Hailo DFC is not installed here" if not dfc_available() else "run_dfc=false"
        print(
            f"Bundle ready in {out} ({why}): on a machine with DFC {cfg.dfc_major}.x run "
            f"`python {out / 'run_dfc.py'}`",
            flush=True,
        )
        return 0
    code = subprocess.run([sys.executable, str(bundle.runner), "--bundle", str(out)], check=False).returncode
    report_dfc(out)
    return 0 if code == 0 else 1


@hydra.main(version_base="1.3", config_path="../conf", config_name="compile")
def main(cfg: DictConfig) -> None:
    stage_main(run, cfg)


if __name__ == "__main__":
    sys.argv = [sys.argv[0], *cli_args(sys.argv[1:])]
    main()
