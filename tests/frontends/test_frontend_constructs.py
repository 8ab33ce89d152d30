"""Every DSL construct produces verified RingIR that round-trips through its text form."""

from __future__ import annotations

import importlib.util
import math
import sys
import textwrap
from pathlib import Path

import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32, u32
from ringkernel.ringir import (
    AtomicCAS,
    AtomicRMW,
    Barrier,
    Binary,
    Break,
    Call,
    Cast,
    Compare,
    Const,
    Continue,
    ForRange,
    If,
    Load,
    Loop,
    MathCall,
    Return,
    SharedArray,
    Store,
    ThreadIndex,
    Unary,
    parse,
    verify,
    walk,
)

SCALE = 3
RATE = 0.5


def stmts(kernel, cls=None, fn=None):
    module = kernel.ir
    function = module.get(fn or kernel.__name__)
    found = list(walk(function.body))
    return [s for s in found if cls is None or isinstance(s, cls)]


def roundtrip(kernel):
    module = kernel.ir
    verify(module)
    text = str(module)
    assert text.startswith("ringir 1\n")
    assert parse(text) == module
    assert str(parse(text)) == text
    return module


def test_saxpy_ir_shape():
    @rk.kernel
    def saxpy(a: f32, x: Array[f32], y: Array[f32], n: i32):
        i = rk.global_id(0)
        if i < n:
            y[i] = a * x[i] + y[i]

    roundtrip(saxpy)
    assert [s.kind for s in stmts(saxpy, ThreadIndex)] == ["global_id"]
    assert len(stmts(saxpy, Load)) == 2 and len(stmts(saxpy, Store)) == 1
    assert {s.op for s in stmts(saxpy, Binary)} == {"mul", "add"}
    assert saxpy.compile("rir") == str(saxpy.ir)


def test_thread_indices_all_dims():
    @rk.kernel
    def idx(out: Array[i32]):
        out[0] = rk.thread_id(0) + rk.block_id(1) + rk.block_dim(2) + rk.grid_dim(0) + rk.global_id(1)

    roundtrip(idx)
    got = sorted((s.kind, s.dim) for s in stmts(idx, ThreadIndex))
    assert got == [("block_dim", 2), ("block_id", 1), ("global_id", 1), ("grid_dim", 0), ("thread_id", 0)]


def test_shared_array_and_barrier():
    @rk.kernel
    def k(x: Array[f32]):
        buf = rk.shared_array(f32, 128)
        buf[rk.thread_id(0)] = x[rk.global_id(0)]
        rk.barrier()
        x[rk.global_id(0)] = buf[127 - rk.thread_id(0)]

    roundtrip(k)
    (shared,) = stmts(k, SharedArray)
    assert shared.result.type.size == 128 and str(shared.result.type) == "array<f32, shared, 128>"
    assert len(stmts(k, Barrier)) == 1


@pytest.mark.parametrize(
    "name,op",
    [
        ("atomic_add", "add"),
        ("atomic_sub", "sub"),
        ("atomic_min", "min"),
        ("atomic_max", "max"),
        ("atomic_and", "and"),
        ("atomic_or", "or"),
        ("atomic_xor", "xor"),
        ("atomic_exchange", "exchange"),
    ],
)
def test_atomics(name, op):
    fn = getattr(rk, name)

    @rk.kernel
    def k(a: Array[i32], old: Array[i32]):
        old[0] = fn(a, 1, 5)

    roundtrip(k)
    (node,) = stmts(k, AtomicRMW)
    assert node.op == op and str(node.result.type) == "i32"


def test_atomic_cas_and_float_atomic_add():
    @rk.kernel
    def k(a: Array[u32], f: Array[f32]):
        old = rk.atomic_cas(a, 0, 1, 2)
        rk.atomic_add(f, 0, 1.5)
        a[1] = old

    roundtrip(k)
    assert len(stmts(k, AtomicCAS)) == 1
    assert stmts(k, AtomicRMW)[0].result.type == f32


