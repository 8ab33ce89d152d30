"""The host side of checked launches: array lengths in, a clear BoundsError out.

A checked build (:mod:`ringkernel.lowering.llvm.bounds`) reads one int64
length per kernel parameter and fills a three-word violation record; this
module makes both for a launch and turns a filled record into
:class:`~ringkernel.runtime.arguments.BoundsError`.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

from ringkernel.lowering.llvm.bounds import RECORD_WORDS, BoundsSite
from ringkernel.lowering.llvm.targets import memory_type_size
from ringkernel.ringir import Function
from ringkernel.ringir.types import ArrayType
from ringkernel.runtime.arguments import BoundsError


class BoundsRecord:
    """Lengths and violation record of one checked launch (kept alive during it).

    Plain ctypes arrays: a launch pays microseconds for them, numpy's would cost more.
    """

    def __init__(self, fn: Function, args: Sequence[Any]) -> None:
        # elements of the parameter's type that fit in the buffer: safe even
        # if a direct backend caller passed an array of another dtype
        lengths = [
            a.nbytes // memory_type_size(p.type.elem) if isinstance(p.type, ArrayType) else 0
            for p, a in zip(fn.params, args)
        ]
        self._fill(lengths)

    @classmethod
    def from_sizes(cls, lengths: list[int]) -> BoundsRecord:
        """A record for a launch whose arrays have ``lengths`` elements (0 for scalars)."""
        record = cls.__new__(cls)
        record._fill(lengths)
        return record

    def reset(self, lengths: list[int]) -> None:
        """Reuses this record for another launch with arrays of ``lengths`` elements."""
        self.lengths[: len(lengths)] = lengths  # type: ignore[assignment]  # ctypes slices take ints
        self.record[0] = 0  # the site word: the kernel fills the others after claiming it

    @property
    def violated(self) -> bool:
        return self.record[0] != 0

    def _fill(self, lengths: list[int]) -> None:
        self.lengths = (ctypes.c_int64 * max(len(lengths), 1))(*lengths)
        self.record = (ctypes.c_int64 * RECORD_WORDS)()

    @property
    def pointers(self) -> tuple[int, int]:
        """What ``argv`` holds after the arguments: lengths, then the record."""
        return ctypes.addressof(self.lengths), ctypes.addressof(self.record)

    def raise_if_violated(self, kernel_name: str, sites: Sequence[BoundsSite]) -> None:
        site1, index, length = self.record
        if site1 == 0:
            return
        site = sites[site1 - 1]
        top = not site.shared and site.function == kernel_name  # a kernel parameter
        raise BoundsError(
            describe(kernel_name, site, index, length),
            array=site.array if top else None, index=index, length=length,
        )


def describe(kernel_name: str, site: BoundsSite, index: int, length: int) -> str:
    """``kernel 'k': index 10 out of bounds for array 'x' of length 4 (at file:line:col)``, or
    for one axis of an N-d access ``index 9 out of bounds for axis 1 of array 'a' with extent 8``."""
    if not site.signed_index:
        index &= (1 << 64) - 1
    what = f"a {site.space} array" if site.shared else f"array '{site.array}'"
    # region functions of work-item loops are named "<kernel>.wi..."; user functions have no dot
    if site.function != kernel_name and "." not in site.function:
        what += f" in device function '{site.function}'"
    where = f" at {site.loc}" if site.loc is not None else ""
    size = f"of length {length}"
    if site.axis is not None:
        what, size = f"axis {site.axis} of {what}", f"with extent {length}"
    return f"kernel '{kernel_name}': index {index} out of bounds for {what} {size}{where}"
