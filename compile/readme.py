"""The bundle's README: what is in it, how to compile it (Python or the `hailo` CLI), and after."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compile.graph import HeadSpec


def cli_commands(spec: Mapping[str, Any]) -> list[str]:
    """The `hailo` CLI flow equivalent to run_dfc.py (the name resolution still needs run_dfc.py)."""
    net, arch, start = spec["net_name"], spec["hw_arch"], spec["start_node"]
    ends = " ".join(f'"{e["onnx_node"]}"' for e in spec["end_nodes"])
    shape = ",".join(str(v) for v in spec["input_shape"])
    na = spec["noise_analysis"]
    return [
        "# 1. parse the ONNX, cut at the six head convs",
        f"hailo parser onnx {spec['files']['onnx']} --hw-arch {arch} --net-name {net} \\",
        f"    --start-node-names {start} --end-node-names {ends} \\",
        f"    --tensor-shapes {start}=[{shape}] --har-path build/{net}_parsed.har -y",
        "# 2. read the parser's layer names from the HAR; write build/<net>.alls and build/nms_config.json",
        f"python run_dfc.py --har build/{net}_parsed.har --until resolve",
        "# 3. quantise with the calibration set and the resolved model script",
        f"hailo optimize build/{net}_parsed.har --hw-arch {arch} --calib-set-path calib.npy \\",
        f"    --model-script build/{net}.alls --output-har-path build/{net}_optimized.har",
        "# 4. (optional) per-layer quantisation noise, then `hailo profiler` on the HAR it writes",
        f"hailo analyze-noise build/{net}_optimized.har --data-path calib.npy --batch-size {na['batch_size']} "
        f"--data-count {na['data_count']}",
        "# 5. compile to a HEF",
        f"hailo compiler build/{net}_optimized.har --hw-arch {arch}",
    ]


def write_readme(
    bundle_dir: Path, spec: Mapping[str, Any], head: HeadSpec, target: Mapping[str, Any]
) -> Path:
    """Write the bundle's README.md from its ``spec`` (bundle.json), detection ``head`` and ``target``
    (conf/target: the DeGirum device names); returns its path."""
    net, arch = spec["net_name"], spec["hw_arch"]
    calib = spec["calibration"]
    zoo = spec["degirum"]
    pairs = spec["dfc"]["hailort_pairs"]
    rows = "\n".join(
        f"| `{e['onnx_node']}` | `{{{{{e['key']}}}}}` | {e['branch']} | {e['stride']} | {e['channels']} "
        f"| {e['shape']} |"
        for e in spec["end_nodes"]
    )
    cli = "\n".join("    " + line for line in cli_commands(spec))
    pair_rows = "\n".join(f"| {dfc} | {rt} |" for dfc, rt in sorted(pairs.items(), reverse=True))
    nms_line = (
        "Box decoding and per-class NMS run inside the HEF (`nms_postprocess`, config "
        "`nms_config.json.template`); the HEF returns, per class, a count then that many "
        "`[ymin, xmin, ymax, xmax, score]` in 0..1."
        if spec["nms_on_chip"]
        else "NMS is not compiled in: the HEF returns the six head outputs (NHWC, class outputs through a "
        "sigmoid) and the host decodes them (our runtime, or DeGirum's `DetectionYoloV8`)."
    )
    text = f"""# Hailo DFC bundle: {net} for {arch}

Written by `python -m compile` from `{spec["source_onnx"]}` (sha256 `{spec["onnx_sha256"][:16]}…`).
Task `{spec["task"]}`, {spec["num_classes"]} classes, input {head.input_height}x{head.input_width} RGB,
letterbox fill {spec["letterbox_fill"]}, backbone activation {spec["activation"]} (from the graph).
Everything below was derived from the model's graph and metadata, not copied by hand.

## Files

| file | what |
|---|---|
| `{spec["files"]["onnx"]}` | the exported model (copy) |
| `bundle.json` | what `run_dfc.py` needs: start/end nodes, shapes, files, versions |
| `{spec["files"]["model_script_template"]}` | model script with a comment on every line; `{{{{…}}}}` = parser layer names |
| `nms_config.json.template` | yolov8 NMS config (only when NMS is on the chip) |
| `calib.npy` | {calib["count"]} calibration frames, float32 {calib["shape"]}, RGB 0..255, letterboxed as in training |
| `calib_contact_sheet.png`, `calib_sources.txt` | what the DFC calibrates on, and where each frame came from |
| `run_dfc.py` | the compile flow with `hailo_sdk_client.ClientRunner` |
| `degirum/` | DeGirum PySDK zoo entry `{zoo["model_name"]}` (becomes a local zoo after compiling) |
| `build/` | written by `run_dfc.py`: HARs, final `.alls` and NMS JSON, `layer_map.json`, HEF, `dfc.log`, `report.json` |

## Cut points (from the ONNX graph)

Start node `{spec["start_node"]}` {spec["input_shape"]}; Detect layer `model.{spec["detect_layer_index"]}`;
reg_max {spec["reg_max"]}; strides {spec["strides"]}.

| ONNX end node | placeholder | branch | stride | channels | shape (NCHW) |
|---|---|---|---|---|---|
{rows}

The DFC parser names layers itself (`conv41`, …). `run_dfc.py` finds, after translating, the layer
whose recorded `original_names` contain each ONNX node above, checks its channel count, and only
then writes `build/{net}.alls` and `build/nms_config.json` (see `build/layer_map.json`).

{nms_line}

## Compile (Python)

In the Hailo DFC's virtualenv (DFC 3.x; optimisation level >= 2 wants an NVIDIA GPU):

    python run_dfc.py

It writes `build/{net}.hef`, `degirum/{zoo["model_name"]}.hef` + `.json` (checksum filled in),
`build/dfc.log` and `build/report.json` (DFC version, optimisation level requested and effective,
per-output SNR from the optimiser's log, per-layer noise analysis in `build/{net}_noise.har`).
`python run_dfc.py --until resolve` stops after writing the resolved model script.

## Compile (`hailo` CLI)

{cli}

## Versions

A HEF runs only on the HailoRT release its DFC pairs with; Hailo-8/8L need the DFC 3.x line
(5.x targets Hailo-10H/15). A Hailo-8L HEF also runs on Hailo-8, not the reverse.

| DFC | HailoRT on the device |
|---|---|
{pair_rows}

## DeGirum PySDK

After compiling, `degirum/` is a local zoo:

    import degirum as dg
    model = dg.load_model("{zoo["model_name"]}", "@local", "<this folder>/degirum", token="")
    model.input_letterbox_fill_color = ({spec["letterbox_fill"]}, {spec["letterbox_fill"]}, {spec["letterbox_fill"]})  # as in training

Runtime agent HAILORT, device {target["degirum_device_type"]} ({target["degirum_supported_devices"]}),
post-processing `{zoo["postprocess"]}`, `InputQuantEn: true` (uint8 frames, normalisation in the network).
"""
    path = bundle_dir / spec["files"]["readme"]
    path.write_text(text)
    return path
