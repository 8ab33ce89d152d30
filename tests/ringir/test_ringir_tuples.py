"""``tuple<...>`` values in RingIR: text round trip, parser and verifier errors, every lowering."""

from __future__ import annotations

import numpy as np
import pytest

from ringkernel.compiler import compile_module
from ringkernel.ringir import F32, I32, Extract, MakeTuple, TupleType, parse, verify
from ringkernel.ringir.diagnostics import CompileError
from ringkernel.ringir.nodes import operands

TEXT = """ringir 1

func @mm(%a: f32, %b: f32) -> tuple<f32, f32, i32> {
  %lo: f32 = min %a, %b
  %hi: f32 = max %a, %b
  %n: i32 = const 7
  %t: tuple<f32, f32, i32> = make_tuple %lo, %hi, %n
  return %t
}

kernel @k(%x: array<f32, global>) -> void {
  %i: i32 = global_id 0
  %v: f32 = load %x[%i]
  %c: f32 = const 2.5
  %r: tuple<f32, f32, i32> = call @mm(%v, %c)
  %lo: f32 = extract %r, 0
  %hi: f32 = extract %r, 1
  %n: i32 = extract %r, 2
  %d: f32 = sub %hi, %lo
  %nf: f32 = cast %n
  %o: f32 = add %d, %nf
  store %x[%i], %o
  return
}
"""


def test_text_round_trips() -> None:
    module = parse(TEXT)
    assert str(module) == TEXT and parse(str(module)) == module
    assert module.get("mm").return_type == TupleType((F32, F32, I32))
    extract = next(s for s in module.get("k").body if isinstance(s, Extract))
    assert operands(extract) == (extract.tuple,)
    make = next(s for s in module.get("mm").body if isinstance(s, MakeTuple))
    assert len(operands(make)) == 3


def test_cpu_runs_it() -> None:
    from ringkernel.kernels import launch_module

    x = np.array([0.0, 1.0, 4.0], np.float32)
    launch_module(parse(TEXT), "k", (1, 1, 1), (3, 1, 1), [x], "cpu")
    np.testing.assert_array_equal(x, np.abs(np.array([0.0, 1.0, 4.0]) - 2.5) + 7)


@pytest.mark.parametrize("target", ["llvm", "ptx", "wgsl", "msl"])
def test_every_target_lowers_it(target: str) -> None:
    text = compile_module(parse(TEXT), target)
    assert text
    if target == "wgsl":
        from ringkernel.lowering.wgsl.naga import check_wgsl

        check_wgsl(text)


@pytest.mark.parametrize("old, new, message", [
    ("make_tuple %lo, %hi, %n", "make_tuple %lo, %hi, %hi", "does not give tuple<f32, f32, i32>"),
    ("%n: i32 = extract %r, 2", "%n: i32 = extract %r, 3", "extract index 3 is out of range"),
    ("%n: i32 = extract %r, 2", "%n: i32 = extract %r, 1", "element 1 of tuple<f32, f32, i32> is f32"),
    ("%d: f32 = sub %hi, %lo", "%d: f32 = extract %hi, 0", "extract needs a tuple"),
    ("  return %t\n", "  return %lo\n", "returns f32, but the function returns tuple<f32, f32, i32>"),
])
def test_verifier_rejects_ill_typed_tuples(old: str, new: str, message: str) -> None:
    assert old in TEXT
    with pytest.raises(CompileError, match=message):
        verify(parse(TEXT.replace(old, new)))


@pytest.mark.parametrize("old, new, message", [
    ("-> tuple<f32, f32, i32> {", "-> tuple<f32, array, i32> {", "tuple elements must be scalars"),
    ("make_tuple %lo, %hi, %n", "make_tuple", "written 'make_tuple %a, %b, ...'"),
    ("extract %r, 2", "extract %r", "written 'extract %tuple, INDEX'"),
])
def test_parser_errors_are_located(old: str, new: str, message: str) -> None:
    with pytest.raises(CompileError, match=message) as info:
        parse(TEXT.replace(old, new))
    assert info.value.line is not None