def test_math_functions_and_casts():
    @rk.kernel
    def k(x: Array[f32], y: Array[i32]):
        v = x[0]
        x[1] = math.sqrt(v) + math.exp(v) + math.log(v) + math.sin(v) + math.cos(v) + math.tan(v)
        x[2] = math.tanh(v) + math.pow(v, 2.0) + math.floor(v) + math.ceil(v) + math.fabs(v)
        x[3] = rk.rsqrt(v) + rk.fma(v, v, 1.0) + abs(v) + min(v, 1.0) + max(v, 2.0, 3.0)
        y[0] = i32(v) + int(v) + i32(u32(7))
        x[4] = f32(y[0]) + float(y[1])

    roundtrip(k)
    funcs = {s.func for s in stmts(k, MathCall)}
    assert funcs == {
        "sqrt",
        "exp",
        "log",
        "sin",
        "cos",
        "tan",
        "tanh",
        "pow",
        "floor",
        "ceil",
        "fabs",
        "rsqrt",
        "fma",
        "abs",
    }
    assert {s.op for s in stmts(k, Binary)} >= {"min", "max"}
    assert {str(s.result.type) for s in stmts(k, Cast)} == {"i32", "f32"}
    assert any(c.result.type == u32 and c.value == 7 for c in stmts(k, Const))  # u32(7) folds


def test_control_flow_constructs():
    @rk.kernel
    def k(x: Array[i32], n: i32):
        i = rk.global_id(0)
        if i == 0:
            x[0] = 1
        elif i == 1:
            x[1] = 2
        else:
            x[2] = 3
        for j in range(n):
            if j == 3:
                continue
            if j > 5:
                break
            x[j] += 1
        k = 0
        while k < n:
            k += 2
        if i > n:
            return
        x[3] = 1 if i > 2 else 0

    roundtrip(k)
    kinds = {type(s) for s in stmts(k)}
    assert {If, ForRange, Loop, Break, Continue, Return} <= kinds


def test_range_forms_and_negative_step():
    @rk.kernel
    def k(x: Array[i32], n: i32):
        for a in range(n):
            x[a] = 1
        for b in range(2, n):
            x[b] = 2
        for c in range(n, 0, -1):
            x[c] = 3

    roundtrip(k)
    loops = stmts(k, ForRange)
    assert len(loops) == 3
    consts = {s.result: s.value for s in stmts(k, Const)}
    assert consts[loops[2].step] == -1


def test_boolean_operators_short_circuit():
    @rk.kernel
    def k(x: Array[f32], n: i32):
        i = rk.global_id(0)
        if i < n and x[i] > 0.0 or not (i > 3):
            x[0] = 1.0

    roundtrip(k)
    # the load x[i] must sit inside the region guarded by i < n (short-circuit)
    module = k.ir
    top = module.get("k").body
    assert not any(isinstance(s, Load) for s in top), "x[i] must not be loaded unconditionally"
    assert any(isinstance(s, Unary) and s.op == "not" for s in stmts(k))


def test_conditional_expression_is_lazy():
    @rk.kernel
    def k(x: Array[f32], n: i32):
        i = rk.global_id(0)
        x[0] = x[i] if i < n else 0.0

    roundtrip(k)
    assert not any(isinstance(s, Load) for s in k.ir.get("k").body)


def test_floor_division_and_modulo():
    @rk.kernel
    def k(x: Array[i32], f: Array[f32]):
        x[0] = x[1] // x[2]
        x[3] = x[4] % x[5]
        f[0] = f[1] // f[2]
        f[1] = f[2] % f[3]
        f[4] = x[0] / x[1]

    roundtrip(k)
    ops = [s.op for s in stmts(k, Binary)]
    assert ops.count("floordiv") == 2 and ops.count("floormod") == 2
    div = [s for s in stmts(k, Binary) if s.op == "div"][0]
    assert div.result.type == f32  # Python's / is true division


