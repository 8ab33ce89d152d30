"""Struct values on the devices: ``Array[S]`` backed by ``S.dtype``, struct arguments, Vec indexing.

The layout of ``S.dtype`` (docs/layout.md) is checked against what each
target itself makes of the same struct: WGSL's storage layout (a hand-written
shader reading ``array<S>`` on wgpu), MSL's (clang's ``offsetof``), and the
cpu and wgpu backends reading and writing every field vs numpy.
"""

from __future__ import annotations

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, Vec, f32, i32, u32
from ringkernel.runtime.arguments import LaunchError
from ringkernel.runtime.wgpu import WgpuBackend

BACKENDS = ["cpu"] + (["wgpu"] if WgpuBackend.available() else [])


@rk.struct
class Particle:
    x: f32
    k: i32
    tag: u32
    v: Vec[f32, 3]
    c: Vec[i32, 2]
    w: f32


def _particles(n: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    a = np.zeros(n, dtype=Particle.dtype)
    a["x"] = rng.uniform(-1, 1, n)
    a["k"] = rng.integers(-100, 100, n)
    a["tag"] = rng.integers(0, 2**32 - 1, n, dtype=np.uint64)
    a["v"] = rng.uniform(-1, 1, (n, 3))
    a["c"] = rng.integers(-9, 9, (n, 2))
    a["w"] = rng.uniform(0, 1, n)
    return a


def test_dtype_is_the_documented_layout() -> None:
    dt = Particle.dtype
    assert [dt.fields[n][1] for n in dt.names] == [0, 4, 8, 12, 24, 32]
    assert dt.itemsize == 36 and dt.alignment <= 4
    assert dt.fields["v"][0] == np.dtype(("<f4", (3,)))


@rk.kernel
def touch_every_field(a: Array[Particle], ref: Particle, n: i32):
    i = rk.global_id(0)
    if i < n:
        p = a[i]
        p.x = p.x * 2.0 + ref.x
        p.k = p.k - ref.k
        p.tag = p.tag ^ ref.tag
        p.v = p.v * ref.w + ref.v
        p.c[1] = p.c[0] + p.c[1]
        p.w = p.v[0] + p.v[1] + p.v[2]
        a[i] = p


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_field_is_read_and_written_as_numpy_sees_it(backend: str) -> None:
    n = 50
    a = _particles(n)
    ref = Particle(x=0.5, k=7, tag=0xF0F0F0F0, v=[1.0, 2.0, 3.0], c=[0, 0], w=2.0)
    want = a.copy()
    want["x"] = want["x"] * np.float32(2) + np.float32(0.5)
    want["k"] -= 7
    want["tag"] ^= np.uint32(0xF0F0F0F0)
    want["v"] = want["v"] * np.float32(2) + np.array([1, 2, 3], np.float32)
    want["c"][:, 1] += want["c"][:, 0]
    want["w"] = want["v"].sum(axis=1)
    touch_every_field[1, 64, backend](a, ref, n)
    for name in Particle.dtype.names:
        np.testing.assert_allclose(a[name], want[name], rtol=1e-6, err_msg=name)


_WGSL_READER = """
struct Particle { x: f32, k: i32, tag: u32, v: array<f32, 3>, c: array<i32, 2>, w: f32 }
@group(0) @binding(0) var<storage, read> src: array<Particle>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(1)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let p = src[id.x];
    let o = id.x * 9u;
    dst[o] = p.x; dst[o + 1u] = f32(p.k); dst[o + 2u] = f32(p.tag & 0xFFu);
    dst[o + 3u] = p.v[0]; dst[o + 4u] = p.v[1]; dst[o + 5u] = p.v[2];
    dst[o + 6u] = f32(p.c[0]); dst[o + 7u] = f32(p.c[1]); dst[o + 8u] = p.w;
}
"""


@pytest.mark.skipif("wgpu" not in BACKENDS, reason="wgpu unavailable")
def test_wgsl_storage_layout_of_the_same_struct_matches_the_dtype() -> None:
    """WGSL's own layout rules (naga + lavapipe), not ours, read a numpy array of S.dtype."""
    import wgpu

    from ringkernel.lowering.wgsl.naga import create_shader_module
    from ringkernel.runtime import get_backend

    device = get_backend("wgpu").device
    n = 5
    a = _particles(n)
    src = device.create_buffer_with_data(data=a.tobytes(), usage=wgpu.BufferUsage.STORAGE)
    dst = device.create_buffer(size=n * 9 * 4, usage=wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_SRC)
    module = create_shader_module(device, _WGSL_READER, "<layout>")
    stage = {"module": module, "entry_point": "main"}
    pipeline = device.create_compute_pipeline(layout="auto", compute=stage)
    group = device.create_bind_group(layout=pipeline.get_bind_group_layout(0), entries=[
        {"binding": 0, "resource": {"buffer": src}}, {"binding": 1, "resource": {"buffer": dst}}])
    encoder = device.create_command_encoder()
    compute = encoder.begin_compute_pass()
    compute.set_pipeline(pipeline)
    compute.set_bind_group(0, group)
    compute.dispatch_workgroups(n)
    compute.end()
    device.queue.submit([encoder.finish()])
    got = np.frombuffer(device.queue.read_buffer(dst), np.float32).reshape(n, 9)
    want = np.column_stack([a["x"], a["k"], a["tag"] & 0xFF, a["v"], a["c"], a["w"]]).astype(np.float32)
    np.testing.assert_array_equal(got, want)


def test_msl_layout_of_the_same_struct_matches_the_dtype() -> None:
    """clang, compiling the MSL struct with the Metal shim, puts every field at the dtype's offset."""
    from ringkernel.lowering.msl.check import check_msl, find_clang

    try:
        find_clang()
    except rk.CompileError as exc:
        pytest.skip(str(exc))
    dt = Particle.dtype
    asserts = "\n".join(
        f'static_assert(__builtin_offsetof(Particle, {name}) == {dt.fields[name][1]}, "{name}");'
        for name in dt.names
    )
    text = (
        "#include <metal_stdlib>\nusing namespace metal;\n"
        "struct Particle { float x; int k; uint tag; float v[3]; int c[2]; float w; };\n"
        f"{asserts}\nstatic_assert(sizeof(Particle) == {dt.itemsize}, \"size\");\n"
        "kernel void k(device Particle* p [[buffer(0)]]) { p[0].x = 1.0f; }\n"
    )
    check_msl(text)


@rk.kernel
def poke_vec(a: Array[Particle], j: i32, jj: i32, out: Array[f32]):
    if rk.global_id(0) == 0:
        a[0].v[j] = 99.0  # memory Vec, dynamic index
        v = a[1].v
        v[j] = 42.0  # register Vec, dynamic index
        out[0] = v[jj]
        out[1] = a[1].v[jj]
        a[1].v = v


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("j", [-1, 3, 100, -(2**31)])
def test_dynamic_vec_index_out_of_range_touches_nothing(backend: str, j: int) -> None:
    a = _particles(2)
    before = a.copy()
    out = np.full(2, 7.0, np.float32)
    poke_vec.launch(1, 1, [a, j, j, out], backend=backend)
    assert a.tobytes() == before.tobytes()
    np.testing.assert_array_equal(out, [0.0, 0.0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_dynamic_vec_index_in_range(backend: str) -> None:
    a = _particles(2)
    old = a["v"][1, 2]
    out = np.zeros(2, np.float32)
    poke_vec.launch(1, 1, [a, 2, 2, out], backend=backend)
    assert a["v"][0, 2] == 99.0 and a["v"][1, 2] == 42.0
    np.testing.assert_array_equal(out, [42.0, old])  # out[1] was read before a[1].v was stored


def test_checked_cpu_launch_sees_no_out_of_bounds_access() -> None:
    a = _particles(2)
    poke_vec.launch(1, 1, [a, 5, 5, np.zeros(2, np.float32)], backend="cpu", checked=True)


def test_wrong_array_dtype_names_the_struct_dtype() -> None:
    wrong = np.zeros(4, np.float32)
    with pytest.raises(LaunchError, match=r"argument 'a' .*struct's dtype .*'x'.*got float32"):
        touch_every_field[1, 1, "cpu"](wrong, Particle(0, 0, 0, [0, 0, 0], [0, 0], 0), 4)


def test_struct_argument_must_be_a_record_of_its_dtype() -> None:
    with pytest.raises(LaunchError, match="argument 'ref' .*record of the struct's dtype"):
        touch_every_field[1, 1, "cpu"](_particles(1), (1.0, 2), 1)


def test_struct_array_must_be_one_dimensional_and_contiguous() -> None:
    with pytest.raises(LaunchError, match="1-D C-contiguous"):
        touch_every_field[1, 1, "cpu"](_particles(4)[::2], _particles(1)[0], 2)


def test_argument_count_counts_python_parameters() -> None:
    with pytest.raises(LaunchError, match=r"takes 3 argument\(s\) \(a, ref, n\), got 2"):
        touch_every_field[1, 1, "cpu"](_particles(1), 1)


def test_host_constructors() -> None:
    p = Particle(1.5, -2, 3, v=[1, 2, 3], c=[4, 5], w=6)
    assert p.dtype == Particle.dtype and p["c"][1] == 5
    with pytest.raises(TypeError, match="no field 'q'"):
        Particle(q=1)
    np.testing.assert_array_equal(Vec[f32, 2](1, 2), np.array([1, 2], np.float32))
    assert Vec[u32, 3].zeros().dtype == np.uint32


@pytest.mark.parametrize("backend", BACKENDS)
def test_struct_array_stays_on_the_device_as_its_words(backend: str) -> None:
    a = _particles(8)
    words = rk.to_device(a.view(np.uint32), backend)
    ref = Particle(x=0.0, k=0, tag=0, v=[0.0, 0.0, 0.0], c=[0, 0], w=1.0)
    touch_every_field[1, 64, backend](words, ref, 8)
    got = words.numpy().view(Particle.dtype)
    np.testing.assert_allclose(got["x"], a["x"] * 2, rtol=1e-6)
    np.testing.assert_allclose(got["w"], a["v"].sum(axis=1), rtol=1e-5)
    with pytest.raises(LaunchError, match=r"uint32 words of elements of .*rk.to_device\(a.view"):
        touch_every_field[1, 64, backend](rk.to_device(np.zeros(10, np.uint32), backend), ref, 1)
