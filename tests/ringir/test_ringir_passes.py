"""Each RingIR pass alone: constant folding, dead-code elimination, fingerprint, manager."""

from __future__ import annotations

import importlib
import io
import math

import numpy as np
import pytest

from ringkernel.ringir import (
    BOOL,
    F32,
    F64,
    I32,
    I64,
    U32,
    U64,
    VOID,
    ArrayType,
    Binary,
    Break,
    Cast,
    Compare,
    Const,
    Continue,
    Function,
    FunctionBuilder,
    If,
    LocalVar,
    Loop,
    MathCall,
    Module,
    Return,
    StoreVar,
    Unary,
    Value,
    parse,
    verify,
)
from ringkernel.ringir.passes import (
    DEFAULT_PASSES,
    Pass,
    PassManager,
    eliminate_dead_code,
    fingerprint,
    fold_constants,
    run_default_pipeline,
)
from ringkernel.ringir.passes.constfold import fold_cast

OUT = Value("out", ArrayType(I32))


def fold_one(stmt, *consts) -> object:
    """Folds ``stmt`` after ``consts`` and returns its constant (None if it stays)."""
    fn = Function("f", "func", (), VOID, (), (*consts, stmt))
    m = fold_constants(verify(Module((fn,))))
    verify(m)
    last = m.functions[0].body[-1]
    return last.value if isinstance(last, Const) and not isinstance(stmt, Const) else None


def c(name, value, ty):
    return Const(Value(name, ty), value)


def binary(op, a, b, ty):
    return fold_one(Binary(Value("r", ty), op, Value("a", ty), Value("b", ty)),
                    c("a", a, ty), c("b", b, ty))


@pytest.mark.parametrize(
    "op, a, b, ty, expected",
    [
        ("add", 2**31 - 1, 1, I32, -(2**31)),
        ("add", 2**32 - 1, 1, U32, 0),
        ("sub", 0, 1, U32, 2**32 - 1),
        ("mul", 65536, 65536, I32, 0),
        ("mul", 2**62, 4, I64, 0),
        ("div", -7, 2, I32, -3),
        ("rem", -7, 2, I32, -1),
        ("div", 7, -2, I32, -3),
        ("rem", 7, -2, I32, 1),
        ("floordiv", -7, 2, I32, -4),
        ("floormod", -7, 2, I32, 1),
        ("floormod", 7, -2, I32, -1),
        ("div", 2**32 - 1, 2, U32, 2**31 - 1),
        ("shl", 1, 31, I32, -(2**31)),
        ("shr", -8, 1, I32, -4),
        ("shr", 2**32 - 8, 1, U32, 2**31 - 4),
        ("and", -1, 0xF0, I32, 0xF0),
        ("xor", 2**64 - 1, 1, U64, 2**64 - 2),
        ("min", -3, 2, I32, -3),
        ("max", 3, 2, U32, 3),
        ("and", True, False, BOOL, False),
        ("or", True, False, BOOL, True),
        ("xor", True, True, BOOL, False),
    ],
)
def test_integer_and_bool_binary_folding(op, a, b, ty, expected):
    result = binary(op, a, b, ty)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    "op, a, b, ty",
    [
        ("div", 1, 0, I32), ("rem", 1, 0, U32), ("floordiv", 1, 0, I64), ("floormod", 1, 0, I32),
        ("div", -(2**31), -1, I32), ("floordiv", -(2**31), -1, I32),
        ("shl", 1, 32, I32), ("shr", 1, -1, I32), ("shl", 1, 64, U64),
        ("div", 1.0, 0.0, F32), ("rem", 1.0, 0.0, F64), ("floordiv", 1.0, 0.0, F64),
        ("min", math.nan, 1.0, F32), ("max", 0.0, -0.0, F64),
    ],
)
def test_undefined_or_target_specific_operations_are_left_alone(op, a, b, ty):
    assert binary(op, a, b, ty) is None


def test_f32_arithmetic_rounds_like_float32():
    expected = float(np.float32(0.1) + np.float32(0.2))
    assert binary("add", 0.1, 0.2, F32) == expected
    assert binary("add", 0.1, 0.2, F64) == 0.1 + 0.2
    assert binary("mul", 3.4e38, 10.0, F32) == math.inf
    assert binary("div", 1.0, 3.0, F32) == float(np.float32(1) / np.float32(3))


def test_float_floordiv_and_floormod_follow_the_divisor():
    assert binary("floordiv", -7.0, 2.0, F64) == -4.0
    assert binary("floormod", -7.0, 2.0, F64) == 1.0
    assert binary("floormod", 7.0, -2.0, F64) == -1.0
    assert binary("rem", -7.0, 2.0, F64) == -1.0


