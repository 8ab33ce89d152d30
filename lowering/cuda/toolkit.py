"""Finding NVIDIA's tools without a CUDA install: the pip wheels first, then CUDA_HOME.

``libdevice.10.bc`` ships in the ``nvidia-nvvm`` wheel and ``ptxas`` in the
``nvidia-cuda-nvcc`` wheel, both under the ``nvidia`` namespace package
(``nvidia/cu13/...`` for CUDA 13, ``nvidia/cuda_nvcc/...`` for CUDA 12).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

_WHEEL_DIRS = ("cu13", "cu12", "cuda_nvcc", "nvvm")


def _wheel_roots() -> list[Path]:
    spec = importlib.util.find_spec("nvidia")
    if spec is None or not spec.submodule_search_locations:
        return []
    roots = []
    for base in spec.submodule_search_locations:
        for sub in _WHEEL_DIRS:
            if (Path(base) / sub).is_dir():
                roots.append(Path(base) / sub)
    return roots


def _cuda_homes() -> list[Path]:
    homes = [os.environ.get(v) for v in ("CUDA_HOME", "CUDA_PATH")]
    return [Path(h) for h in homes if h] + [Path("/usr/local/cuda")]


def find_libdevice() -> Path | None:
    """``libdevice.10.bc``: from the nvidia-nvvm wheel, else ``$CUDA_HOME/nvvm/libdevice``."""
    for root in [*_wheel_roots(), *_cuda_homes()]:
        for candidate in (root / "nvvm" / "libdevice" / "libdevice.10.bc",
                          root / "libdevice" / "libdevice.10.bc"):
            if candidate.is_file():
                return candidate
    return None


def find_ptxas() -> Path | None:
    """``ptxas``: on PATH, else from the nvidia-cuda-nvcc wheel, else ``$CUDA_HOME/bin``."""
    on_path = shutil.which("ptxas")
    if on_path:
        return Path(on_path)
    for root in [*_wheel_roots(), *_cuda_homes()]:
        candidate = root / "bin" / "ptxas"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None
