#!/usr/bin/env python3
"""Compile this bundle's ONNX model into a HEF with the Hailo Dataflow Compiler (DFC 3.x).

    python run_dfc.py                      # translate -> resolve names -> optimize -> compile
    python run_dfc.py --until resolve      # only write build/<net>.alls and build/nms_config.json
    python run_dfc.py --har build/x.har    # start from a HAR parsed with `hailo parser onnx`

Written by `python -m compile` (the LPR toolchain) and copied into every bundle as run_dfc.py; it
needs only the Python standard library, numpy and the DFC's hailo_sdk_client (Python 3.8+, the
DFC's own virtualenv). Everything model-specific comes from bundle.json next to it.

The parser assigns its own layer names (conv41, ...). They cannot be known before translation, so
this script reads them from the parsed network: every HN layer records the ONNX node names it came
from ("original_names"), and each of the bundle's ONNX end nodes must map to exactly one layer with
the expected channel count. Only then are the model script and NMS config written and loaded.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
import traceback
from pathlib import Path
from typing import Any

PLACEHOLDER = re.compile(r"\{\{([a-z0-9_]+)\}\}")
SNR_LINE = re.compile(r"(?P<layer>[A-Za-z0-9_./-]+)\s+SNR:\s*(?P<db>-?[0-9.]+|inf|-inf|nan)\s*dB")
REDUCED_LEVEL = re.compile(r"[Rr]educing optimization level to (?P<level>\d)")
CALIB_ENTRIES = re.compile(r"Using dataset with (?P<n>\d+) entries for calibration")
STAGES = ("parse", "resolve", "optimize", "compile")


class DfcRunError(RuntimeError):
    """The bundle, the DFC or the parsed network does not fit together.

    This script travels alone to the DFC machine, so its error is not part of the toolchain's family."""


# ------------------------------------------------------------------ pure helpers (tested without the DFC)


def load_bundle(bundle_dir: Path) -> dict[str, Any]:
    path = bundle_dir / "bundle.json"
    if not path.is_file():
        raise DfcRunError(f"{path}: missing; run this script from a bundle written by `python -m compile`")
    return json.loads(path.read_text())


def hn_layers(hn: Any) -> dict[str, dict[str, Any]]:
    """The ``layers`` mapping of an HN (dict, or the JSON text some DFC versions return)."""
    if isinstance(hn, (str, bytes)):
        hn = json.loads(hn)
    layers = hn.get("layers") if isinstance(hn, dict) else None
    if not isinstance(layers, dict) or not layers:
        raise DfcRunError("the parsed network (HN) has no 'layers'")
    return layers


def short_name(layer: str) -> str:
    """HN layer keys may carry the network scope (plate_det/conv41); model scripts use conv41."""
    return layer.rsplit("/", 1)[-1]


def _channels(spec: dict[str, Any]) -> int | None:
    shapes = spec.get("output_shapes") or []
    return shapes[0][-1] if shapes and shapes[0] else None


def _nhwc(spec: dict[str, Any]) -> list[int] | None:
    shapes = spec.get("output_shapes") or []
    return list(shapes[0][1:]) if shapes and shapes[0] and len(shapes[0]) == 4 else None


def resolve_layers(
    hn: Any, end_nodes: list[dict[str, Any]], how: dict[str, str] | None = None
) -> dict[str, str]:
    """Map each bundle end node (key -> ONNX node) to the HN layer the parser made of it.

    A layer matches when its ``original_names`` hold the ONNX node name or its output tensor, or
    when it feeds an ``output_layer`` whose ``original_names`` do. Should the DFC record no names,
    the one layer feeding an output with the node's [H, W, C] (from the ONNX shapes; unique per
    stride and branch unless nc == 4 x reg_max) is taken instead. Either way the match must be
    unique and its channel count must equal the ONNX node's. ``how`` receives the method per key.
    """
    layers = hn_layers(hn)
    feeding_outputs = sorted(
        {
            spec["input"][0]
            for spec in layers.values()
            if spec.get("type") == "output_layer" and spec.get("input")
        }
    )
    mapping: dict[str, str] = {}
    problems = []
    for end in end_nodes:
        names = {end["onnx_node"], end.get("output", "")} - {""}
        direct = [
            n
            for n, spec in layers.items()
            if spec.get("type") != "output_layer" and names & set(spec.get("original_names") or [])
        ]
        via_output = [
            spec["input"][0]
            for n, spec in layers.items()
            if spec.get("type") == "output_layer"
            and names & set(spec.get("original_names") or [])
            and spec.get("input")
        ]
        matches = sorted(set(direct) | set(via_output))
        method = "original_names"
        if not matches and end.get("shape"):
            want = [end["shape"][2], end["shape"][3], end["shape"][1]]  # NCHW -> HWC
            matches = [n for n in feeding_outputs if _nhwc(layers.get(n, {})) == want]
            method = "output shape"
        if len(matches) != 1:
            problems.append(
                f"{end['key']} ({end['onnx_node']}): {'no' if not matches else len(matches)} HN layers match "
                f"by {method} {matches or ''}; layers feeding outputs: {feeding_outputs}"
            )
            continue
        layer = matches[0]
        channels = _channels(layers.get(layer, {}))
        if channels != end["channels"]:
            problems.append(
                f"{end['key']} ({end['onnx_node']}) -> {layer}: {channels} channels, ONNX has "
                f"{end['channels']}"
            )
            continue
        mapping[end["key"]] = layer
        if how is not None:
            how[end["key"]] = method
    if len(set(mapping.values())) != len(mapping):
        problems.append(f"two end nodes map to the same HN layer: {mapping}")
    if problems:
        raise DfcRunError("cannot map the ONNX end nodes to the parsed network:\n  " + "\n  ".join(problems))
    return mapping


