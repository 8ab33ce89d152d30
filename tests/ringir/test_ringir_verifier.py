"""Builder, printer and verifier: every verifier error class has a test here."""

from __future__ import annotations

import pytest

from ringkernel.ringir import (
    BOOL,
    F32,
    F64,
    I32,
    U32,
    VOID,
    AddressSpace,
    ArrayType,
    AtomicRMW,
    Barrier,
    Binary,
    Break,
    Call,
    Const,
    Continue,
    ForRange,
    Function,
    FunctionBuilder,
    If,
    Load,
    LoadVar,
    LocalVar,
    Loop,
    MathCall,
    Module,
    Return,
    SharedArray,
    StoreVar,
    StructType,
    ThreadIndex,
    Value,
    verify,
)
from ringkernel.ringir.diagnostics import CompileError, SourceLoc


def saxpy() -> Module:
    fb = FunctionBuilder(
        "saxpy", "kernel",
        [("a", F32), ("x", ArrayType(F32)), ("y", ArrayType(F32)), ("n", I32)],
    )
    a, x, y, n = fb.params
    i = fb.thread_index("global_id", 0)
    with fb.if_(fb.compare("lt", i, n)):
        fb.store(y, i, fb.binary("add", fb.binary("mul", a, fb.load(x, i)), fb.load(y, i)))
    return Module((fb.finish(),))


SAXPY_TEXT = """\
ringir 1

kernel @saxpy(%a: f32, %x: array<f32, global>, %y: array<f32, global>, %n: i32) -> void {
  %0: i32 = global_id 0
  %1: bool = lt %0, %n
  if %1 {
    %2: f32 = load %x[%0]
    %3: f32 = mul %a, %2
    %4: f32 = load %y[%0]
    %5: f32 = add %3, %4
    store %y[%0], %5
  }
}
"""


def test_builder_and_printer_produce_the_canonical_text():
    m = verify(saxpy())
    assert str(m) == SAXPY_TEXT
    assert str(saxpy()) == str(m)  # deterministic


def test_builder_locals_loops_and_else():
    fb = FunctionBuilder("f", "func", [("n", I32)], I32)
    (n,) = fb.params
    acc = fb.local("acc", I32)
    i = fb.local("i", I32)
    fb.store_var(acc, fb.const(0, I32))
    with fb.for_range(i, fb.const(0, I32), n, fb.const(1, I32)):
        with fb.if_(fb.compare("eq", fb.load_var(i), fb.const(3, I32))):
            fb.continue_()
        with fb.else_():
            fb.store_var(acc, fb.binary("add", fb.load_var(acc), fb.load_var(i)))
    with fb.loop():
        fb.break_()
    fb.return_(fb.load_var(acc))
    fn = fb.finish()
    verify(Module((fn,)))
    assert fn.locals == (LocalVar("acc", I32), LocalVar("i", I32))
    text = str(Module((fn,)))
    assert "for $i in range(%1, %n, %2) {" in text
    assert "  } else {\n" in text
    with pytest.raises(ValueError):
        fb.else_().__enter__()


def test_structs_print_with_their_fields():
    s = StructType("Msg", (("id", U32), ("value", F32)))
    text = str(Module((), (s,)))
    assert text == "ringir 1\n\nstruct Msg {\n  id: u32\n  value: f32\n}\n"


# --- verifier errors ------------------------------------------------------------------

LOC = SourceLoc("k.py", 7, 5, 7, 9)


def kernel(*body, params=(), locals_=()) -> Module:
    return Module((Function("k", "kernel", tuple(params), VOID, tuple(locals_), tuple(body)),))


def func(*body, params=(), ret=VOID, locals_=(), name="f") -> Function:
    return Function(name, "func", tuple(params), ret, tuple(locals_), tuple(body))


def c(name, value, ty):
    return Const(Value(name, ty), value)


def v(name, ty=I32):
    return Value(name, ty)


def expect_error(module: Module, *words: str) -> CompileError:
    with pytest.raises(CompileError) as info:
        verify(module)
    for word in words:
        assert word in info.value.message
    return info.value


def test_types_disagree():
    expect_error(
        kernel(c("a", 1, I32), c("b", 1.0, F32), Binary(v("c"), "add", v("a"), v("b", F32))),
        "operand types differ", "i32", "f32",
    )


def test_result_type_disagrees():
    expect_error(
        kernel(c("a", 1, I32), Binary(v("c", F32), "add", v("a"), v("a"))),
        "result must have type i32",
    )


def test_op_does_not_apply_to_type():
    expect_error(kernel(c("a", 1.0, F32), Binary(v("c", F32), "shl", v("a", F32), v("a", F32))),
                 "'shl' does not apply to f32")


