"""RingKernel: GPU kernels and persistent GPU actors written in Python.

import ringkernel as rk
from ringkernel import Array, f32, i32

@rk.kernel
def saxpy(a: f32, x: Array[f32], y: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        y[i] = a * x[i] + y[i]
"""

from ringkernel import ringir
from ringkernel.actors import (
    ActorAbandonedWarning,
    ActorRef,
    ActorSystem,
    ActorSystemStopped,
    ActorType,
    QueueFull,
    ReceiveTimeout,
    actor,
    message,
)
from ringkernel.diagnostics import CompileError, SourceLoc
from ringkernel.frontends.dsl import (
    Array,
    atomic_add,
    atomic_and,
    atomic_cas,
    atomic_exchange,
    atomic_max,
    atomic_min,
    atomic_or,
    atomic_sub,
    atomic_xor,
    barrier,
    bitcast,
    block_dim,
    block_id,
    fma,
    global_id,
    grid_dim,
    rsqrt,
    shared_array,
    thread_id,
)
from ringkernel.hlc import Hlc
from ringkernel.kernel import DeviceFunction, Kernel, func, kernel
from ringkernel.ringir.types import BOOL as bool_
from ringkernel.ringir.types import F32 as f32
from ringkernel.ringir.types import F64 as f64
from ringkernel.ringir.types import I32 as i32
from ringkernel.ringir.types import I64 as i64
from ringkernel.ringir.types import U32 as u32
from ringkernel.ringir.types import U64 as u64
from ringkernel.runtime.arguments import BoundsError, LaunchError

__version__ = "0.1.0"


def backends() -> list[str]:
    """The backends usable on this machine, e.g. ``["cpu", "wgpu"]``."""
    from ringkernel.runtime import backends as _backends

    return _backends()


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
    "thread_id",
    "block_id",
    "block_dim",
    "grid_dim",
    "global_id",
    "shared_array",
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
    "backends",
    "default_backend",
    "message",
    "actor",
    "ActorSystem",
    "ActorRef",
    "ActorType",
    "ActorSystemStopped",
    "ActorAbandonedWarning",
    "QueueFull",
    "ReceiveTimeout",
    "Hlc",
    "__version__",
]