def resolve_stem(hn: Any, stem: dict[str, Any], how: dict[str, str] | None = None) -> str:
    """The HN layer of the stem convolution: the layer recording its ONNX name or output, else the
    one conv fed by the input layer. Its channel count must equal the ONNX node's."""
    layers = hn_layers(hn)
    names = {stem["onnx_node"], stem.get("output", "")} - {""}
    matches = sorted(n for n, spec in layers.items() if names & set(spec.get("original_names") or []))
    method = "original_names"
    if not matches:
        inputs = {n for n, spec in layers.items() if spec.get("type") == "input_layer"}
        matches = sorted(
            n
            for n, spec in layers.items()
            if spec.get("type") == "conv" and inputs & set(spec.get("input") or [])
        )
        method = "fed by the input layer"
    if len(matches) != 1:
        raise DfcRunError(
            f"stem ({stem['onnx_node']}): {'no' if not matches else len(matches)} HN layers match by "
            f"{method} {matches or ''}"
        )
    channels = _channels(layers[matches[0]])
    if channels != stem["channels"]:
        raise DfcRunError(
            f"stem ({stem['onnx_node']}) -> {matches[0]}: {channels} channels, ONNX has {stem['channels']}"
        )
    if how is not None:
        how["stem"] = method
    return matches[0]


def network_scope(mapping: dict[str, str], fallback: str) -> str:
    scopes = {layer.rsplit("/", 1)[0] for layer in mapping.values() if "/" in layer}
    return scopes.pop() if len(scopes) == 1 else fallback


def placeholder_values(mapping: dict[str, str], net: str, nms_config: Path) -> dict[str, str]:
    """Template values: {{reg_s8}} -> conv41, {{decoder_reg_s8}} -> bbox_decoder41 (the zoo's naming)."""
    values = {"net": net, "nms_config": str(nms_config)}
    for key, layer in mapping.items():
        short = short_name(layer)
        values[key] = short
        digits = re.sub(r"\D", "", short)
        values[f"decoder_{key}"] = f"bbox_decoder{digits}" if digits else f"bbox_decoder_{short}"
    return values


def fill(template: str, values: dict[str, str]) -> str:
    missing = sorted(set(PLACEHOLDER.findall(template)) - set(values))
    if missing:
        raise DfcRunError(f"no value for placeholders {missing}")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def strip_comments(text: str) -> str:
    """The model script's commands only: the zoo's scripts carry no comments, so neither does ours."""
    lines = [line.strip() for line in text.splitlines()]
    return "\n".join(line for line in lines if line and not line.startswith("#")) + "\n"


def requested_level(script: str) -> int | None:
    m = re.search(r"model_optimization_flavor\([^)]*optimization_level=(\d)", script)
    return int(m.group(1)) if m else None


def parse_log(text: str) -> dict[str, Any]:
    """What the DFC's log says about optimisation: level fall-backs, calibration size, SNR figures."""
    snr: dict[str, float] = {}
    for m in SNR_LINE.finditer(text):
        snr[m.group("layer")] = float(m.group("db"))
    reduced = [int(m.group("level")) for m in REDUCED_LEVEL.finditer(text)]
    entries = [int(m.group("n")) for m in CALIB_ENTRIES.finditer(text)]
    notes = [
        line.strip()
        for line in text.splitlines()
        if "optimization level" in line.lower() or "[warning]" in line.lower()
    ]
    return {
        "reduced_to": reduced[-1] if reduced else None,
        "calibration_entries": entries[-1] if entries else None,
        "snr_db": snr,
        "notes": notes[-40:],
    }


