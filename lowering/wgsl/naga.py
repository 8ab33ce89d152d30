"""naga validation of WGSL text, through wgpu's ``create_shader_module``.

naga lives inside wgpu-native and is reachable only through a device, so this
module also owns adapter selection and the one shared device per process
(the wgpu runtime reuses it).  wgpu is imported lazily: importing the
lowering never touches a GPU.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
import threading
from typing import Any

from ringkernel.lowering.wgsl.limits import check_workgroup_storage
from ringkernel.lowering.wgsl.target import F16_FEATURE
from ringkernel.ringir.diagnostics import CompileError

ADAPTER_ENV = "RINGKERNEL_WGPU_ADAPTER"

# Limits raised from WebGPU's defaults to whatever the adapter offers.
_RAISED_LIMITS = (
    "max-storage-buffers-per-shader-stage",
    "max-storage-buffer-binding-size",
    "max-buffer-size",
    "max-compute-invocations-per-workgroup",
    "max-compute-workgroup-size-x",
    "max-compute-workgroup-size-y",
    "max-compute-workgroup-size-z",
    "max-compute-workgroup-storage-size",
    "max-compute-workgroups-per-dimension",
    "max-uniform-buffer-binding-size",
    "max-bindings-per-bind-group",
)
_TYPE_RANK = {"DiscreteGPU": 0, "IntegratedGPU": 1, "VirtualGPU": 2, "CPU": 3}
_BACKEND_RANK = {"Vulkan": 0, "Metal": 0, "D3D12": 0, "OpenGL": 2}


class WgpuUnavailable(RuntimeError):
    """No usable wgpu adapter on this machine; the message says why."""


_lock = threading.Lock()
_device: Any = None
_adapter: Any = None
_failure: str | None = None


def describe_adapter(adapter: Any) -> str:
    info = adapter.info
    parts = (info.get("device"), info.get("vendor"), info.get("description"),
             info.get("adapter_type"), info.get("backend_type"))
    return " / ".join(str(p) for p in parts if p)


def select_adapter(adapters: list[Any]) -> Any:
    """The adapter to use: ``RINGKERNEL_WGPU_ADAPTER`` substring, else the best GPU."""
    if not adapters:
        raise WgpuUnavailable("wgpu found no adapter (no GPU and no software Vulkan driver)")
    wanted = os.environ.get(ADAPTER_ENV, "").strip()
    if wanted:
        matches = [a for a in adapters if wanted.lower() in describe_adapter(a).lower()]
        if not matches:
            names = "; ".join(describe_adapter(a) for a in adapters)
            raise WgpuUnavailable(f"{ADAPTER_ENV}={wanted!r} matches no adapter (have: {names})")
        adapters = matches

    def rank(item: tuple[int, Any]) -> tuple[int, int, int]:
        index, a = item
        return (
            _TYPE_RANK.get(a.info.get("adapter_type"), 4),
            _BACKEND_RANK.get(a.info.get("backend_type"), 1),
            index,
        )

    return min(enumerate(adapters), key=rank)[1]


def _restrict_backends() -> None:
    """Honours ``WGPU_BACKEND_TYPE`` at instance level, so other backends are not probed."""
    flag = {"Vulkan": "Vulkan", "Metal": "Metal", "D3D12": "DX12", "OpenGL": "GL"}.get(
        os.environ.get("WGPU_BACKEND_TYPE", "")
    )
    if flag is None:
        return
    try:
        from wgpu.backends.wgpu_native.extras import set_instance_extras

        set_instance_extras(backends=[flag])
    except Exception:  # an instance already exists, or an older wgpu: probe everything
        return


def _quiet_window_system_probe() -> None:
    """Mesa's Vulkan drivers probe Wayland while enumerating adapters and print an "error:"
    line when ``XDG_RUNTIME_DIR`` is unset (headless machines, CI). Compute needs no window
    system, so a private empty runtime dir is enough to keep stderr clean (removed at exit:
    every process that opens a device would otherwise leave one behind in /tmp)."""
    if not os.environ.get("XDG_RUNTIME_DIR"):
        path = tempfile.mkdtemp(prefix="ringkernel-xdg-")
        os.environ["XDG_RUNTIME_DIR"] = path
        atexit.register(shutil.rmtree, path, ignore_errors=True)


SUBGROUP_FEATURES = ("subgroup", "subgroup-barrier")
"""Optional device features requested when the adapter has them: WGSL's subgroup builtins
(rk.shfl, rk.ballot, ...) and naga's ``subgroupBarrier`` (rk.syncwarp)."""


