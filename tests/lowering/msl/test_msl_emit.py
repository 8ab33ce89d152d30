"""MSL emission: every corpus kernel passes the clang check; names, types, determinism."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import kernel_corpus
import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32
from ringkernel.lowering.msl import check_msl, lower_module_to_msl, msl_kernel_info
from ringkernel.lowering.msl.target import RESERVED, sanitize
from ringkernel.ringir import (
    F32,
    F64,
    I32,
    I64,
    U32,
    U64,
    ArrayType,
    FunctionBuilder,
    Module,
)
from ringkernel.ringir.diagnostics import CompileError, SourceLoc

CASE_IDS = [c.name for c in kernel_corpus.metal_cases()]


@pytest.mark.parametrize("case", kernel_corpus.metal_cases(), ids=CASE_IDS)
def test_corpus_kernel_passes_clang_check(case: kernel_corpus.KernelCase) -> None:
    text = case.kernel.compile("msl")
    assert "kernel void" in text
    check_msl(text)


@pytest.mark.parametrize("math", ["precise", "fast", "default"])
def test_math_modes_pass_check(math: str) -> None:
    text = lower_module_to_msl(kernel_corpus.math_functions.ir, math=math)
    prefix = {"precise": "metal::precise::sqrt", "fast": "metal::fast::sqrt", "default": "metal::sqrt"}
    assert prefix[math] in text
    check_msl(text)


def test_unknown_option_is_a_compile_error() -> None:
    with pytest.raises(CompileError, match="unknown MSL option"):
        lower_module_to_msl(kernel_corpus.saxpy.ir, fastmath=True)
    with pytest.raises(CompileError, match="math must be one of"):
        lower_module_to_msl(kernel_corpus.saxpy.ir, math="sloppy")


def test_saxpy_shape() -> None:
    text = kernel_corpus.saxpy.compile("msl")
    assert "kernel void saxpy(" in text
    assert "constant float& a [[buffer(0)]]" in text
    assert "device float* x [[buffer(1)]]" in text
    assert "constant int& n [[buffer(3)]]" in text
    assert "uint3 rk_gid [[thread_position_in_grid]]" in text


def test_shared_memory_and_barrier_shape() -> None:
    text = kernel_corpus.block_reduce.compile("msl")
    assert "threadgroup float " in text
    assert "threadgroup_barrier(mem_flags::mem_device | mem_flags::mem_threadgroup);" in text
    assert "[[thread_position_in_threadgroup]]" in text
    assert "[[threadgroup_position_in_grid]]" in text


def test_atomic_arrays_get_atomic_types_and_all_accesses_are_atomic() -> None:
    text = kernel_corpus.atomic_family.compile("msl")
    assert "device atomic_int* acc [[buffer(1)]]" in text
    assert "device atomic_float* fsum [[buffer(2)]]" in text
    assert "device int* v [[buffer(0)]]" in text
    assert "atomic_load_explicit(&acc[" in text
    assert "atomic_store_explicit(&old[" in text
    assert "atomic_compare_exchange_weak_explicit(&acc[" in text
    assert "acc[" not in text.replace("&acc[", "")


def test_kernel_info_gives_buffer_indices() -> None:
    info = msl_kernel_info(kernel_corpus.atomic_family.ir)["atomic_family"]
    assert info.entry == "atomic_family"
    assert [(p.name, p.index, p.is_array, p.atomic) for p in info.params] == [
        ("v", 0, True, False),
        ("acc", 1, True, True),
        ("fsum", 2, True, True),
        ("old", 3, True, True),
        ("n", 4, False, False),
    ]
    assert info.builtins == ("global_id",)


def _atomic_through_func() -> Module:
    """A func that does an atomic on its array parameter makes the caller's array atomic."""
    fb = FunctionBuilder("bump", "func", [("arr", ArrayType(U32)), ("i", I32)], U32)
    arr, i = fb.params
    one = fb.const(1, U32)
    fb.return_(fb.atomic("add", arr, i, one))
    bump = fb.finish()
    kb = FunctionBuilder("count", "kernel", [("hits", ArrayType(U32)), ("other", ArrayType(U32))])
    hits, other = kb.params
    gid = kb.thread_index("global_id", 0)
    kb.call("bump", (hits, gid), U32)
    kb.store(other, gid, kb.load(hits, gid))
    return Module((bump, kb.finish()))


