"""``range`` keeps Python's meaning where ``counter + step`` overflows the loop variable's type.

A counter stepping past the largest (or smallest) value used to wrap back
below ``stop`` and loop forever (``range(0, 2**31 - 1, 2**30)``); every target
now ends the loop when the step reaches or passes ``stop``.
"""

from __future__ import annotations

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, i32, u32
from ringkernel.lowering.cuda import check_ptx, find_ptxas
from ringkernel.lowering.msl import check_msl

BIG = 2**31 - 1


@rk.kernel
def overflowing_ranges(out: Array[i32], n: Array[i32]):
    c = 0
    for i in range(0, 2147483647, 1073741824):  # the third step would pass 2**31 - 1
        out[c] = i
        c += 1
    for j in range(-2147483643, -2147483647 - 1, -4):  # and below -2**31
        out[c] = j
        c += 1
    step = n[0]  # a step known only at run time, either sign
    for m in range(2147483600, 2147483647, step):
        out[c] = m
        c += 1
    for d in range(-2147483600, -2147483647, -step):
        out[c] = d
        c += 1
    for q in range(u32(0), u32(4294967295), u32(2147483648)):  # u32 wraps past 2**32 - 1
        out[c] = i32(q >> u32(31)) + 100
        c += 1
    n[1] = c


def expected(step: int) -> list[int]:
    return [
        *range(0, BIG, 2**30),
        *range(-(BIG - 4), -BIG - 1, -4),
        *range(BIG - 47, BIG, step),
        *range(-(BIG - 47), -BIG, -step),
        *(q // 2**31 + 100 for q in range(0, 2**32 - 1, 2**31)),
    ]


@pytest.mark.parametrize("step", [40, 7, 2**30])
def test_ranges_end_where_python_ends_them(backend: str, step: int) -> None:
    out = np.zeros(64, np.int32)
    n = np.array([step, 0], np.int32)
    overflowing_ranges.launch(1, 1, (out, n), backend=backend)
    assert out[: n[1]].tolist() == expected(step)


@pytest.mark.skipif(find_ptxas() is None, reason="ptxas not installed")
def test_ptx_is_accepted() -> None:
    check_ptx(overflowing_ranges.compile("ptx"))


def test_msl_is_accepted() -> None:
    check_msl(overflowing_ranges.compile("msl"))