def test_use_before_definition():
    expect_error(kernel(Binary(v("c"), "add", v("a"), v("a")), c("a", 1, I32)),
                 "'%a' is used before it is defined")


def test_use_outside_the_defining_region():
    cond = c("t", True, BOOL)
    expect_error(
        kernel(cond, If(v("t", BOOL), (c("inner", 1, I32),)), Binary(v("x"), "add", v("inner"), v("inner"))),
        "'%inner' is used before it is defined",
    )


def test_definition_twice():
    expect_error(kernel(c("a", 1, I32), c("a", 2, I32)), "'%a' is defined more than once")


def test_definition_twice_across_regions():
    expect_error(
        kernel(c("t", True, BOOL), If(v("t", BOOL), (c("t", True, BOOL),))),
        "defined more than once",
    )


def test_constant_out_of_range():
    expect_error(kernel(c("a", 2**31, I32)), "does not fit type i32")
    expect_error(kernel(c("a", -1, U32)), "does not fit type u32")
    expect_error(kernel(c("a", 1, F32)), "does not fit type f32")


def test_break_and_continue_outside_loop():
    expect_error(kernel(Break()), "'break' outside a loop")
    expect_error(kernel(Continue()), "'continue' outside a loop")
    verify(kernel(Loop((Break(),)), Loop((Continue(),))))


@pytest.mark.parametrize(
    "stmt, word",
    [
        (Barrier(), "barrier is only allowed in kernels"),
        (SharedArray(Value("s", ArrayType(F32, AddressSpace.SHARED, 16))), "shared array"),
        (ThreadIndex(Value("t", I32), "thread_id", 0), "'thread_id' is only allowed in kernels"),
    ],
)
def test_kernel_only_statements_in_a_func(stmt, word):
    expect_error(Module((func(stmt),)), word)
    verify(kernel(stmt))


def test_thread_index_dimension_and_type():
    expect_error(kernel(ThreadIndex(v("t"), "global_id", 3)), "dimension must be 0, 1 or 2")
    expect_error(kernel(ThreadIndex(v("t", U32), "global_id", 0)), "thread indices have type i32")


def test_shared_array_needs_a_shared_type():
    verify(kernel(SharedArray(v("s", ArrayType(F32, AddressSpace.SHARED)))))  # dynamic: sized per launch
    expect_error(kernel(SharedArray(v("s", ArrayType(F32)))), "shared array type")


def test_return_type_mismatch():
    fn = func(c("a", 1.0, F64), Return(v("a", F64)), ret=F32)
    expect_error(Module((fn,)), "returns f64, but the function returns f32")
    expect_error(Module((func(Return(), ret=I32),)), "return without a value")


def test_kernel_cannot_return_a_value():
    fn = Function("k", "kernel", (), I32, (), (c("a", 1, I32), Return(v("a"))))
    expect_error(Module((fn,)), "a kernel cannot return a value")


def test_missing_return():
    fn = Function("f", "func", (), I32, (), (c("a", 1, I32),), loc=LOC)
    err = expect_error(Module((fn,)), "may reach its end without returning")
    assert (err.filename, err.line, err.col) == ("k.py", 7, 5)
    cond = c("t", True, BOOL)
    only_then = func(cond, If(v("t", BOOL), (Return(v("t", BOOL)),)), ret=BOOL)
    expect_error(Module((only_then,)), "may reach its end")
    both = func(cond, If(v("t", BOOL), (Return(v("t", BOOL)),), (Return(v("t", BOOL)),)), ret=BOOL)
    verify(Module((both,)))
    verify(Module((func(cond, Loop((Return(v("t", BOOL)),)), ret=BOOL),)))


def test_recursion_is_rejected():
    direct = func(Call(None, "f", ()))
    expect_error(Module((direct,)), "recursion is not supported", "f -> f")
    a = func(Call(None, "b", ()), name="a")
    b = func(Call(None, "a", ()), name="b")
    expect_error(Module((a, b)), "recursion", "a -> b -> a")


def test_unknown_callee_and_kernel_callee():
    expect_error(kernel(Call(None, "nope", ())), "call to unknown function '@nope'")
    k2 = Function("k2", "kernel", (), VOID, (), ())
    expect_error(Module((k2, kernel(Call(None, "k2", ())).functions[0])), "cannot be called")


