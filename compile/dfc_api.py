"""The Hailo DFC Python API as documented, and a check that the bundle's runner only calls that.

The DFC wheel is proprietary and cannot be installed here, so the runner cannot be exercised
against it. Instead every ``ClientRunner`` call the runner makes is compared with this list of
calls, each with the positional and keyword arguments the sources show, and where they are shown.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

GUIDE = "Hailo Dataflow Compiler v3.30 user guide"
ZOO_UTILS = "hailo-ai/hailo_model_zoo hailo_model_zoo/core/main_utils.py"


@dataclass(frozen=True)
class ApiCall:
    name: str
    max_positional: int
    keywords: frozenset[str]
    sources: tuple[str, ...]


DOCUMENTED: dict[str, ApiCall] = {
    c.name: c
    for c in (
        ApiCall(
            "ClientRunner",
            0,
            frozenset({"hw_arch", "har"}),
            (
                f"{GUIDE}, 4.2 Parsing tutorial: ClientRunner(hw_arch=chosen_hw_arch) (tutorial code as "
                "reproduced in "
                "Vuong02011996/ai-engineer "
                "08_Hardware_AI/Raspberry_AI_KIT_HAT/code_convert/01_parser_onnx_2_har.py)",
                "hailo-ai/hailo_model_zoo hailo_model_zoo/main_driver.py: "
                "ClientRunner(hw_arch=args.hw_arch, har=args.har_path)",
            ),
        ),
        ApiCall(
            "translate_onnx_model",
            2,
            frozenset({"net_name", "start_node_names", "end_node_names", "net_input_shapes"}),
            (
                f"{GUIDE}, 4.2 Parsing tutorial / 5.1 Translating ONNX models: "
                "translate_onnx_model(onnx_path, "
                "onnx_model_name, start_node_names=[...], end_node_names=[...], net_input_shapes={...})",
                "luxonis/modelconverter modelconverter/packages/hailo/exporter.py: "
                "translate_onnx_model(path, net_name=, "
                "start_node_names=, net_input_shapes=, end_node_names=)",
                "ultralytics engine/exporter.py export_hailo: translate_onnx_model(str(f_onnx), name, "
                "end_node_names=end_nodes)",
            ),
        ),
        ApiCall(
            "get_hn_dict",
            0,
            frozenset(),
            (
                "luxonis/modelconverter hailo/exporter.py _get_hn_layer_info: "
                "runner.get_hn_dict()['layers'][...]['original_names']",
            ),
        ),
        ApiCall(
            "get_hn",
            0,
            frozenset(),
            (
                "hailo-ai/hailo_model_zoo hailo_model_zoo/core/hn_editor/layer_splitter.py: "
                "self._runner.get_hn()['layers']",
                "luxonis/modelconverter hailo/exporter.py _force_onnx_names: "
                "runner.get_hn()['layers'][...]['original_names']",
            ),
        ),
        ApiCall(
            "save_har",
            1,
            frozenset(),
            (f"{ZOO_UTILS} parse_model/optimize_model/compile_model: runner.save_har(path)",),
        ),
        ApiCall(
            "load_model_script",
            1,
            frozenset({"append"}),
            (
                f"{ZOO_UTILS} optimize_full_precision_model: runner.load_model_script(model_script) (path "
                "or text), append=True",
                f"{GUIDE}, 5.2 Model Scripts: client_runner.load_model_script('model_script.alls') (quoted "
                "by RidgeRun's "
                "Hailo Model Scripts wiki page)",
            ),
        ),
        ApiCall(
            "optimize",
            1,
            frozenset(),
            (
                f"{ZOO_UTILS} optimize_model: runner.optimize(calib_feed_callback)",
                f"{GUIDE}, 4.3 Model Optimization tutorial: runner.optimize(calib_dataset) with a (N, H, W, "
                "C) float32 array",
            ),
        ),
        ApiCall(
            "analyze_noise",
            1,
            frozenset({"batch_size", "data_count", "analyze_mode"}),
            (
                f"{GUIDE}, 4.6 Accuracy Analysis Tool tutorial: runner.analyze_noise(dataset, "
                "batch_size=16, data_count=64, "
                "analyze_mode='advanced') (as reproduced in public DFC tutorial copies; also "
                "runner.analyze_noise(data_path, "
                "batch_size=2, data_count=64))",
            ),
        ),
        ApiCall(
            "compile",
            0,
            frozenset(),
            (
                f"{ZOO_UTILS} compile_model: hef = runner.compile(); open(path, 'wb').write(hef)",
                f"{GUIDE}, 4.4 Compilation tutorial: hef = runner.compile()",
            ),
        ),
    )
}


@dataclass
class CallSite:
    line: int
    name: str
    positional: int
    keywords: list[str]


def dfc_calls(path: str | Path) -> list[CallSite]:
    """Every ``ClientRunner(...)`` and ``runner.<method>(...)`` call in a Python file."""
    tree = ast.parse(Path(path).read_text(), filename=str(path))
    calls = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id == "ClientRunner":
            name = "ClientRunner"
        elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "runner":
            name = f.attr
        else:
            continue
        calls.append(CallSite(node.lineno, name, len(node.args), [k.arg for k in node.keywords if k.arg]))
    return sorted(calls, key=lambda c: c.line)


def check_calls(path: str | Path) -> list[str]:
    """Problems with the file's DFC calls (empty when every call is documented as used)."""
    problems = []
    for call in dfc_calls(path):
        api = DOCUMENTED.get(call.name)
        if api is None:
            problems.append(f"line {call.line}: runner.{call.name}() is not in the documented DFC API list")
            continue
        if call.positional > api.max_positional:
            problems.append(
                f"line {call.line}: {call.name}() takes at most {api.max_positional} positional arguments, "
                f"got {call.positional}"
            )
        extra = set(call.keywords) - api.keywords
        if extra:
            problems.append(f"line {call.line}: {call.name}() has undocumented keywords {sorted(extra)}")
    return problems