def test_unary_folding():
    def unary(op, a, ty):
        return fold_one(Unary(Value("r", ty), op, Value("a", ty)), c("a", a, ty))

    assert unary("neg", -(2**31), I32) == -(2**31)
    assert unary("neg", 1, U32) == 2**32 - 1
    assert unary("bitnot", 0, U32) == 2**32 - 1
    assert unary("bitnot", 5, I32) == -6
    assert unary("not", True, BOOL) is False
    assert math.copysign(1, unary("neg", 0.0, F64)) == -1


def test_compare_folding():
    def compare(op, a, b, ty):
        return fold_one(Compare(Value("r", BOOL), op, Value("a", ty), Value("b", ty)),
                        c("a", a, ty), c("b", b, ty))

    assert compare("lt", -1, 0, I32) is True
    assert compare("ne", math.nan, math.nan, F64) is True
    assert compare("eq", math.nan, math.nan, F64) is False
    assert compare("eq", 0.1, float(np.float32(0.1)), F32) is True  # both round to one f32
    assert compare("eq", 0.1, float(np.float32(0.1)), F64) is False
    assert compare("ne", True, False, BOOL) is True


@pytest.mark.parametrize(
    "value, src, dst, expected",
    [
        (-1, I32, U32, 2**32 - 1),
        (2**32 - 1, U32, I32, -1),
        (-1, I32, I64, -1),
        (2**40 + 5, I64, I32, 5),
        (-2.7, F64, I32, -2),
        (2.7, F32, U32, 2),
        (True, BOOL, I32, 1),
        (0, I32, BOOL, False),
        (-0.0, F64, BOOL, False),
        (math.nan, F64, BOOL, True),
        (3, I32, F64, 3.0),
        (True, BOOL, F32, 1.0),
        (0.1, F64, F32, float(np.float32(0.1))),
        (2**24 + 1, I32, F32, float(2**24)),
        (2**64 - 1, U64, F32, float(2**64)),
        # Ties round to even directly, not through f64 first.
        (2**60 + 2**36 + 1, I64, F32, float(2**60 + 2**37)),
    ],
)
def test_cast_folding(value, src, dst, expected):
    assert fold_cast(value, src, dst) == expected
    folded = fold_one(Cast(Value("r", dst), Value("a", src)), c("a", value, src))
    assert folded == expected and type(folded) is type(expected)


@pytest.mark.parametrize("value", [math.nan, math.inf, 2.0**31, -(2.0**31) - 1])
def test_out_of_range_float_to_int_casts_are_left_alone(value):
    assert fold_cast(value, F64, I32) is None
    assert fold_cast(-1.0, F64, U32) is None


def test_math_folding_only_where_exact():
    def math_call(func, a, ty):
        return fold_one(MathCall(Value("r", ty), func, (Value("a", ty),)), c("a", a, ty))

    assert math_call("sqrt", 2.0, F32) == float(np.sqrt(np.float32(2)))
    assert math_call("floor", -1.5, F64) == -2.0
    assert math_call("ceil", -1.5, F64) == -1.0
    assert math_call("fabs", -3.0, F32) == 3.0
    assert math_call("abs", -(2**31), I32) == -(2**31)
    assert math_call("abs", -5, I64) == 5
    assert math_call("exp", 1.0, F64) is None
    assert math_call("sin", 1.0, F32) is None


def test_chains_fold_and_non_constants_stay():
    fb = FunctionBuilder("k", "kernel", [("out", ArrayType(I32))])
    (out,) = fb.params
    x = fb.binary("mul", fb.binary("add", fb.const(2, I32), fb.const(3, I32)), fb.const(4, I32))
    i = fb.thread_index("global_id", 0)
    fb.store(out, i, fb.binary("add", x, i))
    m = fold_constants(verify(Module((fb.finish(),))))
    verify(m)
    body = m.functions[0].body
    assert body[4] == Const(Value("4", I32), 20)
    assert isinstance(body[6], Binary)  # depends on the thread index


