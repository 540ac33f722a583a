"""Enable DeGirum's ONNX/CPU runtime agent on an x86-64 Linux machine.

DeGirum PySDK's ONNX agent loads ``libonnxruntime.so.1`` from ONNX Runtime exactly 1.20.x, found
through its RUNPATH ``/usr/local/onnxruntime-linux-x64-1.20.1/lib`` (it needs the symbol version
VERS_1.20.1; other releases fail silently and the agent just does not appear). The onnxruntime
1.20.1 wheel carries that library, so we copy it from the installed wheel to where the agent looks.

    python -m runtime.degirum_setup          # idempotent; prints what it did
"""

from __future__ import annotations

import filecmp
import shutil
import sys
from pathlib import Path

AGENT_LIB_DIR = Path("/usr/local/onnxruntime-linux-x64-1.20.1/lib")
AGENT_LIB = AGENT_LIB_DIR / "libonnxruntime.so.1"
REQUIRED_VERSION = "1.20.1"


def wheel_library() -> Path:
    """libonnxruntime from the installed onnxruntime wheel; raises when it is not 1.20.1."""
    import onnxruntime

    if onnxruntime.__version__ != REQUIRED_VERSION:
        raise RuntimeError(
            f"onnxruntime {onnxruntime.__version__} is installed; DeGirum's ONNX/CPU agent needs the "
            f"library of exactly {REQUIRED_VERSION} (pip install onnxruntime=={REQUIRED_VERSION})"
        )
    lib = Path(onnxruntime.__file__).parent / "capi" / f"libonnxruntime.so.{REQUIRED_VERSION}"
    if not lib.is_file():
        raise RuntimeError(f"the onnxruntime wheel has no {lib.name} (looked in {lib.parent})")
    return lib


def enable_onnx_agent() -> str:
    """Copy the library into place (a copy, not a link: it must outlive the virtualenv)."""
    src = wheel_library()
    if AGENT_LIB.is_file() and filecmp.cmp(src, AGENT_LIB, shallow=False):
        return f"DeGirum ONNX/CPU agent: {AGENT_LIB} already in place"
    try:
        AGENT_LIB_DIR.mkdir(parents=True, exist_ok=True)
        tmp = AGENT_LIB.with_suffix(".tmp")
        shutil.copyfile(src, tmp)
        tmp.replace(AGENT_LIB)
    except PermissionError:
        raise RuntimeError(
            f"cannot write {AGENT_LIB} (run once as root: sudo {sys.executable} -m runtime.degirum_setup)"
        ) from None
    return f"DeGirum ONNX/CPU agent: installed {AGENT_LIB} from {src}"


def onnx_agent_available() -> bool:
    import degirum as dg

    return "ONNX/CPU" in dg.get_supported_devices("@local")


def main() -> int:
    try:
        print(enable_onnx_agent())
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    try:
        available = onnx_agent_available()
    except ImportError:
        print("degirum is not installed: the library is in place for when it is")
        return 0
    if not available:
        print(f"error: DeGirum still lists no ONNX/CPU device after installing {AGENT_LIB}", file=sys.stderr)
        return 1
    print("DeGirum ONNX/CPU agent: available")
    return 0


if __name__ == "__main__":
    sys.exit(main())