def dfc_pairing(version: str, pairs: dict[str, str], major: int) -> str:
    """The HailoRT release a HEF from this DFC needs; refuses a DFC line that cannot target Hailo-8/8L."""
    parts = version.split(".")
    if not parts[0].isdigit() or int(parts[0]) != major:
        raise DfcRunError(
            f"hailo_sdk_client {version}: Hailo-8/8L need the DFC {major}.x line "
            f"(pairs {pairs}); DFC 5.x targets Hailo-10H/15 only"
        )
    return pairs.get(".".join(parts[:2]), "unknown (not in conf/target's dfc_hailort_pairs)")


class Tee:
    """Copy everything written to a stream into the run's log file as well."""

    def __init__(self, stream: Any, log: Any) -> None:
        self.stream, self.log = stream, log

    def write(self, text: str) -> int:
        self.log.write(text)
        self.log.flush()
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()
        self.log.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def sha256(path: Path) -> str:
    # stage.files.sha256_file, repeated: this script travels alone to the DFC machine.
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------ the DFC flow


def hn_of(runner: Any) -> Any:
    """The parsed network as a dict (get_hn_dict where the DFC has it, else get_hn)."""
    if hasattr(runner, "get_hn_dict"):
        return runner.get_hn_dict()
    return runner.get_hn()


def write_resolved(bundle_dir: Path, bundle: dict[str, Any], runner: Any, build: Path) -> dict[str, Any]:
    net_name = bundle["net_name"]
    how: dict[str, str] = {}
    mapping = resolve_layers(hn_of(runner), bundle["end_nodes"], how)
    net = network_scope(mapping, net_name)
    nms_path = (build / "nms_config.json").resolve()
    values = placeholder_values(mapping, net, nms_path)
    template = (bundle_dir / bundle["files"]["model_script_template"]).read_text()
    stem_layer = None
    if "{{stem}}" in template:  # model_script.a16_stem: only then must the stem be found
        stem_layer = resolve_stem(hn_of(runner), bundle["stem"], how)
        values["stem"] = short_name(stem_layer)
    annotated = fill(template, values)
    (build / f"{net_name}.annotated.alls").write_text(annotated)
    script = strip_comments(annotated)
    (build / f"{net_name}.alls").write_text(script)
    if bundle["nms_on_chip"]:
        nms = fill((bundle_dir / bundle["files"]["nms_config_template"]).read_text(), values)
        json.loads(nms)  # still valid JSON after filling
        nms_path.write_text(nms)
    layer_map = {
        e["key"]: {
            "onnx_node": e["onnx_node"],
            "hn_layer": mapping[e["key"]],
            "matched_by": how[e["key"]],
            "branch": e["branch"],
            "stride": e["stride"],
            "channels": e["channels"],
        }
        for e in bundle["end_nodes"]
    }
    if stem_layer is not None:
        layer_map["stem"] = {
            "onnx_node": bundle["stem"]["onnx_node"],
            "hn_layer": stem_layer,
            "matched_by": how["stem"],
            "channels": bundle["stem"]["channels"],
        }
    (build / "layer_map.json").write_text(json.dumps(layer_map, indent=2) + "\n")
    print("[run_dfc] resolved end nodes: " + ", ".join(f"{k}={short_name(v)}" for k, v in mapping.items()))
    return {"layer_map": layer_map, "script": script}


def write_degirum(bundle_dir: Path, bundle: dict[str, Any], hef: Path) -> Path:
    zoo = bundle["degirum"]
    folder = bundle_dir / "degirum"
    digest = sha256(hef)
    target = folder / f"{zoo['model_name']}.hef"
    target.write_bytes(hef.read_bytes())
    text = fill((bundle_dir / zoo["template"]).read_text(), {"hef_sha256": digest})
    json.loads(text)
    out = folder / f"{zoo['model_name']}.json"
    out.write_text(text)
    return out


