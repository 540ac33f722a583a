"""runtime/ builds and runs as a package of its own (what `pip install ./runtime` installs)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import pytest
from helpers.runtime_dev_zoo import make_scene

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RUNTIME = PROJECT_ROOT / "runtime"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The runtime's wheel, built offline from a copy of the folder (the build writes beside its sources)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(RUNTIME, src, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            str(src),
            "-w",
            str(tmp / "dist"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    (whl,) = (tmp / "dist").glob("lpr_runtime-*.whl")
    return whl


@pytest.mark.slow
def test_wheel_holds_every_module_and_data_file_and_only_light_dependencies(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {
        f"runtime/{p.relative_to(RUNTIME).as_posix()}"
        for p in RUNTIME.rglob("*")
        if p.is_file() and p.suffix in (".py", ".yaml", ".md") and "__pycache__" not in p.parts
    }
    assert sources <= names, sorted(sources - names)
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    requires = sorted(
        line.split(":", 1)[1].split(";")[0].split(">")[0].split("=")[0].strip()
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    )
    assert requires == ["numpy", "onnxruntime", "opencv-python-headless", "pyyaml"]


@pytest.mark.slow
def test_wheel_ships_no_pickles(wheel):
    """The device wheel carries models as ONNX with their JSON (and the zoo's documents, region
    YAML): no .pt checkpoint or any other pickle."""
    names = zipfile.ZipFile(wheel).namelist()
    data = [n for n in names if not n.endswith(".py") and ".dist-info/" not in n]
    assert {Path(n).suffix for n in data} <= {".onnx", ".json", ".yaml", ".md"}, sorted(data)
    shipped = {
        f"runtime/zoo/{p.parent.name}/{p.name}" for p in (PROJECT_ROOT / "runtime" / "zoo").glob("*/*.onnx")
    }
    assert shipped and {n for n in data if n.startswith("runtime/zoo/") and n.endswith(".onnx")} == shipped


@pytest.mark.slow
def test_installed_package_runs_outside_the_repository(wheel, dev_zoo, tmp_path):
    target = tmp_path / "site"
    out = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    image = tmp_path / "car.jpg"
    cv2.imwrite(str(image), make_scene(0, 1)[0])
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run(
        [sys.executable, "-c", "import runtime; print(runtime.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert where.stdout.strip().startswith(str(target))
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "runtime",
            str(image),
            "--zoo",
            str(dev_zoo),
            "--json",
            "--det-conf",
            "0.005",
            "--region",
            "es",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    (line,) = run.stdout.splitlines()
    assert json.loads(line)["source"] == str(image)
