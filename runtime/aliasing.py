"""Which array arguments of a launch share memory, for the backends that copy.

CUDA and the cpu backend hand the kernel raw pointers, so an array passed
twice (``k(x, x)``) or two overlapping views are one memory: a write through
one parameter is seen through the other.  Backends that copy arguments into
device buffers (wgpu, Metal) must reproduce that, or the copy-back of an
unchanged duplicate overwrites what the kernel wrote.  This module finds the
groups of arguments whose bytes overlap, so such a backend can give each
group one device buffer.  Arguments are C-contiguous (``bind_arguments``
enforces it), so each is exactly the byte interval ``[address, address +
nbytes)``, and two arguments share memory exactly when their intervals meet.
A device array (:mod:`ringkernel.runtime.device_array`) is the interval
``[offset, offset + nbytes)`` of its buffer: it shares memory only with
device arrays in the same buffer.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class MemoryGroup:
    """Array arguments whose memory overlaps, with their place in the common span."""

    members: tuple[int, ...]
    """Argument positions, in order; ``members[0]`` starts lowest (ties: first passed)."""
    offsets: tuple[int, ...]
    """Byte offset of each member from the start of the span."""
    start: int
    """Address of the span's first byte."""
    nbytes: int
    """Bytes from the lowest start to the highest end of the members."""
    identical: bool
    """Every member is the same memory with the same dtype and size."""

    def span(self, args: Sequence[np.ndarray]) -> np.ndarray:
        """A writable uint8 view of the whole span (the members' memory, once)."""
        first = args[self.members[0]]
        if len(self.members) == 1 or self.identical:
            return first.reshape(-1).view(np.uint8)
        # Overlapping contiguous views lie in one allocation, whose bytes
        # [start, start + nbytes) the members cover without a gap.
        raw = (ctypes.c_ubyte * self.nbytes).from_address(self.start)
        return np.ctypeslib.as_array(raw)


def _address(array: np.ndarray) -> int:
    return int(array.__array_interface__["data"][0])


def _place(array: object) -> tuple[int, int]:
    """``(memory space, start)``: space 0 is host memory, else the device buffer's id."""
    if isinstance(array, np.ndarray):
        return 0, _address(array)
    return id(array.buffer), int(array.offset)  # type: ignore[attr-defined]


def memory_groups(args: Sequence[object], indices: Sequence[int]) -> list[MemoryGroup]:
    """The arrays ``args[i]`` (``i`` in ``indices``) grouped by shared memory.

    Groups come in the order of their first member in ``indices``; an empty
    array shares memory with nothing.
    """
    spans = []
    arrays: dict[int, Any] = {}
    space_of: dict[int, int] = {}
    for i in indices:
        array = args[i]
        arrays[i] = array
        space_of[i], start = _place(array)
        spans.append((start, start + int(array.nbytes), i))  # type: ignore[attr-defined]
    # Sweep by memory space and start: an interval that starts before the reach
    # of the group so far joins it (intervals are half-open; empty ones join nothing).
    group_of: dict[int, int] = {}
    reach, current, space = -1, -1, None
    live = sorted((s for s in spans if s[1] > s[0]), key=lambda s: (space_of[s[2]], s[0], s[2]))
    for start, end, i in live:
        if space_of[i] != space:
            space, reach = space_of[i], -1
        if start >= reach:
            current = i
        group_of[i] = current
        reach = max(reach, end)
    groups: dict[int, list[int]] = {}
    for i in indices:
        groups.setdefault(group_of.get(i, i), []).append(i)
    where = {i: (s, e) for s, e, i in spans}
    result = []
    for members in groups.values():
        first = min(members, key=lambda i: (where[i][0], members.index(i)))
        members = [first] + [i for i in members if i != first]
        start = where[first][0]
        end = max(where[i][1] for i in members)
        head = arrays[first]
        identical = all(
            where[i] == where[first] and arrays[i].dtype == head.dtype
            for i in members
        )
        result.append(MemoryGroup(
            members=tuple(members),
            offsets=tuple(where[i][0] - start for i in members),
            start=start,
            nbytes=end - start,
            identical=identical,
        ))
    return result
