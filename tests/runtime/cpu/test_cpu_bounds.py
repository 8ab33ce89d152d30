"""Checked cpu launches: an out-of-bounds index is a BoundsError, never foreign memory.

On by default on cpu (``checked=None``); ``checked=False`` runs the unchecked
build.  Every way an array is touched is covered: loads, stores, atomics,
shared arrays, device-function parameters, and the three ways a block runs
(plain loop, work-item loops, a thread per work-item).
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32, u32
from ringkernel.compiler import compile_module
from ringkernel.kernels import launch_module
from ringkernel.ringir.diagnostics import CompileError
from ringkernel.runtime.backend import KernelBuild
from ringkernel.runtime.cpu import CpuBackend
from ringkernel.runtime.cpu.jit import jit_kernel


@rk.kernel
def shift_left(x: Array[f32], out: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        out[i] = x[i + 1]


@rk.kernel
def scatter(idx: Array[i32], out: Array[f32]):
    i = rk.global_id(0)
    out[idx[i]] = 1.0


@rk.kernel
def scatter_u32(idx: Array[u32], out: Array[f32]):
    out[idx[rk.global_id(0)]] = 1.0


@rk.kernel
def count_bins(values: Array[i32], bins: Array[i32]):
    rk.atomic_add(bins, values[rk.global_id(0)], 1)


@rk.kernel
def cas_at(idx: Array[i32], words: Array[i32], old: Array[i32]):
    i = rk.global_id(0)
    old[i] = rk.atomic_cas(words, idx[i], 0, 7)


@rk.func
def put(a: Array[f32], i: i32, v: f32):
    a[i] = v


@rk.kernel
def via_function(out: Array[f32], offset: i32):
    put(out, rk.global_id(0) + offset, 2.0)


@rk.kernel
def shared_overrun(out: Array[f32]):
    buf = rk.shared_array(f32, 64)
    t = rk.thread_id(0)
    buf[t] = f32(t)
    rk.barrier()
    out[rk.global_id(0)] = buf[t + 1]


@rk.kernel
def shared_overrun_varying_barrier(out: Array[f32]):
    buf = rk.shared_array(f32, 64)
    t = rk.thread_id(0)
    if out[t] > 100.0:
        rk.barrier()  # a barrier under a varying condition: the thread-per-work-item path
    buf[t] = 1.0
    out[t] = buf[t + 1]


def test_empty_array_write_is_an_error_not_a_segfault(tmp_path) -> None:
    """The reported crash: a kernel writing far past an empty array killed the interpreter."""
    script = textwrap.dedent(
        """
        import numpy as np
        import ringkernel as rk
        from ringkernel import Array, f32

        @rk.kernel
        def k(x: Array[f32]):
            x[rk.global_id(0) * 100000] = 1.0

        try:
            k.launch(64, 256, (np.zeros(0, np.float32),), backend="cpu")
        except rk.BoundsError as exc:
            print("BoundsError:", exc)
        """
    )
    path = tmp_path / "empty_write.py"
    path.write_text(script)
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    # blocks run on several worker threads: whichever work-item claims the record first is reported
    found = re.search(r"kernel 'k': index (\d+) out of bounds for array 'x' of length 0", done.stdout)
    assert found, done.stdout
    assert int(found[1]) % 100000 == 0 and int(found[1]) < 64 * 256 * 100000


def test_load_past_the_end_names_kernel_array_index_and_length() -> None:
    x = np.arange(8, dtype=np.float32)
    out = np.full(8, -1.0, np.float32)
    with pytest.raises(rk.BoundsError) as info:
        shift_left.launch(1, 8, (x, out, 8), backend="cpu")
    message = str(info.value)
    assert "kernel 'shift_left': index 8 out of bounds for array 'x' of length 8" in message
    assert f"{__file__}:" in message  # the source line of the access
    np.testing.assert_array_equal(out, [1, 2, 3, 4, 5, 6, 7, 0])  # the bad load gave 0
    assert isinstance(info.value, IndexError)


def test_negative_and_huge_unsigned_indices_are_caught() -> None:
    out = np.zeros(4, np.float32)
    with pytest.raises(rk.BoundsError, match="index -1 out of bounds for array 'out' of length 4"):
        scatter.launch(1, 1, (np.array([-1], np.int32), out), backend="cpu")
    with pytest.raises(rk.BoundsError, match=f"index {2**32 - 1} out of bounds"):
        scatter_u32.launch(1, 1, (np.array([2**32 - 1], np.uint32), out), backend="cpu")
    np.testing.assert_array_equal(out, 0)


def _jit(module, name: str, checked: bool):
    """The cpu backend's JIT of ``name`` compiled for the ``host`` target, as a launch does."""
    options = CpuBackend().kernel_options(name, checked)
    text = compile_module(module, "host", **options)
    return jit_kernel(KernelBuild(module, name, "host", options, text))


