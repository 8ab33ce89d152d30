"""Regressions: bad RingIR text and bad modules give located CompileErrors, never Python errors."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from ringkernel.ringir import (
    BOOL,
    F32,
    F64,
    I32,
    VOID,
    AddressSpace,
    ArrayType,
    Call,
    Const,
    Function,
    If,
    Module,
    Return,
    SharedArray,
    StructType,
    Value,
    parse,
    print_module,
    verify,
)
from ringkernel.ringir.diagnostics import CompileError
from ringkernel.ringir.limits import MAX_NESTING

CORPUS = sorted((Path(__file__).parents[2] / "fuzz" / "corpus" / "parser").glob("*.rir"))


def kernel(*lines: str, params: str = "") -> str:
    body = "".join(f"  {ln}\n" for ln in lines)
    return f"ringir 1\n\nkernel @k({params}) -> void {{\n{body}}}\n"


def error_of(text, **kwargs) -> CompileError:
    with pytest.raises(CompileError) as info:
        parse(text, **kwargs)
    return info.value


def assert_located(exc: CompileError, line: int, col: int | None = None) -> None:
    assert exc.filename == "<ringir>"
    assert exc.line == line, str(exc)
    if col is not None:
        assert exc.col == col, str(exc)
    assert exc.source_line is not None
    assert "^" in str(exc)


# --- defect 1: Python errors escaped parse() ------------------------------------------------


def test_bytes_input_is_read_as_utf8():
    text = kernel("%a: f32 = const 1.5", "return")
    assert parse(text.encode("utf-8")) == parse(text)


def test_bytes_that_are_not_utf8_are_a_located_error():
    exc = error_of(b"ringir 1\n# caf\xe9\n")
    assert_located(exc, 2, 6)
    assert "not valid UTF-8" in exc.message


@pytest.mark.parametrize("bad", [None, 42, ["ringir 1"]])
def test_non_text_input_is_a_clear_error(bad):
    exc = error_of(bad)
    assert_located(exc, 1, 1)
    assert type(bad).__name__ in exc.message and "str" in exc.message


def test_huge_integer_literal_is_out_of_range_not_valueerror():
    exc = error_of(kernel("%a: i64 = const " + "9" * 5000))
    assert_located(exc, 4, 19)
    assert "out of range for i64" in exc.message
    assert len(exc.message) < 200  # the literal is shortened, not echoed whole


def test_huge_array_size_is_located_not_valueerror():
    exc = error_of(kernel("%s: array<f32, shared, " + "9" * 5000 + "> = shared_array"))
    assert_located(exc, 4, 26)


def test_deep_nesting_is_located_not_recursionerror():
    depth = 3000
    text = kernel(*["if %c {"] * depth, *["}"] * depth, params="%c: bool")
    exc = error_of(text)
    assert_located(exc, 4 + MAX_NESTING, 3)
    assert f"limit {MAX_NESTING}" in exc.message


def test_nesting_at_the_limit_parses_and_round_trips():
    text = kernel(*["if %c {"] * MAX_NESTING, *["}"] * MAX_NESTING, params="%c: bool")
    module = parse(text)
    assert parse(str(module)) == module


# --- defect 2: errors without a location ----------------------------------------------------


def test_empty_struct_is_located():
    exc = error_of("ringir 1\n\nstruct Empty {\n}\n")
    assert_located(exc, 3, 8)
    assert "no fields" in exc.message


def test_verifier_struct_errors_use_the_struct_location():
    from ringkernel.ringir.diagnostics import SourceLoc

    loc = SourceLoc("m.rir", 7, 1, 7, 10)
    with pytest.raises(CompileError) as info:
        verify(Module((), (StructType("S", (), loc=loc),)))
    assert (info.value.filename, info.value.line) == ("m.rir", 7)


def test_parsed_verifier_errors_all_have_a_line():
    cases = [
        kernel("break"),
        kernel("%a: i32 = const 1", "%b: f32 = cast %a", "%c: f32 = add %a, %b"),
        "ringir 1\n\nfunc @f() -> i32 {\n  %a: i32 = call @f()\n  return %a\n}\n",
    ]
    for text in cases:
        assert error_of(text).line is not None


# --- defect 3: line counting disagreed with the grammar -------------------------------------


@pytest.mark.parametrize("sep", ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"])
def test_line_separators_in_comments_do_not_shift_lines(sep):
    text = f"ringir 1\n# one{sep}two\nkernel @k() -> void {{\n  %a: i32 = bogus\n}}\n"
    exc = error_of(text)
    assert_located(exc, 4, 13)
    assert exc.source_line == "  %a: i32 = bogus"
    for line in str(exc).split("\n"):
        assert sep not in line


def test_crlf_lines_are_counted_once():
    text = kernel("%a: i32 = const 1", "%b: i32 = bogus").replace("\n", "\r\n")
    exc = error_of(text)
    assert_located(exc, 5, 13)
    assert not exc.source_line.endswith("\r")


def test_stray_control_character_is_named_readably():
    exc = error_of(kernel("%a: i32 = const\x0c 1"))
    assert_located(exc, 4)
    assert "\\x0c" in exc.message


# --- defect 4: float constants out of range -------------------------------------------------


@pytest.mark.parametrize("literal", ["1e39", "-1e39", "3.4028235677973366e+38"])
def test_f32_literal_out_of_range_is_located(literal):
    exc = error_of(kernel(f"%a: f32 = const {literal}"))
    assert_located(exc, 4, 19)
    assert "out of range for f32" in exc.message


def test_f32_literals_that_round_to_the_largest_f32_are_accepted():
    # Just below the half-way point to 2**128 rounds (to nearest even) to FLT_MAX.
    module = parse(kernel("%a: f32 = const 3.4028235677973362e+38"))
    assert module.functions[0].body[0].value == 3.4028235677973362e38


def test_f64_range_is_unchanged():
    assert parse(kernel("%a: f64 = const 1e39")).functions[0].body[0].value == 1e39
    assert "out of range for f64" in error_of(kernel("%a: f64 = const 1e309")).message


@pytest.mark.parametrize(
    "ty,literal", [("i32", "2147483648"), ("u32", "-1"), ("u64", "18446744073709551616")]
)
def test_integer_out_of_range_is_located(ty, literal):
    exc = error_of(kernel(f"%a: {ty} = const {literal}"))
    assert_located(exc, 4, 19)
    assert f"out of range for {ty}" in exc.message


@pytest.mark.parametrize("value", [0.1, 1e-50, 5e-324, -0.0, math.inf, -math.inf, 3.4028234663852886e38])
@pytest.mark.parametrize("ty", [F32, F64])
def test_float_constants_round_trip_exactly(value, ty):
    x = Value("x", ty)
    fn = Function("f", "func", (), ty, (), (Const(x, value), Return(x)))
    text = print_module(Module((fn,)))
    again = parse(text)
    assert again == Module((fn,)) and str(again) == text
    assert math.copysign(1.0, again.functions[0].body[0].value) == math.copysign(1.0, value)


def test_nan_round_trips():
    text = kernel("%a: f32 = const nan")
    assert str(parse(text)) == text
    assert math.isnan(parse(text).functions[0].body[0].value)


def test_verifier_rejects_out_of_range_f32_from_the_builder():
    x = Value("x", F32)
    fn = Function("f", "func", (), F32, (), (Const(x, 1e39), Return(x)))
    with pytest.raises(CompileError, match="does not fit type f32"):
        verify(Module((fn,)))


def test_verifier_names_huge_integers_without_valueerror():
    x = Value("x", I32)
    fn = Function("f", "func", (), I32, (), (Const(x, 10**5000), Return(x)))
    with pytest.raises(CompileError, match="bits"):
        verify(Module((fn,)))


# --- defect 5: sizes no target can hold -----------------------------------------------------


def test_shared_array_of_2_to_the_40_is_rejected_at_its_size():
    exc = error_of(kernel("%s: array<f32, shared, 1099511627776> = shared_array", "return"))
    assert_located(exc, 4, 26)
    assert "larger than any target" in exc.message


def test_verifier_rejects_huge_shared_arrays_from_the_builder():
    s = Value("s", ArrayType(F32, AddressSpace.SHARED, 2**40))
    fn = Function("k", "kernel", (), VOID, (), (SharedArray(s),))
    with pytest.raises(CompileError, match="larger than any target"):
        verify(Module((fn,)))


# --- defect 6: deep IR from the builder -----------------------------------------------------


def deep_module(depth: int) -> Module:
    c = Value("c", BOOL)
    body: tuple = (Return(),)
    for _ in range(depth):
        body = (If(c, body),)
    return Module((Function("k", "kernel", (c,), VOID, (), body),))


def test_deep_builder_module_is_a_compileerror_in_verify_and_print():
    module = deep_module(5000)
    with pytest.raises(CompileError, match="nested too deeply"):
        verify(module)
    with pytest.raises(CompileError, match="nested too deeply"):
        str(module)


def test_builder_module_at_the_limit_compiles_for_every_text_target():
    from ringkernel.compiler import compile_module

    module = deep_module(MAX_NESTING)
    verify(module)
    for target in ("rir", "llvm", "ptx", "wgsl", "msl"):
        assert compile_module(module, target, cache=False)


def test_long_call_chain_is_a_compileerror_not_recursionerror():
    fns = []
    n = 3000
    for i in range(n):
        body = (Call(None, f"f{i + 1}", ()), Return()) if i + 1 < n else (Return(),)
        fns.append(Function(f"f{i}", "func", (), VOID, (), body))
    with pytest.raises(CompileError, match="calls nested too deeply"):
        verify(Module(tuple(fns)))


def test_walk_is_iterative():
    from ringkernel.ringir import walk

    module = deep_module(5000)
    assert sum(1 for _ in walk(module.functions[0].body)) == 5001


# --- defect 7: hand fuzzing of the corpus ---------------------------------------------------


def mutations(seed: int, count: int):
    rng = random.Random(seed)
    texts = [p.read_bytes() for p in CORPUS]
    pieces = [b"\x0c", "\u2028".encode(), b"\r", b"{", b"}", b"if %c {", b"9" * 5000, b"1e39",
              b"nan", b"%", b"$", b"struct S {\n}\n", b"#", b"\x00", b"\xff", b"array<f32, shared, 0>"]
    for _ in range(count):
        data = bytearray(rng.choice(texts))
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(data) + 1)
            r = rng.random()
            if r < 0.3:
                del data[i:]
            elif r < 0.6:
                del data[i:i + rng.randint(1, 20)]
            else:
                data[i:i] = rng.choice(pieces)
        yield bytes(data)


def test_mutated_corpus_raises_only_compileerror():
    assert CORPUS, "the parser seed corpus is missing"
    for data in mutations(seed=7, count=600):
        try:
            module = parse(data)
        except CompileError as exc:
            assert exc.line is not None and exc.col is not None, (data, str(exc))
            continue
        assert parse(str(module)) == module
