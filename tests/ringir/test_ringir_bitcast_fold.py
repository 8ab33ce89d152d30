"""Constant folding of ``bitcast`` gives the bits the targets would, and leaves NaNs alone."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ringkernel.ringir import F32, F64, I32, I64, U32, U64, parse
from ringkernel.ringir.passes.constfold import fold_bitcast

CASES = [
    (1.0, F32, U32, 0x3F800000),
    (-0.0, F32, U32, 0x80000000),
    (-1.5, F32, I32, int(np.array([-1.5], np.float32).view(np.int32)[0])),
    (0x7F800000, U32, F32, math.inf),
    (1, U32, F32, float(np.array([1], np.uint32).view(np.float32)[0])),  # a denormal
    (-1, I32, U32, 2**32 - 1),
    (2**64 - 1, U64, I64, -1),
    (1.0, F64, U64, 0x3FF0000000000000),
]


@pytest.mark.parametrize(("value", "src", "dst", "want"), CASES)
def test_fold_bitcast(value, src, dst, want) -> None:
    got = fold_bitcast(value, src, dst)
    assert got == want and type(got) is type(want)
    if isinstance(want, float) and want == 0.0:
        assert math.copysign(1.0, got) == math.copysign(1.0, want)


def test_nan_bitcasts_are_left_for_the_target() -> None:
    assert fold_bitcast(math.nan, F32, U32) is None
    assert fold_bitcast(0x7FC00001, U32, F32) is None  # a payload a constant cannot keep
    assert fold_bitcast(1, U32, F64) is None  # sizes differ: never folded


def test_bitcast_round_trips_through_text_and_folds() -> None:
    from ringkernel.ringir.passes.constfold import fold_constants

    text = (
        "ringir 1\n\nkernel @k(%out: array<u32, global>) -> void {\n"
        "  %0: f32 = const 1.0\n  %1: u32 = bitcast %0\n  %2: i32 = const 0\n"
        "  store %out[%2], %1\n}\n"
    )
    module = parse(text)
    assert str(module) == text
    assert "const 1065353216" in str(fold_constants(module))
