"""RingIR text and verifier for N-d shapes, local arrays and embedded constant arrays."""

from __future__ import annotations

import pytest

from ringkernel.ringir import parse
from ringkernel.ringir.diagnostics import CompileError

GOOD = """\
ringir 1

func @f(%m: array<f32, constant, [?, ?]>, %m.shape0: i32, %m.shape1: i32) -> f32 {
  %0: i32 = const 0
  %1: f32 = load %m[%0]
  return %1
}

kernel @k(%a: array<f32, global, [?, ?, ?]>, %a.shape0: i32, %a.shape1: i32, %a.shape2: i32) -> void {
  %0: array<f32, constant, 4, [2, 2]> = const_array 1.0, -2.5, nan, inf
  %1: array<i32, local, 6, [2, 3]> = local_array
  %2: array<bool, shared, 8, [2, 4]> = shared_array
  %3: i32 = const 1
  %4: i32 = const 2
  %5: f32 = call @f(%0, %3, %4)
  store %a[%3], %5
  store %1[%3], %4
}
"""


def test_new_forms_round_trip() -> None:
    module = parse(GOOD)
    assert str(module) == GOOD
    assert parse(str(module)) == module


def _kernel(body: str, params: str = "") -> str:
    return f"ringir 1\n\nkernel @k({params}) -> void {{\n{body}\n}}\n"


BAD = [
    ("  %0: array<f32, local, 4> = local_array\n  %1: i32 = const 0\n  atomic_add %0[%1], %1",
     "defines a value"),
    ("  %0: array<i32, local, 4> = local_array\n  %1: i32 = const 0\n  %2: i32 = atomic_add %0[%1], %1",
     "local array"),
    ("  %0: array<i32, constant, 2> = const_array 1, 2\n  %1: i32 = const 0\n  store %0[%1], %1",
     "read-only constant array"),
    ("  %0: array<i32, constant, 3> = const_array 1, 2", "has 2 values"),
    ("  %0: array<i32, constant, 2> = const_array 1, 5000000000", "out of range"),
    ("  %0: array<f32, shared, 6, [2, 2]> = shared_array", "do not multiply to the array size 6"),
    ("  %0: array<f32, shared, 8, [2, 2, 2, 1]> = shared_array", "2 to 3 extents"),
    ("  %0: array<f32, shared, 4> = local_array", "local_array must have a sized local array type"),
    ("  %0: array<f32, constant, 20000> = const_array " + ", ".join(["1.0"] * 20000), "at most 65536 bytes"),
]


@pytest.mark.parametrize("body,message", BAD, ids=[b[1] for b in BAD])
def test_malformed_forms_are_located_errors(body: str, message: str) -> None:
    with pytest.raises(CompileError, match=message):
        parse(_kernel(body))


def test_global_shape_extents_must_be_unknown() -> None:
    with pytest.raises(CompileError, match="launch-time extents"):
        parse(_kernel("", "%a: array<f32, global, [2, ?]>"))
