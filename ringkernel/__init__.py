"""RingKernel: GPU kernels and persistent GPU actors written in Python.

import ringkernel as rk
from ringkernel import Array, f32, i32

@rk.kernel
def saxpy(a: f32, x: Array[f32], y: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        y[i] = a * x[i] + y[i]
"""

import importlib
from typing import Any, Literal, overload

from ringkernel import ringir
from ringkernel.ringir.diagnostics import CompileError, SourceLoc
from ringkernel.ringir.types import BOOL as bool_
from ringkernel.ringir.types import F16 as f16
from ringkernel.ringir.types import F32 as f32
from ringkernel.ringir.types import F64 as f64
from ringkernel.ringir.types import I8 as i8
from ringkernel.ringir.types import I16 as i16
from ringkernel.ringir.types import I32 as i32
from ringkernel.ringir.types import I64 as i64
from ringkernel.ringir.types import U8 as u8
from ringkernel.ringir.types import U16 as u16
from ringkernel.ringir.types import U32 as u32
from ringkernel.ringir.types import U64 as u64
from ringkernel.ringir.version import __version__

_LAZY = {  # public name -> the module that defines it, imported on first use (PEP 562)
    "ActorAbandonedWarning": "ringkernel.actors",
    "ActorFailed": "ringkernel.actors",
    "HandlerAborted": "ringkernel.actors",
    "ActorRef": "ringkernel.actors",
    "ActorSystem": "ringkernel.actors",
    "ActorSystemStopped": "ringkernel.actors",
    "ActorType": "ringkernel.actors",
    "ActorGroup": "ringkernel.groups",
    "AdmissionError": "ringkernel.groups",
    "SendCycleError": "ringkernel.routing",
    "QueueFull": "ringkernel.runtime.queues",
    "ReceiveTimeout": "ringkernel.runtime.queues",
    "actor": "ringkernel.actors",
    "message": "ringkernel.actors",
    "Array": "ringkernel.frontends.dsl",
    "TypeVar": "ringkernel.frontends.dsl",
    "Vec": "ringkernel.frontends.dsl",
    "Port": "ringkernel.frontends.dsl",
    "atomic_add": "ringkernel.frontends.dsl",
    "atomic_and": "ringkernel.frontends.dsl",
    "atomic_cas": "ringkernel.frontends.dsl",
    "atomic_exchange": "ringkernel.frontends.dsl",
    "atomic_max": "ringkernel.frontends.dsl",
    "atomic_min": "ringkernel.frontends.dsl",
    "atomic_or": "ringkernel.frontends.dsl",
    "atomic_sub": "ringkernel.frontends.dsl",
    "atomic_xor": "ringkernel.frontends.dsl",
    "barrier": "ringkernel.frontends.dsl",
    "bitcast": "ringkernel.frontends.dsl",
    "block_dim": "ringkernel.frontends.dsl",
    "block_id": "ringkernel.frontends.dsl",
    "fma": "ringkernel.frontends.dsl",
    "global_id": "ringkernel.frontends.dsl",
    "grid_dim": "ringkernel.frontends.dsl",
    "rsqrt": "ringkernel.frontends.dsl",
    "shared_array": "ringkernel.frontends.dsl",
    "local_array": "ringkernel.frontends.dsl",
    "thread_id": "ringkernel.frontends.dsl",
    "popc": "ringkernel.frontends.dsl",
    "clz": "ringkernel.frontends.dsl",
    "ffs": "ringkernel.frontends.dsl",
    "brev": "ringkernel.frontends.dsl",
    "clamp": "ringkernel.frontends.dsl",
    "atomic_inc": "ringkernel.frontends.dsl",
    "atomic_dec": "ringkernel.frontends.dsl",
    "lane_id": "ringkernel.frontends.dsl",
    "warp_size": "ringkernel.frontends.dsl",
    "shfl": "ringkernel.frontends.dsl",
    "shfl_up": "ringkernel.frontends.dsl",
    "shfl_down": "ringkernel.frontends.dsl",
    "shfl_xor": "ringkernel.frontends.dsl",
    "ballot": "ringkernel.frontends.dsl",
    "vote_any": "ringkernel.frontends.dsl",
    "vote_all": "ringkernel.frontends.dsl",
    "syncwarp": "ringkernel.frontends.dsl",
    "grid_sync": "ringkernel.frontends.dsl",
    "barrier_count": "ringkernel.frontends.dsl",
    "barrier_and": "ringkernel.frontends.dsl",
    "barrier_or": "ringkernel.frontends.dsl",
    "dynamic_shared_array": "ringkernel.frontends.dsl",
    "DeviceFunction": "ringkernel.kernels",
    "Kernel": "ringkernel.kernels",
    "func": "ringkernel.kernels",
    "kernel": "ringkernel.kernels",
    "struct": "ringkernel.kernels",
    "BoundsError": "ringkernel.runtime.arguments",
    "LaunchError": "ringkernel.runtime.arguments",
    "Hlc": "ringkernel.runtime.hlc",
    "DeviceArray": "ringkernel.runtime.device_array",
    "to_device": "ringkernel.runtime.device_array",
    "device_array": "ringkernel.runtime.device_array",
    "device_array_like": "ringkernel.runtime.device_array",
    "from_dlpack": "ringkernel.runtime.device_array",
    "synchronize": "ringkernel.runtime.device_array",
    "memory_info": "ringkernel.runtime.device_array",
    "trim_memory": "ringkernel.runtime.device_array",
    "from_cuda_array_interface": "ringkernel.runtime.device_array",
    "trace": "ringkernel.observability.trace",
}