def run(bundle_dir: Path, until: str, har: Path | None, noise: bool, report: dict[str, Any]) -> None:
    """The DFC flow; ``report`` is filled as stages finish (it survives a failure half-way)."""
    bundle = load_bundle(bundle_dir)
    build = bundle_dir / "build"
    build.mkdir(exist_ok=True)
    net_name = bundle["net_name"]
    report.update(
        {
            "net_name": net_name,
            "hw_arch": bundle["hw_arch"],
            "stages_done": [],
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
    )

    import numpy as np

    try:
        import hailo_sdk_client
        from hailo_sdk_client import ClientRunner
    except ImportError as e:
        raise DfcRunError(
            f"hailo_sdk_client (the Hailo Dataflow Compiler) is not importable ({e}): run this in "
            f"the DFC's virtualenv, DFC {bundle['dfc']['major']}.x for Hailo-8/8L"
        ) from None

    version = getattr(hailo_sdk_client, "__version__", "unknown")
    dfc = bundle["dfc"]
    report["dfc_version"] = version
    report["hailort_required"] = dfc_pairing(version, dfc["hailort_pairs"], dfc["major"])
    print(
        f"[run_dfc] DFC {version} -> HEF for {bundle['hw_arch']}, needs HailoRT "
        f"{report['hailort_required']} on the device"
    )

    if har is not None:
        runner = ClientRunner(hw_arch=bundle["hw_arch"], har=str(har))
    else:
        runner = ClientRunner(hw_arch=bundle["hw_arch"])
        start = bundle["start_node"]
        runner.translate_onnx_model(
            str(bundle_dir / bundle["files"]["onnx"]),
            net_name,
            start_node_names=[start],
            end_node_names=[e["onnx_node"] for e in bundle["end_nodes"]],
            net_input_shapes={start: bundle["input_shape"]},
        )
        runner.save_har(str(build / f"{net_name}_parsed.har"))
    report["stages_done"].append("parse")
    if until == "parse":
        return

    resolved = write_resolved(bundle_dir, bundle, runner, build)
    report["layer_map"] = resolved["layer_map"]
    report["optimization_level_requested"] = requested_level(resolved["script"])
    report["stages_done"].append("resolve")
    if until == "resolve":
        return

    runner.load_model_script(resolved["script"])
    calib = np.load(str(bundle_dir / bundle["files"]["calibration"]), mmap_mode="r")
    print(f"[run_dfc] optimizing with {len(calib)} calibration frames {list(calib.shape[1:])}")
    runner.optimize(calib)
    runner.save_har(str(build / f"{net_name}_optimized.har"))
    report["stages_done"].append("optimize")
    na = bundle.get("noise_analysis") or {}
    if noise and na.get("enabled"):
        # Per-layer quantisation noise (the DFC's layer noise analysis); results go into the HAR and
        # its log, and `hailo profiler build/<net>_noise.har` shows them per layer.
        runner.analyze_noise(calib, batch_size=int(na["batch_size"]), data_count=int(na["data_count"]))
        runner.save_har(str(build / f"{net_name}_noise.har"))
        report["stages_done"].append("analyze_noise")
    if until == "optimize":
        return

    hef_bytes = runner.compile()
    hef = build / f"{net_name}.hef"
    hef.write_bytes(hef_bytes)
    runner.save_har(str(build / f"{net_name}_compiled.har"))
    report["hef"] = str(hef)
    report["hef_sha256"] = sha256(hef)
    report["degirum_json"] = str(write_degirum(bundle_dir, bundle, hef))
    report["stages_done"].append("compile")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--bundle",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="bundle folder (default: this script's)",
    )
    ap.add_argument("--until", choices=STAGES, default="compile", help="last stage to run")
    ap.add_argument(
        "--har", type=Path, default=None, help="start from this parsed HAR instead of translating the ONNX"
    )
    ap.add_argument("--no-noise-analysis", action="store_true", help="skip the per-layer noise analysis")
    args = ap.parse_args(argv)
    bundle_dir = args.bundle.resolve()
    build = bundle_dir / "build"
    build.mkdir(exist_ok=True)
    log_path = build / "dfc.log"
    report: dict[str, Any] = {}
    with log_path.open("w") as log:
        sys.stdout, sys.stderr = Tee(sys.__stdout__, log), Tee(sys.__stderr__, log)
        cwd = os.getcwd()
        os.chdir(build)  # the DFC writes its own hailo_sdk.client.log into the working folder
        try:
            run(
                bundle_dir,
                args.until,
                args.har.resolve() if args.har else None,
                not args.no_noise_analysis,
                report,
            )
            code = 0
        except DfcRunError as e:
            print(f"[run_dfc] error: {e}", file=sys.stderr)
            report["error"] = str(e)
            code = 2
        except Exception as e:  # the DFC's own errors: keep the traceback in the log and the report
            traceback.print_exc()
            report["error"] = f"{type(e).__name__}: {e}"
            code = 1
        finally:
            os.chdir(cwd)
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    text = log_path.read_text(errors="replace")
    sdk_log = build / "hailo_sdk.client.log"
    if sdk_log.is_file():
        text += "\n" + sdk_log.read_text(errors="replace")
    report["log"] = parse_log(text)
    report["log_path"] = str(log_path)
    requested = report.get("optimization_level_requested")
    reduced = report["log"]["reduced_to"]
    report["optimization_level_effective"] = reduced if reduced is not None else requested
    (build / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"[run_dfc] report: {build / 'report.json'}; log: {log_path}")
    return code


if __name__ == "__main__":
    sys.exit(main())