def test_atomicity_propagates_along_calls() -> None:
    text = lower_module_to_msl(_atomic_through_func())
    assert "inline uint bump(device atomic_uint* arr, int i)" in text
    assert "device atomic_uint* hits [[buffer(0)]]" in text
    assert "device uint* other [[buffer(1)]]" in text
    assert "atomic_load_explicit(&hits[" in text
    check_msl(text)


def test_shared_atomics_use_threadgroup_atomic_types() -> None:
    kb = FunctionBuilder("tg", "kernel", [("out", ArrayType(I32))])
    (out,) = kb.params
    counter = kb.shared_array(I32, 1)
    zero = kb.const(0, I32)
    tid = kb.thread_index("thread_id", 0)
    with kb.if_(kb.compare("eq", tid, zero)):
        kb.store(counter, zero, zero)
    kb.barrier()
    one = kb.const(1, I32)
    kb.atomic("add", counter, zero, one)
    kb.barrier()
    kb.store(out, kb.thread_index("block_id", 0), kb.load(counter, zero))
    text = lower_module_to_msl(Module((kb.finish(),)))
    assert "threadgroup atomic_int v" in text
    check_msl(text)


def test_f64_is_rejected_at_its_source_location() -> None:
    loc = SourceLoc("kern.py", 7, 9, 7, 14)
    fb = FunctionBuilder("k", "kernel", [("x", ArrayType(F32))])
    (x,) = fb.params
    fb.loc = loc
    zero = fb.const(0, I32)
    wide = fb.cast(fb.load(x, zero), F64)
    fb.store(x, zero, fb.cast(wide, F32))
    with pytest.raises(CompileError) as err:
        lower_module_to_msl(Module((fb.finish(),)))
    assert err.value.filename == "kern.py" and err.value.line == 7 and err.value.col == 9
    assert "double" in str(err.value)


def test_f64_parameter_is_rejected() -> None:
    fb = FunctionBuilder("k", "kernel", [("x", ArrayType(F64))], loc=SourceLoc("k.py", 3, 1))
    with pytest.raises(CompileError, match="f64") as err:
        lower_module_to_msl(Module((fb.finish(),)))
    assert err.value.line == 3


def test_f64_through_frontend_names_the_line() -> None:
    @rk.kernel
    def widen(x: Array[rk.f64], n: i32):
        i = rk.global_id(0)
        if i < n:
            x[i] = x[i] * 2.0

    with pytest.raises(CompileError) as err:
        widen.compile("msl")
    assert err.value.filename and err.value.filename.endswith("test_msl_emit.py")
    assert "f64" in str(err.value)


def test_64bit_atomics_are_rejected_but_64bit_ints_are_fine() -> None:
    fb = FunctionBuilder("k", "kernel", [("x", ArrayType(I64)), ("y", ArrayType(U64))])
    x, y = fb.params
    zero = fb.const(0, I32)
    big = fb.const(-(2**63), I64)
    fb.store(x, zero, fb.binary("floordiv", fb.load(x, zero), big))
    fb.store(y, zero, fb.binary("shl", fb.load(y, zero), fb.const(2**64 - 1, U64)))
    text = lower_module_to_msl(Module((fb.finish(),)))
    assert "device long* x" in text and "device ulong* y" in text
    check_msl(text)
    fb = FunctionBuilder("k", "kernel", [("x", ArrayType(I64))], loc=SourceLoc("a.py", 2, 3))
    (x,) = fb.params
    zero = fb.const(0, I32)
    fb.atomic("add", x, zero, fb.const(1, I64))
    with pytest.raises(CompileError, match="64-bit atomics"):
        lower_module_to_msl(Module((fb.finish(),)))