def test_if_on_constant_condition_keeps_the_taken_branch():
    t = c("t", True, BOOL)
    f = c("f", False, BOOL)
    x = LocalVar("x", I32)
    inner = c("inner", 7, I32)
    other = c("other", 3, I32)
    module = Module((Function("k", "kernel", (OUT,), VOID, (x,), (
        t, f,
        If(Value("t", BOOL), (inner, StoreVar(x, Value("inner", I32))), (Return(),)),
        If(Value("f", BOOL), (Return(),), (other, StoreVar(x, Value("other", I32)))),
        If(Value("f", BOOL), (Return(),)),
        Loop((If(Value("t", BOOL), (Break(),)),)),
    )),))
    folded = fold_constants(verify(module))
    verify(folded)
    assert folded.functions[0].body == (
        t, f, inner, StoreVar(x, Value("inner", I32)), other, StoreVar(x, Value("other", I32)),
        Loop((Break(),)),
    )


def test_if_on_folded_condition_nested_in_a_loop():
    text = """\
ringir 1

kernel @k(%out: array<i32, global>, %n: i32) -> void {
  var $i: i32
  %zero: i32 = const 0
  %one: i32 = const 1
  for $i in range(%zero, %n, %one) {
    %c: bool = lt %one, %zero
    if %c {
      continue
    } else {
      %v: i32 = load_var $i
      store %out[%v], %one
    }
  }
}
"""
    folded = fold_constants(parse(text))
    verify(folded)
    loop = folded.functions[0].body[2]
    assert loop.body[0] == Const(Value("c", BOOL), False)
    assert [type(s).__name__ for s in loop.body[1:]] == ["LoadVar", "Store"]


# --- dead-code elimination -----------------------------------------------------------


def test_dce_removes_unused_pure_instructions_to_a_fixed_point():
    text = """\
ringir 1

kernel @k(%out: array<i32, global>) -> void {
  %a: i32 = const 1
  %b: i32 = add %a, %a
  %c: i32 = mul %b, %b
  %i: i32 = global_id 0
  %d: i32 = load %out[%i]
  %old: i32 = atomic_add %out[%i], %a
  store %out[%i], %a
}
"""
    m = eliminate_dead_code(parse(text))
    verify(m)
    names = [getattr(s, "result", None) and s.result.name for s in m.functions[0].body]
    assert names == ["a", "i", "old", None]


def test_dce_drops_statements_after_terminators():
    text = """\
ringir 1

kernel @k(%out: array<i32, global>) -> void {
  %a: i32 = const 1
  loop {
    break
    store %out[%a], %a
  }
  loop {
    continue
    barrier
  }
  return
  store %out[%a], %a
}
"""
    m = eliminate_dead_code(parse(text))
    body = m.functions[0].body
    # %a dies with the stores that used it.
    assert body == (Loop((Break(),)), Loop((Continue(),)), Return())


def test_dce_keeps_effects_and_removes_unread_locals():
    text = """\
ringir 1

func @g(%x: i32) -> i32 {
  return %x
}

kernel @k(%out: array<i32, global>) -> void {
  var $unused: i32
  var $written: i32
  var $read: i32
  var $i: i32
  %a: i32 = const 1
  store_var $written, %a
  store_var $read, %a
  %r: i32 = load_var $read
  %unused_call: i32 = call @g(%a)
  for $i in range(%a, %a, %a) {
  }
  %t: bool = const true
  if %t {
  }
  barrier
  store %out[%a], %r
}
"""
    m = eliminate_dead_code(parse(text))
    verify(m)
    k = m.get("k")
    assert [v.name for v in k.locals] == ["read", "i"]
    kinds = [type(s).__name__ for s in k.body]
    assert kinds == ["Const", "StoreVar", "LoadVar", "Call", "ForRange", "Barrier", "Store"]


def test_dce_drops_funcs_no_kernel_reaches():
    text = """\
ringir 1

func @leaf() -> void {
}

func @used() -> void {
  call @leaf()
}

func @dead() -> void {
  call @leaf()
}

kernel @k() -> void {
  call @used()
}
"""
    m = eliminate_dead_code(parse(text))
    assert [f.name for f in m.functions] == ["leaf", "used", "k"]
    no_kernel = parse(text.split("kernel @k")[0])
    assert eliminate_dead_code(no_kernel) == no_kernel


def test_dce_keeps_return_of_value_functions_verifiable():
    fb = FunctionBuilder("f", "func", [("n", I32)], I32)
    (n,) = fb.params
    fb.return_(n)
    fb.const(1, I32)
    fb.return_(n)
    m = eliminate_dead_code(verify(Module((fb.finish(),))))
    verify(m)
    assert m.functions[0].body == (Return(n),)


# --- fingerprint ---------------------------------------------------------------------


def saxpy_text(factor: str = "mul") -> str:
    return f"""\
ringir 1

kernel @k(%a: f32, %x: array<f32, global>) -> void {{
  %i: i32 = global_id 0
  %v: f32 = load %x[%i]
  %r: f32 = {factor} %a, %v
  store %x[%i], %r
}}
"""


