"""The RingIR text parser: round trips, locations, and every malformed-input class."""

from __future__ import annotations

import math
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from test_ringir_verifier import SAXPY_TEXT, saxpy  # noqa: E402

from ringkernel.ringir import (  # noqa: E402
    F32,
    F64,
    I32,
    U64,
    Const,
    If,
    Module,
    Value,
    parse,
)
from ringkernel.ringir.diagnostics import CompileError  # noqa: E402
from ringkernel.ringir.parser import parse_module  # noqa: E402

H = "ringir 1\n\n"


def kernel_text(*lines: str, header: str = "kernel @k() -> void {") -> str:
    return H + "\n".join([header, *("  " + ln for ln in lines), "}"]) + "\n"


FULL = """\
ringir 1

struct Msg {
  id: u32
  value: f32
}

func @helper.1(%v: f32, %buf: array<f32, shared>) -> f32 {
  %0: f32 = sqrt %v
  %1: f32 = fma %0, %v, %v
  return %1
}

kernel @k(%x: array<f32, global>, %n: i32, %flags: array<u32, global>) -> void {
  var $acc: f32
  var $i: i32
  %s: array<f32, shared, 64> = shared_array
  %tid: i32 = thread_id 0
  %bid: i32 = block_id 1
  %bdim: i32 = block_dim 2
  %gdim: i32 = grid_dim 0
  %g: i32 = global_id 0
  %z: f32 = const -0.0
  store_var $acc, %z
  %c0: i32 = const 0
  %c1: i32 = const 1
  %neg: i32 = const -2147483648
  for $i in range(%c0, %n, %c1) {
    %iv: i32 = load_var $i
    %xv: f32 = load %x[%iv]
    %a0: f32 = load_var $acc
    %a1: f32 = add %a0, %xv
    store_var $acc, %a1
    %big: bool = gt %a1, %z
    if %big {
      break
    } else {
      continue
    }
  }
  loop {
    %t: bool = const true
    %nt: bool = not %t
    if %nt {
      break
    }
  }
  store %s[%tid], %z
  barrier
  %r: f32 = call @helper.1(%z, %s)
  %u: u32 = const 4294967295
  %old: u32 = atomic_add %flags[%g], %u
  %old2: u32 = atomic_cas %flags[%g], %old, %u
  %old3: u32 = atomic_exchange %flags[%g], %old2
  %f64: f64 = cast %r
  %inf: f64 = const inf
  %ninf: f64 = const -inf
  %nan: f64 = const nan
  %tiny: f64 = const 5e-324
  %big2: f64 = const 1e+16
  %q: i32 = floordiv %g, %c1
  %m: i32 = floormod %g, %c1
  %neg2: i32 = neg %m
  %bn: i32 = bitnot %neg2
  return
}
"""


def test_full_text_round_trips_exactly():
    m = parse(FULL, "full.rir")
    assert str(m) == FULL
    assert parse(str(m)) == m
    assert m.structs[0].fields == (("id", m.structs[0].fields[0][1]), ("value", F32))
    assert [f.name for f in m.functions] == ["helper.1", "k"]


def test_builder_module_round_trips():
    m = saxpy()
    assert parse(str(m)) == m
    assert str(parse(SAXPY_TEXT)) == SAXPY_TEXT


def test_operands_resolve_to_their_defining_values():
    m = parse(SAXPY_TEXT)
    body = m.functions[0].body
    cond = body[1]
    assert cond.lhs == Value("0", I32) and cond.rhs == Value("n", I32)
    assert isinstance(body[2], If) and body[2].cond is cond.result


def test_every_statement_carries_its_location():
    m = parse_module(SAXPY_TEXT, "saxpy.rir")
    fn = m.functions[0]
    assert (fn.loc.filename, fn.loc.line, fn.loc.col) == ("saxpy.rir", 3, 1)
    gid, cmp, if_stmt = fn.body
    assert (gid.loc.line, gid.loc.col, gid.loc.end_col) == (4, 3, 24)
    assert (if_stmt.loc.line, if_stmt.loc.col) == (6, 3)
    assert [s.loc.line for s in if_stmt.then_body] == [7, 8, 9, 10, 11]