def __getattr__(name: str) -> Any:
    """Loads the frontend, actor system and runtimes on first use, so ``import ringkernel`` stays cheap."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ringkernel' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


@overload
def backends(reasons: Literal[False] = False) -> list[str]: ...
@overload
def backends(reasons: Literal[True]) -> dict[str, str]: ...
def backends(reasons: bool = False) -> list[str] | dict[str, str]:
    """The backends usable on this machine, e.g. ``["cpu", "wgpu"]``.

    ``reasons=True`` gives every backend instead, mapped to why it cannot run
    here (``""`` when it can): for cuda, which binding to install, a missing
    driver library, a driver too old, or no device.
    """
    from ringkernel.runtime import backend_reasons
    from ringkernel.runtime import backends as _backends

    return backend_reasons() if reasons else _backends()


def default_backend() -> str:
    """The backend ``kernel[grid, block](...)`` uses when none is named."""
    from ringkernel.runtime import default_backend as _default

    return _default()


__all__ = [
    "ringir",
    "CompileError",
    "SourceLoc",
    "LaunchError",
    "BoundsError",
    "Array",
    "kernel",
    "func",
    "Kernel",
    "DeviceFunction",
    "f32",
    "f64",
    "i32",
    "u32",
    "i64",
    "u64",
    "bool_",
    "i8",
    "u8",
    "i16",
    "u16",
    "f16",
    "TypeVar",
    "Port",
    "thread_id",
    "block_id",
    "block_dim",
    "grid_dim",
    "global_id",
    "shared_array",
    "local_array",
    "barrier",
    "rsqrt",
    "fma",
    "atomic_add",
    "atomic_sub",
    "atomic_min",
    "atomic_max",
    "atomic_and",
    "atomic_or",
    "atomic_xor",
    "atomic_exchange",
    "atomic_cas",
    "bitcast",
    "popc",
    "clz",
    "ffs",
    "brev",
    "clamp",
    "atomic_inc",
    "atomic_dec",
    "lane_id",
    "warp_size",
    "shfl",
    "shfl_up",
    "shfl_down",
    "shfl_xor",
    "ballot",
    "vote_any",
    "vote_all",
    "syncwarp",
    "grid_sync",
    "barrier_count",
    "barrier_and",
    "barrier_or",
    "dynamic_shared_array",
    "backends",
    "default_backend",
    "message",
    "actor",
    "ActorSystem",
    "ActorRef",
    "ActorType",
    "ActorGroup",
    "AdmissionError",
    "SendCycleError",
    "ActorSystemStopped",
    "ActorAbandonedWarning",
    "ActorFailed",
    "HandlerAborted",
    "QueueFull",
    "ReceiveTimeout",
    "Hlc",
    "DeviceArray",
    "to_device",
    "device_array",
    "device_array_like",
    "from_dlpack",
    "synchronize",
    "memory_info",
    "trim_memory",
    "from_cuda_array_interface",
    "struct",
    "Vec",
    "trace",
    "__version__",
]