def test_checked_false_runs_the_unchecked_build() -> None:
    x = np.arange(9, dtype=np.float32)
    out = np.zeros(8, np.float32)
    shift_left.launch(1, 8, (x, out, 8), backend="cpu", checked=False)  # in bounds: no error
    np.testing.assert_array_equal(out, x[1:])
    module = shift_left.ir
    checked = _jit(module, "shift_left", checked=True)
    unchecked = _jit(module, "shift_left", checked=False)
    assert checked is not unchecked
    assert len(checked.bounds_sites) == 2 and unchecked.bounds_sites == ()


def test_in_bounds_launches_raise_nothing_and_compute_the_same() -> None:
    x = np.arange(1, 101, dtype=np.float32)
    results = []
    for checked in (True, False):
        out = np.zeros(99, np.float32)
        shift_left.launch(4, 32, (x, out, 99), backend="cpu", checked=checked)
        results.append(out)
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], x[1:])


def test_atomics_are_checked_and_skipped() -> None:
    values = np.array([0, 1, 1, 9, 2, 3], np.int32)
    bins = np.zeros(4, np.int32)
    with pytest.raises(rk.BoundsError, match="index 9 out of bounds for array 'bins' of length 4"):
        count_bins.launch(1, 6, (values, bins), backend="cpu")
    np.testing.assert_array_equal(bins, [1, 2, 1, 1])
    words = np.zeros(2, np.int32)
    old = np.full(2, -5, np.int32)
    with pytest.raises(rk.BoundsError, match="index 5 out of bounds for array 'words'"):
        cas_at.launch(1, 2, (np.array([1, 5], np.int32), words, old), backend="cpu")
    np.testing.assert_array_equal(words, [0, 7])
    np.testing.assert_array_equal(old, [0, 0])  # the skipped CAS yields 0


def test_device_function_parameters_carry_their_length() -> None:
    out = np.zeros(4, np.float32)
    via_function.launch(1, 4, (out, 0), backend="cpu")
    np.testing.assert_array_equal(out, 2.0)
    with pytest.raises(rk.BoundsError) as info:
        via_function.launch(1, 4, (out, 1), backend="cpu")
    assert "index 4 out of bounds for array 'a' in device function 'put' of length 4" in str(info.value)


@pytest.mark.parametrize("loops", [True, False], ids=["workitem-loops", "thread-per-item"])
def test_shared_arrays_are_checked_on_both_barrier_paths(loops: bool) -> None:
    backend = CpuBackend(workitem_loops=loops)
    assert backend.barrier_strategy(shared_overrun.ir, "shared_overrun")[0] == (
        "loops" if loops else "threads"
    )
    out = np.zeros(64, np.float32)
    with pytest.raises(rk.BoundsError, match="index 64 out of bounds for a shared array of length 64"):
        launch_module(shared_overrun.ir, "shared_overrun", (1, 1, 1), (64, 1, 1), [out], backend,
                      checked=True)
    np.testing.assert_array_equal(out[:63], np.arange(1, 64))
    assert out[63] == 0.0


def test_shared_array_on_the_coroutine_path_chosen_by_analysis() -> None:
    backend = CpuBackend()
    mode, _ = backend.barrier_strategy(shared_overrun_varying_barrier.ir,
                                       "shared_overrun_varying_barrier")
    assert mode == "coroutines"
    out = np.zeros(64, np.float32)
    with pytest.raises(rk.BoundsError, match="shared array of length 64"):
        launch_module(shared_overrun_varying_barrier.ir, "shared_overrun_varying_barrier",
                      (1, 1, 1), (64, 1, 1), [out], backend)


def test_parallel_blocks_report_one_violation() -> None:
    idx = np.arange(1 << 15, dtype=np.int32)
    idx[[100, 20000, 30000]] = [-3, 1 << 20, 1 << 16]
    out = np.zeros(1 << 15, np.float32)
    with pytest.raises(rk.BoundsError, match=r"index (-3|1048576|65536) out of bounds"):
        scatter.launch(128, 256, (idx, out), backend="cpu")
    assert out.sum() == (1 << 15) - 3


def test_unchecked_llvm_and_ptx_carry_no_checks() -> None:
    default = compile_module(shift_left.ir, "llvm", cache=False)
    assert compile_module(shift_left.ir, "llvm", cache=False, checked=False) == default
    assert "rk_bounds_fail" not in default and "rk.lengths" not in default
    checked = compile_module(shift_left.ir, "llvm", cache=False, checked=True)
    assert "rk_bounds_fail" in checked and "rk.lengths" in checked
    assert "rk_bounds" not in compile_module(shift_left.ir, "ptx", cache=False)
    with pytest.raises(CompileError, match="only for the host"):
        compile_module(shift_left.ir, "llvm", cache=False, triple="nvptx", checked=True)


def test_lengths_count_bytes_when_the_backend_is_called_with_another_dtype() -> None:
    """Direct backend callers skip bind_arguments: a 4-byte int8 buffer holds one f32."""
    out = np.zeros(4, np.int8)
    with pytest.raises(rk.BoundsError, match="index 1 out of bounds for array 'out' of length 1"):
        launch_module(scatter.ir, "scatter", (1, 1, 1), (2, 1, 1),
                      [np.array([0, 1], np.int32), out], CpuBackend())