def test_special_literals_are_exact_and_valid() -> None:
    fb = FunctionBuilder("lits", "kernel", [("f", ArrayType(F32)), ("i", ArrayType(I32))])
    f, i = fb.params
    values = [float("nan"), float("inf"), -float("inf"), -0.0, 0.1, 3.4028234663852886e38, 1e-45]
    for n, v in enumerate(values):
        fb.store(f, fb.const(n, I32), fb.const(v, F32))
    fb.store(i, fb.const(0, I32), fb.const(-(2**31), I32))
    text = lower_module_to_msl(Module((fb.finish(),)))
    assert "as_type<float>(0x7f800000u)" in text and "as_type<float>(0xff800000u)" in text
    assert "-0.0f" in text and "0.1f" in text and "(-2147483647 - 1)" in text
    check_msl(text)


HOSTILE = [
    "a.b",
    "__reserved",
    "_Upper",
    "9lives",
    "float",
    "kernel",
    "device",
    "threadgroup",
    "uint3",
    "metal",
    "rk_gid",
    "RK_SHIM_EXEC",
    "NAN",
    "main",
    "atomic_fetch_add_explicit",
    "v0",
    "ünï",
]


def _hostile_module() -> Module:
    helper = FunctionBuilder("float", "func", [("kernel", F32)], F32)
    helper.return_(helper.binary("add", helper.params[0], helper.params[0]))
    params = [(name, ArrayType(F32)) for name in HOSTILE[:6]] + [("int", I32)]
    fb = FunctionBuilder("main", "kernel", params)
    gid = fb.thread_index("global_id", 0)
    n = fb.params[-1]
    for name in HOSTILE:
        fb.store_var(fb.local(name, I32), gid)
    with fb.if_(fb.compare("lt", gid, n)):
        for arr in fb.params[:6]:
            value = fb.call("float", (fb.load(arr, gid),), F32)
            assert value is not None
            fb.store(arr, fb.load_var(fb.local(HOSTILE[0], I32)), value)
    return Module((helper.finish(), fb.finish()))


def test_hostile_identifiers_are_mangled_and_compile() -> None:
    module = _hostile_module()
    text = lower_module_to_msl(module)
    check_msl(text)
    assert "kernel void main_u(" in text
    assert "inline float float_u(float kernel_u)" in text
    info = msl_kernel_info(module)["main"]
    assert info.entry == "main_u"
    assert len({p.msl_name for p in info.params}) == len(info.params)


@pytest.mark.parametrize(
    "name", ["x; } kernel void evil() { //", "a b", "", "__x", "#define", "rk_x", "Rk_x", "é"]
)
def test_sanitize_never_lets_syntax_through(name: str) -> None:
    ident = sanitize(name)
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", ident)
    assert "__" not in ident and ident not in RESERVED
    assert not ident.lower().startswith("rk_")


def test_hostile_frontend_names() -> None:
    @rk.kernel
    def kernel(device: Array[f32], constant: f32, uint3: i32, rk_gid: Array[i32]):
        threadgroup = rk.global_id(0)
        v0 = threadgroup
        if v0 < uint3:
            device[v0] = constant * 2.0
            rk_gid[v0] = v0

    text = kernel.compile("msl")
    check_msl(text)
    assert "kernel void kernel_u(" in text


def test_output_is_byte_identical_across_runs_and_processes() -> None:
    first = {case.name: lower_module_to_msl(case.kernel.ir) for case in kernel_corpus.metal_cases()}
    again = {case.name: lower_module_to_msl(case.kernel.ir) for case in kernel_corpus.metal_cases()}
    assert first == again
    hostile = lower_module_to_msl(_hostile_module())
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2])\n"
        "import kernel_corpus, test_msl_emit\n"
        "from ringkernel.lowering.msl import lower_module_to_msl\n"
        "print(''.join(lower_module_to_msl(c.kernel.ir) for c in kernel_corpus.metal_cases()), end='')\n"
        "print(lower_module_to_msl(test_msl_emit._hostile_module()), end='')\n"
    )
    tests_dir = os.path.dirname(kernel_corpus.__file__)
    expected = "".join(again[c.name] for c in kernel_corpus.metal_cases()) + hostile
    for seed in ("1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run(
            [sys.executable, "-c", script, tests_dir, os.path.dirname(__file__)],
            capture_output=True, text=True, env=env, check=True,
        ).stdout
        assert out == expected
