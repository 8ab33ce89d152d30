"""WGSL emission: structure, mangling, type errors, determinism, naga validation."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import ringkernel as rk
from ringkernel.lowering.wgsl import check_wgsl, lower_module_to_wgsl, plan_kernel_bindings
from ringkernel.lowering.wgsl.naga import WgpuUnavailable, device_has_f16, get_device
from ringkernel.ringir import (
    BOOL,
    F32,
    F64,
    I32,
    I64,
    U32,
    AddressSpace,
    ArrayType,
    FunctionBuilder,
    Module,
    verify,
)
from ringkernel.ringir.diagnostics import CompileError, SourceLoc


def _naga_or_skip() -> None:
    try:
        get_device()
    except WgpuUnavailable as exc:
        pytest.skip(f"no wgpu device to run naga: {exc}")


def _saxpy(name: str = "saxpy", names: tuple[str, ...] = ("a", "x", "y", "n")) -> Module:
    a_, x_, y_, n_ = names
    fb = FunctionBuilder(
        name, "kernel", [(a_, F32), (x_, ArrayType(F32)), (y_, ArrayType(F32)), (n_, I32)]
    )
    a, x, y, n = fb.params
    i = fb.thread_index("global_id", 0)
    with fb.if_(fb.compare("lt", i, n)):
        fb.store(y, i, fb.binary("add", fb.binary("mul", a, fb.load(x, i)), fb.load(y, i)))
    return verify(Module((fb.finish(),)))


def _every_op_module() -> Module:
    """One kernel touching each construct family: ops, casts, math, loops, atomics, calls."""
    helper = FunctionBuilder("scale", "func", [("out", ArrayType(F32)), ("i", I32), ("v", F32)])
    out, i, v = helper.params
    helper.store(out, i, helper.binary("mul", v, helper.const(2.0, F32)))
    pure = FunctionBuilder("twice", "func", [("v", I32)], I32)
    (pv,) = pure.params
    with pure.loop():
        pure.return_(pure.binary("add", pv, pv))

    fb = FunctionBuilder(
        "everything", "kernel",
        [("f", ArrayType(F32)), ("g", ArrayType(F32)), ("u", ArrayType(U32)),
         ("b", ArrayType(BOOL)), ("k", I32), ("flag", BOOL), ("step", I32)],
    )
    f, g, u, b, k, flag, step = fb.params
    tid = fb.thread_index("thread_id", 0)
    gid = fb.thread_index("global_id", 0)
    for op in ("add", "sub", "mul", "div", "rem", "floordiv", "floormod", "min", "max"):
        fb.store(f, gid, fb.binary(op, fb.load(f, gid), fb.const(1.5, F32)))
        fb.binary(op, gid, k)
        fb.store(u, gid, fb.binary(op, fb.load(u, gid), fb.const(3, U32)))
    for op in ("and", "or", "xor", "shl", "shr"):
        fb.binary(op, gid, k)
    fb.binary("xor", flag, fb.load(b, gid))
    fb.unary("neg", fb.load(u, gid))
    fb.unary("bitnot", gid)
    fb.unary("not", flag)
    for func in ("sqrt", "rsqrt", "exp", "log", "sin", "cos", "tan", "tanh", "floor", "ceil",
                 "fabs", "abs"):
        fb.math(func, fb.load(f, gid))
    fb.math("pow", fb.load(f, gid), fb.const(2.0, F32))
    fb.math("fma", fb.load(f, gid), fb.load(f, gid), fb.load(f, gid))
    fb.math("abs", gid)
    for ty in (F32, I32, U32, BOOL):
        fb.cast(fb.load(f, gid), ty)
        fb.cast(gid, ty)
    fb.store(b, gid, fb.compare("gt", fb.load(f, gid), fb.const(0.0, F32)))
    shared = fb.shared_array(F32, 64)
    fb.store(shared, tid, fb.load(f, gid))
    fb.barrier()
    fb.atomic("add", g, tid, fb.load(shared, tid))
    fb.atomic("sub", g, tid, fb.const(0.25, F32))
    fb.atomic("exchange", g, tid, fb.load(g, tid))
    for op in ("add", "sub", "min", "max", "and", "or", "xor", "exchange"):
        fb.atomic(op, u, tid, fb.const(1, U32))
    fb.atomic_cas(u, tid, fb.const(1, U32), fb.const(2, U32))
    counter = fb.local("j", I32)
    with fb.for_range(counter, fb.const(10, I32), fb.const(0, I32), step):
        with fb.if_(fb.compare("eq", fb.load_var(counter), k)):
            fb.continue_()
        with fb.if_(fb.compare("gt", fb.load_var(counter), fb.const(100, I32))):
            fb.break_()
    fb.call("scale", (f, gid, fb.load(f, gid)), helper.return_type)
    fb.call("scale", (g, gid, fb.const(1.0, F32)), helper.return_type)
    fb.call("twice", (gid,), I32)
    for kind in ("thread_id", "block_id", "block_dim", "grid_dim", "global_id"):
        for d in range(3):
            fb.thread_index(kind, d)
    return verify(Module((helper.finish(), pure.finish(), fb.finish())))


def test_saxpy_text_has_bindings_uniforms_and_entry_point() -> None:
    text = lower_module_to_wgsl(_saxpy(), block=128)
    assert "@compute @workgroup_size(128, 1, 1)\nfn k_saxpy(" in text
    assert "@group(0) @binding(0) var<storage, read_write> g_saxpy_x: array<f32>;" in text
    assert "@group(0) @binding(1) var<storage, read_write> g_saxpy_y: array<f32>;" in text
    assert "@group(0) @binding(2) var<uniform> u_saxpy: P_saxpy;" in text
    assert "(i32(rk_wid.x) * 128i + i32(rk_lid.x))" in text


def test_bindings_plan_matches_emitted_text() -> None:
    module = _every_op_module()
    plan = plan_kernel_bindings(module.get("everything"))
    assert [(a.param, a.binding) for a in plan.arrays] == [("f", 0), ("g", 1), ("u", 2), ("b", 3)]
    assert [(s.param, s.offset, s.type) for s in plan.scalars] == [
        ("k", 0, "i32"), ("flag", 4, "bool"), ("step", 8, "i32")
    ]
    assert plan.uniform_binding == 4 and plan.uniform_size == 16
    assert plan.entry_point == "k_everything"
    text = lower_module_to_wgsl(module)
    assert "@group(0) @binding(4) var<uniform>" in text
    assert "fn k_everything(" in text


def test_every_construct_validates_with_naga() -> None:
    _naga_or_skip()
    text = lower_module_to_wgsl(_every_op_module(), block=(64, 1, 1))
    check_wgsl(text)
    # atomically used arrays are atomic everywhere; f32 goes through u32 bits
    assert "var<storage, read_write> g_everything_g: array<atomic<u32>>;" in text
    assert "var<storage, read_write> g_everything_u: array<atomic<u32>>;" in text
    assert "var<storage, read_write> g_everything_f: array<f32>;" in text
    assert "atomicCompareExchangeWeak" in text
    # a func taking arrays is specialized once per bound array
    assert text.count("fn f_scale") == 2
    assert "fn f_twice(v_v: i32) -> i32" in text
    assert "storageBarrier();\n    workgroupBarrier();" in text


def test_multiple_kernels_and_kernel_selection() -> None:
    _naga_or_skip()
    first = _saxpy("first").functions[0]
    second = _saxpy("second").functions[0]
    module = verify(Module((first, second)))
    both = lower_module_to_wgsl(module)
    check_wgsl(both)
    assert "fn k_first(" in both and "fn k_second(" in both
    only = lower_module_to_wgsl(module, kernels="second")
    assert "k_first" not in only and "fn k_second(" in only
    with pytest.raises(CompileError, match="no kernel named 'third'"):
        lower_module_to_wgsl(module, kernels=["third"])


@pytest.mark.parametrize("block", [0, (1, 2, 3, 4), "64", (True,), (-1, 1)])
def test_bad_block_is_a_compile_error(block: object) -> None:
    with pytest.raises(CompileError, match="block must be"):
        lower_module_to_wgsl(_saxpy(), block=block)


HOSTILE = ("fn", "let", "loop", "workgroup_size")


def test_hostile_identifiers_are_mangled_and_valid() -> None:
    _naga_or_skip()
    module = _saxpy("var", HOSTILE)
    text = lower_module_to_wgsl(module)
    check_wgsl(text)
    assert "fn k_var(" in text
    for mangled in ("v_fn", "g_var_let", "g_var_loop", "v_workgroup_size"):
        assert mangled in text


def test_injection_attempts_stay_identifiers() -> None:
    # The verifier refuses names the text form cannot spell, so code-like names never
    # reach an emitter; names that are valid RingIR but collide with WGSL or with
    # generated names are mangled by the emitter.
    with pytest.raises(CompileError, match="not a valid function name"):
        _saxpy("k; }\nfn evil() {")
    with pytest.raises(CompileError, match="not a valid value name"):
        _saxpy("k", ("a){}fn x(", "t0", "rk_lid", "v_x"))
    _naga_or_skip()
    module = _saxpy("fn", ("t0", "rk_lid", "v_x", "loop.x"))
    text = lower_module_to_wgsl(module)
    check_wgsl(text)
    assert "fn fn" not in text and text.count("@compute") == 1


@pytest.mark.parametrize("ty", [F64, I64])
def test_64_bit_types_are_rejected_at_their_source(ty) -> None:
    loc = SourceLoc("kern.py", 7, 5, 7, 12)
    fb = FunctionBuilder("k", "kernel", [("out", ArrayType(F32))], loc=SourceLoc("kern.py", 1, 1))
    (out,) = fb.params
    fb.loc = loc
    wide = fb.cast(fb.const(1.0, F32), ty)
    fb.store(out, fb.const(0, I32), fb.cast(wide, F32))
    module = verify(Module((fb.finish(),)))
    with pytest.raises(CompileError) as info:
        lower_module_to_wgsl(module)
    err = info.value
    assert (err.filename, err.line, err.col) == ("kern.py", 7, 5)
    assert f"type {ty}" in err.message and "WGSL does not support" in err.message


def test_64_bit_parameter_names_the_parameter() -> None:
    fb = FunctionBuilder("k", "kernel", [("big", ArrayType(F64))], loc=SourceLoc("m.py", 3, 1))
    module = verify(Module((fb.finish(),)))
    with pytest.raises(CompileError, match="parameter 'big' of kernel 'k' has type f64"):
        lower_module_to_wgsl(module)


def test_64_bit_from_the_dsl_points_at_the_line() -> None:
    @rk.kernel
    def widen(out: rk.Array[rk.f32]):
        x = rk.f64(1.5)
        out[0] = rk.f32(x)

    with pytest.raises(CompileError) as info:
        widen.compile("wgsl")
    assert info.value.filename == __file__
    assert "f64" in str(info.value)



def test_naga_errors_point_at_the_wgsl_line() -> None:
    _naga_or_skip()
    bad = "// header\n@compute @workgroup_size(1)\nfn main() {\n    let x: i32 = 1.5f;\n}\n"
    with pytest.raises(CompileError) as info:
        check_wgsl(bad, label="<bad>")
    err = info.value
    assert err.filename == "<bad>" and err.line == 4
    assert "let x: i32 = 1.5f;" in str(err)
    assert "naga rejected the generated WGSL" in err.message


def test_output_is_byte_identical_across_processes() -> None:
    script = textwrap.dedent(
        """
        import hashlib, sys
        sys.path.insert(0, %r)
        import kernel_corpus
        from test_wgsl_emit import _every_op_module
        from ringkernel.lowering.wgsl import lower_module_to_wgsl
        h = hashlib.sha256(lower_module_to_wgsl(_every_op_module()).encode())
        for case in kernel_corpus.CASES:
            if "f64" in case.needs or "i64" in case.needs:
                continue
            h.update(case.kernel.compile("wgsl", block=case.block, f16="f16" in case.needs).encode())
        print(h.hexdigest())
        """
    ) % os.path.join(os.path.dirname(__file__), "..", "..")
    digests = set()
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=os.path.dirname(__file__))
        run = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
        )
        digests.add(run.stdout.strip())
    assert len(digests) == 1


def test_every_corpus_kernel_validates_with_naga() -> None:
    _naga_or_skip()
    import kernel_corpus

    for case in kernel_corpus.CASES:
        if "f64" in case.needs or "i64" in case.needs:
            with pytest.raises(CompileError):
                case.kernel.compile("wgsl")
            continue
        if "f16" in case.needs and not device_has_f16():
            continue  # tests/frontends/test_small_types.py checks the refusal
        f16 = "f16" in case.needs
        check_wgsl(case.kernel.compile("wgsl", block=case.block, f16=f16), label=case.name)


def test_shared_arrays_are_hoisted_per_kernel() -> None:
    fb = FunctionBuilder("k", "kernel", [("o", ArrayType(I32))])
    (o,) = fb.params
    s = fb.shared_array(I32, 32)
    t = fb.shared_array(BOOL, 8)
    tid = fb.thread_index("thread_id", 0)
    fb.store(s, tid, tid)
    fb.store(t, tid, fb.compare("gt", tid, fb.const(3, I32)))
    fb.store(o, tid, fb.cast(fb.load(t, tid), I32))
    text = lower_module_to_wgsl(verify(Module((fb.finish(),))))
    assert "var<workgroup> s_k_0: array<i32, 32>;" in text
    assert "var<workgroup> s_k_1: array<u32, 8>;" in text
    assert ArrayType(I32, AddressSpace.SHARED, 32)  # the IR form the test relies on
