"""The Python-visible names of the kernel language.

These objects do nothing when called from ordinary Python; the frontend
recognizes them by identity (under any alias) while translating a kernel.
"""

from __future__ import annotations

from typing import Any

from ringkernel.ringir.types import AddressSpace, ArrayType, ScalarType


class Intrinsic:
    """A kernel-language builtin such as ``rk.global_id`` or ``rk.atomic_add``."""

    def __init__(self, name: str, doc: str) -> None:
        self.name = name
        self.__name__ = name
        self.__qualname__ = name
        self.__doc__ = doc

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"rk.{self.name}() can only be used inside a @rk.kernel or @rk.func function")

    def __repr__(self) -> str:
        return f"<ringkernel intrinsic {self.name}>"


def _intrinsic(name: str, doc: str) -> Intrinsic:
    return Intrinsic(name, doc)


thread_id = _intrinsic("thread_id", "Index of the thread within its block along dim 0..2.")
block_id = _intrinsic("block_id", "Index of the block within the grid along dim 0..2.")
block_dim = _intrinsic("block_dim", "Threads per block along dim 0..2.")
grid_dim = _intrinsic("grid_dim", "Blocks in the grid along dim 0..2.")
global_id = _intrinsic("global_id", "block_id(d) * block_dim(d) + thread_id(d).")
shared_array = _intrinsic("shared_array", "shared_array(T, n): a per-block array of n T's.")
barrier = _intrinsic("barrier", "Waits for every thread of the block; orders shared memory.")
rsqrt = _intrinsic("rsqrt", "1 / sqrt(x).")
fma = _intrinsic("fma", "fma(a, b, c) = a * b + c with one rounding.")

ATOMIC_INTRINSICS = {
    "atomic_add": "add",
    "atomic_sub": "sub",
    "atomic_min": "min",
    "atomic_max": "max",
    "atomic_and": "and",
    "atomic_or": "or",
    "atomic_xor": "xor",
    "atomic_exchange": "exchange",
}
atomic_add = _intrinsic("atomic_add", "atomic_add(a, i, v): a[i] += v atomically; returns the old a[i].")
atomic_sub = _intrinsic("atomic_sub", "atomic_sub(a, i, v): a[i] -= v atomically; returns the old a[i].")
atomic_min = _intrinsic("atomic_min", "atomic_min(a, i, v): a[i] = min(a[i], v); returns the old a[i].")
atomic_max = _intrinsic("atomic_max", "atomic_max(a, i, v): a[i] = max(a[i], v); returns the old a[i].")
atomic_and = _intrinsic("atomic_and", "atomic_and(a, i, v): a[i] &= v; returns the old a[i].")
atomic_or = _intrinsic("atomic_or", "atomic_or(a, i, v): a[i] |= v; returns the old a[i].")
atomic_xor = _intrinsic("atomic_xor", "atomic_xor(a, i, v): a[i] ^= v; returns the old a[i].")
atomic_exchange = _intrinsic("atomic_exchange", "atomic_exchange(a, i, v): a[i] = v; returns the old a[i].")
atomic_cas = _intrinsic(
    "atomic_cas", "atomic_cas(a, i, expected, desired): compare-and-swap; returns the old a[i]."
)

INTRINSICS: dict[str, Intrinsic] = {
    obj.name: obj
    for obj in (
        thread_id,
        block_id,
        block_dim,
        grid_dim,
        global_id,
        shared_array,
        barrier,
        rsqrt,
        fma,
        atomic_add,
        atomic_sub,
        atomic_min,
        atomic_max,
        atomic_and,
        atomic_or,
        atomic_xor,
        atomic_exchange,
        atomic_cas,
    )
}


class Array:
    """``Array[T]``: a global (storage) buffer parameter; pass a numpy array of dtype T."""

    def __class_getitem__(cls, elem: Any) -> ArrayType:
        if not isinstance(elem, ScalarType):
            raise TypeError(f"Array[...] takes a scalar type such as f32, got {elem!r}")
        return ArrayType(elem, AddressSpace.GLOBAL)

    def __init__(self) -> None:
        raise TypeError("Array[T] is a type annotation; pass a numpy array to the kernel")
