"""The actor loop kernel's parameter order is declared once (``layout.KERNEL_PARAMS``)."""

import dataclasses

import numpy as np

from ringkernel.ringir import layout as L
from ringkernel.runtime.actor_host import ActorMemory


def test_actor_memory_fields_are_the_kernel_params() -> None:
    names = [f.name for f in dataclasses.fields(ActorMemory) if f.name != "out_to_host"]
    assert tuple(names) == L.KERNEL_PARAMS


def test_arrays_follow_kernel_params() -> None:
    arrays = {name: np.full(4, i, dtype=np.uint32) for i, name in enumerate(L.KERNEL_PARAMS)}
    memory = ActorMemory(**arrays, out_to_host=True)
    assert all(a is arrays[name] for name, a in zip(L.KERNEL_PARAMS, memory.arrays, strict=True))
