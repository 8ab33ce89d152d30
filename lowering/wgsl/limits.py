"""WebGPU's guaranteed workgroup memory, checked on WGSL text for ``check_wgsl``.

A device may offer more than WebGPU's default ``maxComputeWorkgroupStorageSize``
(16384 bytes), so the emitter emits any size and the wgpu runtime compares a
kernel with its own device's limit at launch.  ``--check`` asks whether the
text runs *everywhere*, and naga does not count workgroup memory, so this
module does: per ``@compute`` entry point, the ``var<workgroup>`` variables it
and the functions it calls name, each rounded up to 16 bytes as the WebGPU
spec counts them.
"""

from __future__ import annotations

import re

from ringkernel.ringir.diagnostics import CompileError, SourceLoc
from ringkernel.ringir.types import ArrayType

GUARANTEED_WORKGROUP_STORAGE = 16384

MAX_CONST_TABLE_ELEMENTS = 256
"""The largest embedded table WGSL gets as a ``const`` array.  naga indexes a
``const`` array at run time through a copy of the whole array, and a driver
compiles that copy element by element: 1024 elements take about a minute on
lavapipe, 16384 do not finish.  Larger tables are refused, not slow."""


def check_const_table(ty: ArrayType, loc: SourceLoc | None) -> None:
    """Raises ``CompileError`` at ``loc`` when an embedded table is too large for WGSL."""
    if ty.size is not None and ty.size > MAX_CONST_TABLE_ELEMENTS:
        raise CompileError.at(
            loc,
            f"this module-level array has {ty.size} elements; WGSL embeds at most "
            f"{MAX_CONST_TABLE_ELEMENTS} (larger const arrays compile very slowly); pass it as an "
            "Array parameter for the wgsl target",
        )

_WORKGROUP_VAR = re.compile(r"var<workgroup>\s+(\w+)\s*:\s*([^;]+);")
_FUNCTION = re.compile(r"(@compute\b[^{;]*?)?\bfn\s+(\w+)\s*\(")
_ARRAY = re.compile(r"array<\s*(.+)\s*,\s*(\d+)[iu]?\s*>")
_SCALAR_BYTES = {"f32": 4, "i32": 4, "u32": 4, "bool": 4, "f16": 2}
_IDENT = re.compile(r"[A-Za-z_]\w*")


def type_bytes(spelling: str) -> int | None:
    """SizeOf of a WGSL scalar, ``atomic<T>`` or (nested) fixed-size array; None if unknown."""
    spelling = spelling.strip()
    if spelling in _SCALAR_BYTES:
        return _SCALAR_BYTES[spelling]
    if spelling.startswith("atomic<") and spelling.endswith(">"):
        return type_bytes(spelling[len("atomic<"):-1])
    match = _ARRAY.fullmatch(spelling)
    if match is None:
        return None
    elem = type_bytes(match.group(1))
    return None if elem is None else elem * int(match.group(2))


def _functions(text: str) -> dict[str, tuple[bool, str]]:
    """Function name -> (is a compute entry point, body text)."""
    out = {}
    for match in _FUNCTION.finditer(text):
        start = text.find("{", match.end())
        depth, end = 0, start
        for end in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            if depth == 0:
                break
        out[match.group(2)] = (match.group(1) is not None, text[start:end + 1])
    return out


def check_workgroup_storage(
    text: str, label: str = "<wgsl>", limit: int = GUARANTEED_WORKGROUP_STORAGE
) -> None:
    """Raises ``CompileError`` at the workgroup variable that takes an entry point past ``limit``."""
    variables = {m.group(1): m for m in _WORKGROUP_VAR.finditer(text)}
    if not variables:
        return
    functions = _functions(text)
    names = {name: set(_IDENT.findall(body)) for name, (_, body) in functions.items()}
    for entry, (is_compute, _) in functions.items():
        if not is_compute:
            continue
        reached, pending = {entry}, [entry]
        while pending:
            for callee in names[pending.pop()] & functions.keys() - reached:
                reached.add(callee)
                pending.append(callee)
        used = set().union(*(names[f] for f in reached)) & variables.keys()
        total = 0
        for var in sorted(used, key=lambda v: variables[v].start()):
            total += -(-(type_bytes(variables[var].group(2)) or 0) // 16) * 16
            if total > limit:
                start = variables[var].start()
                line = text.count("\n", 0, start) + 1
                source_line = text.split("\n")[line - 1]
                raise CompileError(
                    f"entry point '{entry}' uses {total} bytes of workgroup memory; WebGPU "
                    f"guarantees only {limit} (maxComputeWorkgroupStorageSize)",
                    filename=label, line=line, col=start - (text.rfind("\n", 0, start) + 1) + 1,
                    source_line=source_line,
                    notes=("an adapter may allow more: the wgpu runtime checks its device's "
                           "limit at launch",),
                )
