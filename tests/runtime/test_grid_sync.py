"""rk.grid_sync() end to end (issue 15): cpu runs it cooperatively, wgpu/WGSL/MSL refuse it.

The corpus' grid-sync cases (a multi-step heat equation and a two-phase
reduction in one launch) are checked against numpy on cpu and their PTX
through ptxas; the cpu launch refuses grids too large to be co-resident
with a LaunchError naming the limit instead of hanging.
"""

from __future__ import annotations

import kernel_corpus
import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f32, i32
from ringkernel.lowering.cuda import check_ptx, find_ptxas
from ringkernel.lowering.llvm.host_threads import COOPERATIVE_MAX_WORK_ITEMS
from ringkernel.ringir.diagnostics import CompileError
from ringkernel.runtime.arguments import LaunchError

CASES = kernel_corpus.GRID_SYNC_CASES
IDS = [c.name for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_grid_sync_cases_match_numpy_on_cpu(case: kernel_corpus.KernelCase) -> None:
    kernel_corpus.run_case(case, "cpu")
    kernel_corpus.run_case(case, "cpu", seed=1)  # warm: the fast launch path


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_grid_sync_cases_assemble_with_ptxas(case: kernel_corpus.KernelCase) -> None:
    ptx = case.kernel.compile("ptx")
    assert "membar.gl" in ptx and "atom.global.add.u32" in ptx
    if find_ptxas() is None:
        pytest.skip("ptxas not installed (pip install nvidia-cuda-nvcc)")
    check_ptx(ptx)


@pytest.mark.parametrize("target", ["wgsl", "msl"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_wgsl_and_msl_refuse_grid_sync_naming_the_workaround(
    case: kernel_corpus.KernelCase, target: str
) -> None:
    with pytest.raises(CompileError, match="grid_sync.*two kernels") as info:
        case.kernel.compile(target)
    assert info.value.line is not None and "kernel_corpus.py" in str(info.value)


def test_wgpu_launch_refuses_grid_sync() -> None:
    from ringkernel.runtime import backend_status

    ok, reason = backend_status("wgpu")
    if not ok:
        pytest.skip(reason)
    case = CASES[0]
    args = case.make_args(np.random.default_rng(0))
    with pytest.raises(CompileError, match="not available on WGSL"):
        case.kernel.launch(case.grid, case.block, args, backend="wgpu")


@rk.kernel
def arrive_order(order: Array[i32], seen: Array[i32], counter: Array[i32], rounds: i32):
    """Each round every work-item takes a ticket; after the grid sync every ticket of the
    round must be taken (a work-item running ahead would see fewer)."""
    per_block = rk.block_dim(0) * rk.block_dim(1) * rk.block_dim(2)
    block = (rk.block_id(2) * rk.grid_dim(1) + rk.block_id(1)) * rk.grid_dim(0) + rk.block_id(0)
    thread = (rk.thread_id(2) * rk.block_dim(1) + rk.thread_id(1)) * rk.block_dim(0) + rk.thread_id(0)
    i = block * per_block + thread
    total = rk.grid_dim(0) * rk.grid_dim(1) * rk.grid_dim(2) * per_block
    for r in range(rounds):
        rk.atomic_add(counter, 0, 1)
        rk.grid_sync()
        seen[r * total + i] = counter[0]
        rk.grid_sync()
    order[i] = i


@pytest.mark.parametrize("grid, block", [(1, 1), (3, 5), ((2, 3, 2), (4, 2, 3)), (16, 16)])
def test_every_work_item_of_the_grid_waits_for_all(grid: object, block: object) -> None:
    blocks = int(np.prod(grid)) if isinstance(grid, tuple) else grid
    threads = int(np.prod(block)) if isinstance(block, tuple) else block
    total, rounds = blocks * threads, 3
    order = np.full(total, -1, np.int32)
    seen = np.zeros(rounds * total, np.int32)
    counter = np.zeros(1, np.int32)
    arrive_order.launch(grid, block, [order, seen, counter, rounds], backend="cpu")
    np.testing.assert_array_equal(order, np.arange(total))
    want = np.repeat(np.arange(1, rounds + 1) * total, total)
    np.testing.assert_array_equal(seen, want)


def test_too_large_a_grid_is_a_launch_error_naming_the_limit() -> None:
    block = 64
    grid = COOPERATIVE_MAX_WORK_ITEMS // block + 1
    order = np.zeros(grid * block, np.int32)
    with pytest.raises(LaunchError, match=rf"at most {COOPERATIVE_MAX_WORK_ITEMS}.*two launches"):
        arrive_order.launch(grid, block, [order, np.zeros(grid * block, np.int32),
                                          np.zeros(1, np.int32), 1], backend="cpu")
    with pytest.raises(LaunchError, match="grid_sync"):
        arrive_order[grid, block](order, np.zeros(grid * block, np.int32), np.zeros(1, np.int32), 1)


@rk.kernel
def early_out(x: Array[f32], n: i32):
    i = rk.global_id(0)
    rk.grid_sync()
    if i >= n:
        return
    x[i] += 1.0


def test_a_varying_return_after_the_last_grid_sync_runs() -> None:
    x = np.zeros(100, np.float32)
    early_out.launch(4, 32, [x, 90], backend="cpu")
    np.testing.assert_array_equal(x, np.r_[np.ones(90), np.zeros(10)].astype(np.float32))


def test_grid_sync_in_a_func_or_under_a_varying_if_is_a_compile_error() -> None:
    @rk.func
    def helper(x: Array[f32]) -> None:
        rk.grid_sync()

    @rk.kernel
    def calls(x: Array[f32]):
        helper(x)

    with pytest.raises(CompileError, match="only be used in kernels"):
        calls.compile("rir")

    @rk.kernel
    def diverges(x: Array[f32], n: i32):
        if rk.global_id(0) < n:
            rk.grid_sync()

    with pytest.raises(CompileError, match="grid_sync under an 'if'") as info:
        diverges.compile("ptx")
    assert info.value.line is not None


def test_cpu_strategy_names_the_cooperative_mode() -> None:
    from ringkernel.runtime import get_backend

    mode, reason = get_backend("cpu").barrier_strategy(arrive_order.ir, "arrive_order")
    assert mode == "grid" and "grid_sync" in reason


def test_a_refused_thread_names_the_whole_grid() -> None:
    from types import SimpleNamespace

    from ringkernel.runtime.cpu import CpuBackend

    cooperative = SimpleNamespace(cooperative=True)
    with pytest.raises(RuntimeError, match="every work-item of the grid"):
        CpuBackend._finish(cooperative, "k", (4, 1, 1), [-1], None)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="4 threads for a block"):
        CpuBackend._finish(SimpleNamespace(cooperative=False), "k", (4, 1, 1), [-1], None)  # type: ignore[arg-type]


def test_ringc_emits_ptx_for_grid_sync_and_refuses_wgsl(
    tmp_path: object, capsys: pytest.CaptureFixture
) -> None:
    from pathlib import Path

    from ringkernel.cli import main

    corpus, out = kernel_corpus.__file__, Path(str(tmp_path)) / "heat.ptx"
    check = ["--check"] if find_ptxas() is not None else []
    assert main([corpus, "-t", "ptx", "-k", "heat_jacobi", *check, "-o", str(out)]) == 0
    assert "membar.gl" in out.read_text()
    assert main([corpus, "-t", "wgsl", "-k", "heat_jacobi"]) == 1
    assert "rk.grid_sync() is not available on WGSL" in capsys.readouterr().err