def test_literals_take_the_other_operands_type_and_ints_promote():
    @rk.kernel
    def k(x: Array[f32], u: Array[u32], n: i32):
        u[0] = u[1] + 1
        x[0] = x[1] * 2
        x[2] = n * 0.5
        x[3] = n + x[4]

    roundtrip(k)
    consts = stmts(k, Const)
    assert any(c.result.type == u32 and c.value == 1 for c in consts)
    assert any(c.result.type == f32 and c.value == 2.0 for c in consts)
    assert len([c for c in stmts(k, Cast) if c.result.type == f32]) == 2


def test_augmented_assignment_all_operators():
    @rk.kernel
    def k(x: Array[i32]):
        v = x[0]
        v += 1
        v -= 2
        v *= 3
        v //= 4
        v %= 5
        v &= 6
        v |= 7
        v ^= 8
        v <<= 1
        v >>= 1
        x[1] += v

    roundtrip(k)
    ops = [s.op for s in stmts(k, Binary)]
    assert ops == ["add", "sub", "mul", "floordiv", "floormod", "and", "or", "xor", "shl", "shr", "add"]


def test_module_constants_are_compile_time():
    @rk.kernel
    def k(x: Array[f32]):
        x[SCALE] = x[0] * RATE

    roundtrip(k)
    consts = {c.value for c in stmts(k, Const)}
    assert {3, 0.5} <= consts


def test_device_function_calls_and_module_order():
    @rk.func
    def square(v: f32) -> f32:
        return v * v

    @rk.func
    def norm2(a: f32, b: f32) -> f32:
        return square(a) + square(b)

    @rk.kernel
    def k(x: Array[f32]):
        x[0] = norm2(x[1], 2.0)

    module = roundtrip(k)
    assert [f.name for f in module.functions] == ["square", "norm2", "k"]
    assert [c.callee for c in stmts(k, Call)] == ["norm2"]


def test_tuple_swap_reads_before_writing():
    @rk.kernel
    def k(x: Array[i32]):
        a = x[0]
        b = x[1]
        a, b = b, a
        x[0] = a
        x[1] = b

    roundtrip(k)


def test_annotated_locals_and_power():
    @rk.kernel
    def k(x: Array[f32]):
        acc: f32 = 0
        acc += x[0] ** 2
        x[1] = acc**0.5

    roundtrip(k)
    assert any(s.func == "pow" for s in stmts(k, MathCall))
    assert sum(1 for s in stmts(k, Binary) if s.op == "mul") >= 2


def test_while_true_with_break_and_constant_if():
    DEBUG = False

    @rk.kernel
    def k(x: Array[i32]):
        i = 0
        while True:
            i += 1
            if i > 10:
                break
        if DEBUG:
            x[5] = 5
        x[0] = i

    roundtrip(k)
    assert len(stmts(k, Compare)) == 1  # the constant `if DEBUG` folded away


def test_kernel_from_an_imported_module_file(tmp_path: Path):
    src = textwrap.dedent(
        """
        import ringkernel as rk
        from ringkernel import kernel, Array, f32 as F

        @kernel
        def scale(x: Array[F], s: F):
            x[rk.global_id(0)] *= s
        """
    )
    path = tmp_path / "user_kernels.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("user_kernels", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["user_kernels"] = module
    spec.loader.exec_module(module)
    try:
        roundtrip(module.scale)
    finally:
        del sys.modules["user_kernels"]


def test_every_corpus_kernel_roundtrips():
    import kernel_corpus

    for case in kernel_corpus.CASES:
        roundtrip(case.kernel)


def test_decorated_objects_keep_their_names_and_docs():
    @rk.kernel
    def documented(x: Array[f32]):
        """Doubles x."""
        x[0] *= 2.0

    assert documented.__name__ == "documented"
    assert documented.__doc__ == "Doubles x."
    assert "documented" in repr(documented)
