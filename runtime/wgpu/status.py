"""The shader's status buffer: what the checked and loop-guarded WGSL report back.

``lowering/wgsl/emitter.py`` defines the layout (``STATUS_WORDS``); this
module makes the buffers, binds them at ``@group(1)`` and turns a finished
dispatch's status into the error a user should see.

Mesa's llvmpipe (lavapipe on Vulkan, llvmpipe on GL) ends every shader loop
once the invocation has run 65,535 loop iterations *in total* (the counter is
shared by all loops and never reset; gallivm's ``LP_MAX_TGSI_LOOP_ITERATIONS``)
and carries on as if the loop had finished.  No device or shader option turns
it off and no loop shape avoids it, so on such an adapter kernels are compiled
with the loop guard and a stopped loop raises :class:`LoopLimitError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ringkernel.lowering.wgsl.emitter import (
    SHARED_ARRAY_ID,
    STATUS_LOOP_CUT,
    STATUS_OUT_OF_BOUNDS,
    STATUS_WORDS,
)
from ringkernel.runtime.arguments import BoundsError

LLVMPIPE_LOOP_LIMIT = 65_535


class LoopLimitError(RuntimeError):
    """The driver stopped a shader loop early, so the kernel's results would be wrong."""


def has_loop_limit(adapter_info: Any) -> bool:
    """True for Mesa's llvmpipe (lavapipe), whose shader loops stop after 65,535 iterations."""
    text = " ".join(str(adapter_info.get(k, "")) for k in ("vendor", "device", "description"))
    return "llvmpipe" in text.lower()


def status_layout_entries(checked: bool) -> list[dict]:
    """``@group(1)``: the status words and, when checked, the arrays' lengths."""
    import wgpu

    entries = [{
        "binding": 0,
        "visibility": wgpu.ShaderStage.COMPUTE,
        "buffer": {"type": wgpu.BufferBindingType.storage},
    }]
    if checked:
        entries.append({
            "binding": 1,
            "visibility": wgpu.ShaderStage.COMPUTE,
            "buffer": {"type": wgpu.BufferBindingType.read_only_storage},
        })
    return entries


def status_bind_group(
    device: Any, layout: Any, lengths: Sequence[int] | None
) -> tuple[Any, Any]:
    """``(bind group, status buffer)`` with zeroed status and the given array lengths."""
    import wgpu

    usage = wgpu.BufferUsage
    status = device.create_buffer_with_data(
        data=np.zeros(STATUS_WORDS, np.uint32).tobytes(),
        usage=usage.STORAGE | usage.COPY_SRC,
    )
    entries = [{"binding": 0, "resource": {"buffer": status}}]
    if lengths is not None:
        words = np.array(list(lengths) or [0], dtype=np.uint32)
        buf = device.create_buffer_with_data(data=words.tobytes(), usage=usage.STORAGE)
        entries.append({"binding": 1, "resource": {"buffer": buf}})
    return device.create_bind_group(layout=layout, entries=entries), status


def read_status(device: Any, status: Any) -> np.ndarray:
    return np.frombuffer(device.queue.read_buffer(status), dtype=np.uint32)[:STATUS_WORDS]


def loop_limit_error(words: np.ndarray, what: str, adapter: str) -> LoopLimitError | None:
    """The error for a loop the driver stopped, or None."""
    if not int(words[0]) & STATUS_LOOP_CUT:
        return None
    return LoopLimitError(
        f"{what} ran into the wgpu driver's loop limit: {adapter} stops a shader's loops "
        f"after {LLVMPIPE_LOOP_LIMIT:,} iterations in total per invocation and carries on "
        "as if they had finished, so the results would be wrong (they were not copied back). "
        "Split the work over more threads or launches, or use the cpu backend or a GPU adapter."
    )


def _first_name(label: str) -> str | None:
    """The parameter a storage label names first (``'a' (also passed as 'b')`` -> ``a``)."""
    parts = label.split("'")
    return parts[1] if len(parts) > 2 else None


def bounds_error(
    words: np.ndarray,
    kernel: str,
    storage: dict[int, str],
    shared: Callable[[], Sequence[str]],
) -> BoundsError | None:
    """The :class:`BoundsError` for the first bad access recorded, or None.

    ``storage`` names each storage binding's parameter(s); ``shared()`` lists
    the kernel's shared arrays in the emitter's order (asked only when needed).
    """
    if not int(words[0]) & STATUS_OUT_OF_BOUNDS:
        return None
    ident, bits, length, signed = (int(w) for w in words[2:6])
    index = int(np.uint32(bits).view(np.int32)) if signed else bits
    if ident >= SHARED_ARRAY_ID:
        k, labels = ident - SHARED_ARRAY_ID, shared()
        label = labels[k] if k < len(labels) else ""
        name = f"the {label}" if label.startswith(("local ", "constant ")) else (
            f"the shared array {label}" if label else "a shared array"
        )
    else:
        name = f"array parameter {storage.get(ident, f'#{ident}')}"
    return BoundsError(
        f"kernel '{kernel}': index {index} is out of bounds for {name} of length {length} "
        "(checked launch on wgpu; the access was skipped)",
        array=_first_name(storage.get(ident, "")) if ident < SHARED_ARRAY_ID else None,
        index=index,
        length=length,
    )
