"""Validation of PTX text by NVIDIA's own assembler, ``ptxas``."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from ringkernel.lowering.cuda.toolkit import find_ptxas
from ringkernel.ringir.diagnostics import CompileError


def check_ptx(text: str, arch: str = "sm_80") -> None:
    """Assembles ``text`` for ``arch`` with ptxas; raises CompileError with ptxas's message."""
    ptxas = find_ptxas()
    if ptxas is None:
        raise CompileError(
            "ptxas was not found: install the 'nvidia-cuda-nvcc' wheel "
            "(pip install nvidia-cuda-nvcc) or put a CUDA toolkit's bin/ on PATH"
        )
    with tempfile.TemporaryDirectory(prefix="ringkernel-ptxas-") as tmp:
        source = Path(tmp) / "kernel.ptx"
        source.write_text(text)
        proc = subprocess.run(
            [str(ptxas), f"-arch={arch}", "-o", str(Path(tmp) / "kernel.cubin"), str(source)],
            capture_output=True, text=True, check=False,
        )
    if proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip().replace(str(source), "<ptx>")
        raise CompileError(f"ptxas rejected the PTX for {arch}:\n{message}")
