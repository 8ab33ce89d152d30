"""One capability walk: the first use a target lacks is refused, located, in its words."""

from __future__ import annotations

import pytest

from ringkernel.lowering.common import check_module, type_uses
from ringkernel.lowering.msl.target import CAPABILITIES as MSL
from ringkernel.lowering.wgsl.target import CAPABILITIES as WGSL
from ringkernel.ringir import F32, F64, I32, I64, ArrayType, FunctionBuilder, Module, StructType
from ringkernel.ringir.diagnostics import CompileError, SourceLoc

LOC = SourceLoc("k.py", 4, 5)


def _module_with_local(ty) -> Module:
    fb = FunctionBuilder("k", "kernel", [("out", ArrayType(F32))], loc=SourceLoc("k.py", 1, 1))
    (out,) = fb.params
    fb.loc = LOC
    wide = fb.cast(fb.load(out, fb.const(0, I32)), ty)
    fb.store_var(fb.local("acc", ty), wide)
    return Module((fb.finish(),))


@pytest.mark.parametrize(
    "caps, ty, message",
    [
        (WGSL, F64, "the result of this cast has type f64, which WGSL does not support"),
        (WGSL, I64, "the result of this cast has type i64, which WGSL does not support"),
        (MSL, F64, "this expression has type f64: Metal has no 64-bit float (double); use f32"),
    ],
)
def test_first_unsupported_use_is_refused_at_its_location(caps, ty, message) -> None:
    with pytest.raises(CompileError) as err:
        check_module(_module_with_local(ty), caps)
    assert err.value.message.startswith(message)
    assert (err.value.filename, err.value.line, err.value.col) == ("k.py", 4, 5)


def test_what_one_target_supports_another_need_not() -> None:
    check_module(_module_with_local(I64), MSL)  # Metal has 64-bit ints
    with pytest.raises(CompileError, match="WGSL does not support"):
        check_module(_module_with_local(I64), WGSL)


def test_parameters_are_named_in_the_refusal() -> None:
    fb = FunctionBuilder("k", "kernel", [("big", ArrayType(F64))], loc=SourceLoc("m.py", 3, 1))
    module = Module((fb.finish(),))
    with pytest.raises(CompileError, match="parameter 'big' of kernel 'k' has type f64") as err:
        check_module(module, WGSL)
    assert err.value.notes == ("cast to a 32-bit type, or compile for another target",)
    with pytest.raises(CompileError, match="parameter 'big' of 'k' is f64"):
        check_module(module, MSL)


def test_64_bit_atomics_are_a_capability_of_their_own() -> None:
    fb = FunctionBuilder("k", "kernel", [("x", ArrayType(I64))], loc=LOC)
    (x,) = fb.params
    fb.atomic("add", x, fb.const(0, I32), fb.const(1, I64))
    module = Module((fb.finish(),))
    with pytest.raises(CompileError, match=r"Metal has no portable 64-bit atomics \(i64\)") as err:
        check_module(module, MSL)
    assert err.value.line == 4
    roles = [use.role for use in type_uses(module)]
    assert roles[0] == "param" and "atomic" in roles


def test_struct_fields_are_checked_only_where_structs_are_printed() -> None:
    fb = FunctionBuilder("k", "kernel", [("x", ArrayType(F32))])
    module = Module((fb.finish(),), (StructType("S", (("wide", F64),)),))
    with pytest.raises(CompileError, match="field 'wide' of struct 'S' has type f64"):
        check_module(module, MSL)
    check_module(module, WGSL)  # WGSL emits no struct declarations