@pytest.mark.parametrize(
    "literal, ty, expected",
    [
        ("0.1", F32, 0.1), ("-0.0", F64, -0.0), ("1e+16", F64, 1e16), ("5e-324", F64, 5e-324),
        ("inf", F32, math.inf), ("-inf", F64, -math.inf), ("nan", F64, math.nan),
        ("1.7976931348623157e+308", F64, 1.7976931348623157e308),
        ("18446744073709551615", U64, 2**64 - 1), ("-2147483648", I32, -(2**31)),
    ],
)
def test_literals_round_trip_bit_exactly(literal, ty, expected):
    text = kernel_text(f"%a: {ty} = const {literal}")
    (const,) = parse(text).functions[0].body
    assert const == Const(Value("a", ty), expected)
    if isinstance(expected, float) and not math.isnan(expected):
        assert math.copysign(1, const.value) == math.copysign(1, expected)
        assert const.value.hex() == expected.hex()
    assert str(parse(text)) == text


def test_comments_blank_lines_and_missing_final_newline_are_accepted():
    text = "# produced by hand\nringir 1\n# a kernel\nkernel @k() -> void {  # header\n\n  barrier # sync\n}"
    m = parse(text)
    assert str(m) == H + "kernel @k() -> void {\n  barrier\n}\n"


def test_empty_module_and_empty_regions():
    assert parse("ringir 1\n") == Module(())
    text = kernel_text("%t: bool = const false", "if %t {", "} else {", "  barrier", "}", "loop {", "}")
    assert str(parse(text)) == text


# --- malformed input: message, line, column and caret ---------------------------------


def error_of(text: str) -> CompileError:
    with pytest.raises(CompileError) as info:
        parse(text, "bad.rir")
    err = info.value
    assert err.filename == "bad.rir"
    rendered = str(err)
    # The rendered error shows the source line and a caret under the column.
    assert rendered.startswith(f"bad.rir:{err.line}:{err.col}: error: ")
    src, caret = rendered.split("\n")[1:3]
    assert src == "    " + text.splitlines()[err.line - 1] if text.strip() else True
    assert caret.index("^") == 4 + err.col - 1
    return err


def check(text: str, line: int, col: int, *words: str) -> CompileError:
    err = error_of(text)
    assert (err.line, err.col) == (line, col), str(err)
    for word in words:
        assert word in err.message, err.message
    assert "Traceback" not in str(err) and "lark" not in str(err).lower()
    return err


def test_missing_header():
    check("kernel @k() -> void {\n}\n", 1, 1, "must begin with the header 'ringir 1'")
    check("", 1, 1, "empty")


def test_unsupported_version():
    check("ringir 2\n", 1, 8, "unsupported RingIR text version 2", "reads version 1")


def test_unexpected_token_says_what_was_expected():
    err = check(kernel_text("%0: i32 = add %a %b", header="kernel @k(%a: i32, %b: i32) -> void {"),
                4, 20, "unexpected '%b'", "','", "end of line")
    assert "^^" in str(err)


def test_unexpected_character():
    check(kernel_text("%0: i32 = const 1 !"), 4, 21, "unexpected character '!'")


def test_unexpected_end_of_input():
    check(H + "kernel @k() -> void {\n  barrier\n", 4, 10, "unexpected end of input", "'}'")


def test_stray_closing_brace():
    check(kernel_text("barrier") + "}\n", 6, 1, "unexpected '}'", "struct or function")


def test_bad_function_header():
    check(H + "kernel @k( -> void {\n}\n", 3, 12, "unexpected '->'", "')'")
    check(H + "kernel k() -> void {\n}\n", 3, 8, "function name such as @f")
    check(H + "funky @k() -> void {\n}\n", 3, 1, "unknown function kind 'funky'")


def test_unknown_opcode_and_statement():
    check(kernel_text("%0: i32 = frob"), 4, 13, "unknown opcode 'frob'")
    check(kernel_text("frob"), 4, 3, "unknown statement 'frob'")
    check(kernel_text("add"), 4, 3, "'add' defines a value")
    check(kernel_text("%0: i32 = barrier"), 4, 13, "'barrier' defines no value")