def test_fingerprint_is_stable_and_sensitive(monkeypatch):
    m = parse(saxpy_text())
    key = fingerprint(m, "ptx", {"arch": "sm_80", "check": False})
    assert len(key) == 64 and int(key, 16) >= 0
    assert key == fingerprint(parse(saxpy_text()), "ptx", {"check": False, "arch": "sm_80"})
    others = {
        fingerprint(parse(saxpy_text("add")), "ptx", {"arch": "sm_80", "check": False}),
        fingerprint(m, "wgsl", {"arch": "sm_80", "check": False}),
        fingerprint(m, "ptx", {"arch": "sm_90", "check": False}),
        fingerprint(m, "ptx", {}),
    }
    fingerprint_module = importlib.import_module("ringkernel.ringir.passes.fingerprint")
    monkeypatch.setattr(fingerprint_module, "CODEGEN_ENV_VARS", ("RINGKERNEL_TEST_CODEGEN",))
    monkeypatch.setenv("RINGKERNEL_TEST_CODEGEN", "1")
    others.add(fingerprint(m, "ptx", {"arch": "sm_80", "check": False}))
    assert key not in others and len(others) == 5


def test_fingerprint_covers_the_compiler_version(monkeypatch):
    from ringkernel.ringir import version

    m = parse(saxpy_text())
    key = fingerprint(m, "ptx", {})
    monkeypatch.setattr(version, "__version__", "999.0")
    assert fingerprint(m, "ptx", {}) != key


# --- pass manager --------------------------------------------------------------------


def test_default_pipeline_folds_and_cleans():
    text = """\
ringir 1

func @unused() -> void {
}

kernel @k(%out: array<i32, global>) -> void {
  %a: i32 = const 6
  %b: i32 = const 7
  %c: i32 = mul %a, %b
  %t: bool = gt %c, %a
  %i: i32 = global_id 0
  if %t {
    store %out[%i], %c
  } else {
    store %out[%i], %a
  }
}
"""
    m = run_default_pipeline(parse(text))
    assert str(m) == """\
ringir 1

kernel @k(%out: array<i32, global>) -> void {
  %c: i32 = const 42
  %i: i32 = global_id 0
  store %out[%i], %c
}
"""
    assert [p.name for p in DEFAULT_PASSES] == ["constfold", "dce", "verify-final"]


def test_dump_ir_after_a_pass(monkeypatch):
    m = parse(saxpy_text())
    stream = io.StringIO()
    monkeypatch.setenv("RINGKERNEL_DUMP_IR", "after:constfold")
    run_default_pipeline(m, stream)
    out = stream.getvalue()
    assert out.startswith("# RingIR after pass 'constfold'\nringir 1\n")
    assert out.count("ringir 1") == 1
    assert parse(out) == m  # the dump is RingIR text

    stream = io.StringIO()
    monkeypatch.setenv("RINGKERNEL_DUMP_IR", "all")
    run_default_pipeline(m, stream)
    assert stream.getvalue().count("# RingIR after pass") == len(DEFAULT_PASSES)

    stream = io.StringIO()
    monkeypatch.setenv("RINGKERNEL_DUMP_IR", "after:nope")
    run_default_pipeline(m, stream)
    assert "ignoring 'after:nope'" in stream.getvalue()


def test_dump_ir_goes_to_stderr(monkeypatch, capsys):
    monkeypatch.setenv("RINGKERNEL_DUMP_IR", "after:dce")
    run_default_pipeline(parse(saxpy_text()))
    captured = capsys.readouterr()
    assert captured.out == "" and "# RingIR after pass 'dce'" in captured.err


def test_pass_manager_runs_passes_in_order():
    seen = []

    def mark(name):
        def run(m):
            seen.append(name)
            return m
        return run

    PassManager([Pass("a", mark("a")), Pass("b", mark("b"))]).run(Module(()))
    assert seen == ["a", "b"]


def test_compiler_uses_the_pipeline():
    from ringkernel.compiler import optimize

    m = parse(saxpy_text())
    assert optimize(m) == run_default_pipeline(m)



def test_dce_drops_a_func_whose_only_call_was_dead():
    # Regression (found by the property test): removing dead code can orphan a func.
    text = """\
ringir 1

func @g() -> void {
}

kernel @k() -> void {
  return
  call @g()
}
"""
    m = eliminate_dead_code(parse(text))
    assert [f.name for f in m.functions] == ["k"]
    assert eliminate_dead_code(m) == m