def test_call_arguments_checked():
    g = func(params=(v("p", F32),), name="g")
    expect_error(Module((g, kernel(Call(None, "g", ())).functions[0])), "takes 1 argument(s)")
    bad = kernel(c("a", 1, I32), Call(None, "g", (v("a"),)))
    expect_error(Module((g, bad.functions[0])), "has type i32, expected f32")
    h = func(c("r", 1, I32), Return(v("r")), ret=I32, name="h")
    expect_error(Module((h, kernel(Call(None, "h", ())).functions[0])), "must be named")
    expect_error(Module((h, kernel(Call(v("x", F32), "h", ())).functions[0])), "returns i32")


def test_shared_array_passes_to_a_func_array_parameter():
    g = func(params=(v("arr", ArrayType(F32, AddressSpace.SHARED)),), name="g")
    s = v("s", ArrayType(F32, AddressSpace.SHARED, 8))
    verify(Module((g, kernel(SharedArray(s), Call(None, "g", (s,))).functions[0])))


def test_kernel_parameter_types():
    shared = v("s", ArrayType(F32, AddressSpace.SHARED, 4))
    expect_error(kernel(params=(shared,)), "parameter '%s' cannot have type")


def test_locals_checked():
    expect_error(kernel(c("a", 1, I32), StoreVar(LocalVar("x", I32), v("a"))), "'$x' is not declared")
    x = LocalVar("x", I32)
    expect_error(kernel(locals_=(x, x)), "declared twice")
    expect_error(kernel(LoadVar(v("r", F32), LocalVar("x", F32)), locals_=(x,)), "used with type f32")
    expect_error(kernel(c("a", 1.0, F32), StoreVar(x, v("a", F32)), locals_=(x,)), "cannot store f32")


def test_array_access_checked():
    arr = v("arr", ArrayType(F32))
    expect_error(kernel(c("a", 1, I32), Load(v("r", F32), v("a"), v("a"))), "is not an array")
    expect_error(
        kernel(c("i", 1.0, F32), Load(v("r", F32), arr, v("i", F32)), params=(arr,)),
        "array index must be an integer",
    )
    expect_error(
        kernel(c("i", 1, I32), Load(v("r", I32), arr, v("i")), params=(arr,)), "yields f32",
    )
    expect_error(
        kernel(c("i", 1, I32), c("x", 1.0, F32),
               AtomicRMW(v("r", F32), "xor", arr, v("i"), v("x", F32)), params=(arr,)),
        "atomic_xor does not apply to f32",
    )


def test_if_condition_must_be_bool():
    expect_error(kernel(c("a", 1, I32), If(v("a"), ())), "if condition must be bool")


def test_for_range_types():
    i = LocalVar("i", I32)
    body = (c("a", 0, I32), c("b", 1, U32), ForRange(i, v("a"), v("b", U32), v("a"), ()))
    expect_error(kernel(*body, locals_=(i,)), "range stop has type u32")
    f = LocalVar("f", F32)
    body = (c("a", 0.0, F32), ForRange(f, v("a", F32), v("a", F32), v("a", F32), ()))
    expect_error(kernel(*body, locals_=(f,)), "must be an integer")


def test_math_calls_checked():
    expect_error(kernel(c("a", 1, I32), MathCall(v("r"), "sqrt", (v("a"),))), "floating-point")
    expect_error(kernel(c("a", 1.0, F32), MathCall(v("r", F32), "pow", (v("a", F32),))),
                 "takes 2 argument(s)")
    expect_error(kernel(c("a", 1.0, F32), MathCall(v("r", F32), "gamma", (v("a", F32),))),
                 "unknown math function")


def test_module_level_duplicates():
    expect_error(Module((func(), func())), "'@f' is defined twice")
    s = StructType("S", (("a", I32),))
    expect_error(Module((), (s, s)), "struct 'S' is defined twice")
    expect_error(Module((), (StructType("E", ()),)), "has no fields")
    expect_error(Module((), (StructType("D", (("a", I32), ("a", F32))),)), "duplicate field")


def test_error_points_at_the_statement_loc():
    err = expect_error(kernel(Break(loc=LOC)), "'break' outside a loop")
    assert (err.filename, err.line, err.col, err.end_col) == ("k.py", 7, 5, 9)
    assert "in '@k'" in str(err)


def test_names_that_the_text_form_cannot_spell_are_rejected():
    import pytest

    from ringkernel.ringir import I32, FunctionBuilder, Module, verify
    from ringkernel.ringir.diagnostics import CompileError

    with pytest.raises(CompileError, match="not a valid function name"):
        verify(Module((FunctionBuilder("a b", "kernel").finish(),)))
    with pytest.raises(CompileError, match="not a valid value name"):
        verify(Module((FunctionBuilder("f", "func", [("x y", I32)]).finish(),)))