def test_wrong_operand_shapes():
    check(kernel_text("%0: i32 = const 1", "%1: i32 = add %0"), 5, 13, "'add %a, %b'")
    check(kernel_text("%0: i32 = const 1", "%1: i32 = load %0"), 5, 13, "load %array[%index]")
    check(kernel_text("%0: i32 = global_id 3"), 4, 13, "DIM 0, 1 or 2")
    check(kernel_text("%0: i32 = const 1", "store_var %0"), 5, 3, "store_var $x, %value")


def test_undefined_value():
    check(kernel_text("%0: i32 = add %x, %x"), 4, 17, "'%x' is used before it is defined")


def test_value_out_of_scope():
    check(
        kernel_text("%t: bool = const true", "if %t {", "  %z: i32 = const 1", "}", "%w: i32 = neg %z"),
        8, 17, "'%z' is not visible here", "line 6",
    )


def test_duplicate_definitions():
    check(kernel_text("%0: i32 = const 1", "%0: i32 = const 2"), 5, 3, "'%0' is defined twice")
    check(H + "kernel @k(%a: i32, %a: i32) -> void {\n}\n", 3, 20, "'%a' is defined twice")
    check(kernel_text("var $x: i32", "var $x: f32"), 5, 7, "'$x' is declared twice")
    check(H + "kernel @k() -> void {\n}\nfunc @k() -> void {\n}\n", 5, 6, "'@k' is defined twice")
    check(H + "struct S {\n  a: i32\n}\nstruct S {\n  b: i32\n}\n", 6, 8, "struct 'S' is defined twice")
    check(H + "struct S {\n  a: i32\n  a: f32\n}\n", 5, 3, "field 'a' twice")


def test_undeclared_and_misplaced_locals():
    check(kernel_text("%0: i32 = load_var $y"), 4, 22, "'$y' is not declared")
    check(kernel_text("barrier", "var $x: i32"), 5, 7, "must come first")


def test_bad_types():
    check(kernel_text("%0: i33 = const 1"), 4, 7, "unknown type 'i33'")
    check(kernel_text("%s: array<f32, texture, 4> = shared_array"), 4, 18, "unknown address space")
    check(kernel_text("%s: array<vec4, shared, 4> = shared_array"), 4, 13, "scalar type")
    check(kernel_text("%s: array<f32, shared, 0> = shared_array"), 4, 26, "positive integer")
    check(kernel_text("%0: struct Nope = const 1"), 4, 14, "unknown struct 'Nope'")
    check(kernel_text("%0: void = const 1"), 4, 3, "cannot have type void")
    check(kernel_text("var $x: array<f32, global>"), 4, 7, "scalar type")


def test_bad_literals():
    check(kernel_text("%0: i32 = const 1.5"), 4, 19, "bad i32 literal '1.5'")
    check(kernel_text("%0: bool = const 1"), 4, 20, "bad bool literal")
    check(kernel_text("%0: f32 = const true"), 4, 19, "bad f32 literal")
    check(kernel_text("%0: f64 = const 1e999"), 4, 19, "out of range")


def test_integer_out_of_range():
    check(kernel_text("%0: i32 = const 2147483648"), 4, 19, "out of range for i32")
    check(kernel_text("%0: u32 = const -1"), 4, 19, "out of range for u32")


def test_verifier_errors_point_at_the_parsed_line():
    err = check(kernel_text("%0: f32 = const 1.0", "%1: i32 = add %0, %0"), 5, 3,
                "'add' result must have type f32")
    assert str(err).splitlines()[1] == "      %1: i32 = add %0, %0"
    check(kernel_text("break"), 4, 3, "'break' outside a loop")
    check(H + "func @f() -> i32 {\n  %0: i32 = const 1\n}\n", 3, 1, "may reach its end")
    check(kernel_text("call @nope()"), 4, 3, "unknown function '@nope'")


def test_parser_is_built_once():
    from ringkernel.ringir.parser import _lark

    assert _lark() is _lark()


def test_negative_nan_round_trips():
    # Regression: a NaN with its sign bit set printed as "nan" but compared unequal.
    m = Module(())
    text = kernel_text("%a: f64 = const nan")
    negative = Const(Value("a", F64), -math.nan)
    assert math.copysign(1, negative.value) == -1
    assert parse(text).functions[0].body == (negative,)
    assert m == parse("ringir 1\n")
