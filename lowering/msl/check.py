"""``check_msl``: clang type-checks emitted MSL as C++ against the Metal shim.

No Mac is needed: ``shim/metal_shim.h`` declares exactly the Metal library
surface the emitter uses, with strict signatures, so clang accepts the text
only if it is type-correct.  Attributes such as ``[[buffer(0)]]`` are unknown
to clang and ignored (that one warning is silenced); implicit conversions are
errors because the emitter always converts explicitly.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

from ringkernel.ringir.diagnostics import CompileError

_CANDIDATES = ("clang", *(f"clang-{v}" for v in range(30, 12, -1)), "clang++")

CHECK_FLAGS = (
    "-x", "c++", "-std=c++17", "-fsyntax-only", "-fno-color-diagnostics",
    "-ferror-limit=20", "-Wno-unknown-attributes",
    "-Werror=conversion", "-Werror=sign-conversion", "-Werror=return-type",
    "-Werror=uninitialized",
)

_DIAGNOSTIC = re.compile(r"^(?P<file>.*?):(?P<line>\d+):(?P<col>\d+): (?:fatal )?error: (?P<msg>.*)$")


def shim_header_path() -> Path:
    """The Metal shim header shipped inside the package."""
    return Path(str(resources.files("ringkernel.lowering.msl") / "shim" / "metal_shim.h"))


def find_clang() -> str:
    """clang on this machine: ``RINGKERNEL_CLANG``, else clang, clang-NN on PATH."""
    chosen = os.environ.get("RINGKERNEL_CLANG")
    if chosen:
        found = shutil.which(chosen)
        if not found:
            raise CompileError(f"RINGKERNEL_CLANG={chosen!r} is not an executable on PATH")
        return found
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise CompileError(
        "checking MSL needs clang, and none was found on PATH "
        "(install it, e.g. `apt-get install clang`, or set RINGKERNEL_CLANG)"
    )


def write_include_dir(directory: Path) -> None:
    """Makes ``#include <metal_stdlib>`` resolve to the shim inside ``directory``."""
    shutil.copyfile(shim_header_path(), directory / "metal_shim.h")
    (directory / "metal_stdlib").write_text('#include "metal_shim.h"\n')


def check_msl(text: str) -> None:
    """Raises :class:`CompileError` (clang's message, the MSL line) unless clang accepts ``text``."""
    clang = find_clang()
    with tempfile.TemporaryDirectory(prefix="ringkernel-msl-") as tmp:
        directory = Path(tmp)
        write_include_dir(directory)
        source = directory / "kernel.metal"
        source.write_text(text)
        proc = subprocess.run(
            [clang, *CHECK_FLAGS, "-isystem", str(directory), str(source)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    if proc.returncode != 0:
        raise _rejection(text, proc.stderr.replace(str(source), "<msl>").replace(tmp, "<shim>"))


def _rejection(text: str, output: str) -> CompileError:
    lines = text.splitlines()
    first = None
    for out_line in output.splitlines():
        match = _DIAGNOSTIC.match(out_line)
        if match and (first is None or match["file"] == "<msl>"):
            first = match
            if match["file"] == "<msl>":
                break
    if first is None or first["file"] != "<msl>":
        message = first["msg"] if first else "clang failed"
        return CompileError(f"clang rejected the MSL: {message}", notes=(output.strip(),))
    line, col = int(first["line"]), int(first["col"])
    source_line = lines[line - 1] if 0 < line <= len(lines) else None
    return CompileError(
        f"clang rejected the MSL: {first['msg']}",
        filename="<msl>",
        line=line,
        col=col,
        source_line=source_line,
        notes=(output.strip(),),
    )