def missing_subgroup_features(wgsl: str) -> list[str]:
    """The features a shader using subgroups (its entry points take ``subgroup_size``) needs
    that the shared device lacks."""
    if "@builtin(subgroup_size)" not in wgsl:
        return []
    needed = ["subgroup"] + (["subgroup-barrier"] if "subgroupBarrier()" in wgsl else [])
    return [f for f in needed if f not in get_device().features]


def get_device() -> Any:
    """The shared wgpu device (created once); raises :class:`WgpuUnavailable`."""
    global _device, _adapter, _failure
    with _lock:
        if _device is not None:
            return _device
        if _failure is not None:
            raise WgpuUnavailable(_failure)
        try:
            import wgpu

            _restrict_backends()
            _quiet_window_system_probe()
            adapter = select_adapter(list(wgpu.gpu.enumerate_adapters_sync()))
            limits = {k: adapter.limits[k] for k in _RAISED_LIMITS if k in adapter.limits}
            # optional features go on the device, not just the adapter, so kernels can use them
            features = [f for f in (*SUBGROUP_FEATURES, F16_FEATURE) if f in adapter.features]
            _device = adapter.request_device_sync(
                label="ringkernel", required_limits=limits, required_features=features
            )
            _adapter = adapter
        except WgpuUnavailable as exc:
            _failure = str(exc)
            raise
        except Exception as exc:  # wgpu missing, driver failure: report, do not crash
            _failure = f"wgpu could not create a device: {type(exc).__name__}: {exc}"
            raise WgpuUnavailable(_failure) from None
        return _device


def device_has_f16() -> bool:
    """Whether the shared device has ``shader-f16`` (WGSL ``enable f16;``); False without a device."""
    try:
        return F16_FEATURE in get_device().features
    except WgpuUnavailable:
        return False


def get_adapter() -> Any:
    get_device()
    return _adapter


_POSITION = re.compile(r"┌─\s*[^\n]*?:(\d+):(\d+)")


def naga_error(exc: BaseException, wgsl: str, label: str = "<wgsl>") -> CompileError:
    """A ``CompileError`` at the WGSL line naga (or wgpu) complained about."""
    message = str(exc)
    lines = [ln.rstrip() for ln in message.splitlines()]
    summary = next(
        (ln.strip() for ln in lines if "error" in ln.lower() and "caused by" not in ln.lower()
         and ln.strip() != "Validation Error"),
        lines[0].strip() if lines else type(exc).__name__,
    )
    notes: list[str] = []
    for ln in lines:
        text = ln.strip()
        if text.startswith("= "):
            text = text[2:].strip()
            if text and text not in notes:
                notes.append(text)
    line = col = None
    source_line = None
    found = _POSITION.search(message)
    if found:
        line, col = int(found.group(1)), int(found.group(2))
        wgsl_lines = wgsl.splitlines()
        if 1 <= line <= len(wgsl_lines):
            source_line = wgsl_lines[line - 1]
    return CompileError(
        f"naga rejected the generated WGSL: {summary}",
        filename=label,
        line=line,
        col=col,
        source_line=source_line,
        notes=tuple(notes),
    )


def create_shader_module(device: Any, wgsl: str, label: str = "<wgsl>") -> Any:
    """``device.create_shader_module`` with naga's errors as ``CompileError``.

    A shader using subgroups on a device without the feature is refused here,
    naming the feature and the adapter, before naga's own less direct message.
    """
    import wgpu

    missing = missing_subgroup_features(wgsl) if device is _device else []
    if missing:
        raise CompileError(
            f"{label}: this kernel uses subgroup operations (rk.shfl, rk.ballot, rk.lane_id, ...), "
            f"but the wgpu adapter ({describe_adapter(_adapter)}) lacks the feature(s) "
            f"{', '.join(repr(f) for f in missing)}",
            notes=("run it on the cpu backend, or on an adapter with subgroup support",),
        )

    try:
        return device.create_shader_module(label=label, code=wgsl)
    except wgpu.GPUError as exc:
        raise naga_error(exc, wgsl, label) from None


def check_wgsl(text: str, label: str = "<wgsl>") -> None:
    """Validates WGSL with naga; raises ``CompileError`` pointing at the bad line.

    Raises :class:`WgpuUnavailable` when no wgpu device can be created here.
    Workgroup memory above WebGPU's guaranteed 16 KiB is an error too (naga
    does not count it; see ``limits.py``).
    """
    create_shader_module(get_device(), text, label)
    check_workgroup_storage(text, label)
