"""Suites "shuffle" and "sass": the parallel primitives of issue 15, measured.

``shuffle``: a warp-shuffle reduction (cuda-samples reduce6: grid-stride
sums, a ``shfl_down`` tree per subgroup, the subgroups' sums through shared
memory) against the classic shared-memory tree reduction, same data and
launch, on cpu and (when an adapter exists) wgpu.  On cpu a subgroup has one
lane, so the "shuffle" kernel is a one-barrier reduction; on wgpu the
adapter's subgroups shuffle for real.

``sass``: SASS instruction counts of our PTX (assembled by ptxas for sm_80)
against the same algorithm written by hand in CUDA C and compiled by
``nvcc -O3``, for the corpus' shuffle / tree / scan / ballot kernels (and
saxpy as an anchor); the goal is a ratio of at most 1.10.  Needs ``nvcc``
and ``ptxas`` (the ``nvidia-cuda-nvcc`` wheel) and ``cuobjdump`` (the
``nvidia-cuda-cuobjdump`` and ``nvidia-cuda-nvdisasm`` wheels); the suite is
skipped, naming what is missing, without them.  ``python -m
bench.parallel_primitives`` prints both tables.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

import ringkernel as rk
from bench.report import Row, Skipped, format_rate, render_table
from bench.settings import Settings
from bench.timing import measure_pair
from ringkernel import Array, f32, i32
from ringkernel.lowering.cuda.toolkit import find_ptxas

BLOCK = 256
GOAL = 1.10  # SASS instructions: ours / nvcc -O3
ARCH = "sm_80"
_TESTS = Path(__file__).resolve().parent.parent / "tests"


@rk.kernel
def shuffle_sum(x: Array[f32], sums: Array[f32], n: i32):
    """reduce6: grid-stride sums, shfl_down within each subgroup, subgroup sums in shared memory."""
    partial = rk.shared_array(f32, BLOCK)  # one per subgroup, down to one-lane subgroups (cpu)
    t = rk.thread_id(0)
    v = f32(0.0)
    for i in range(rk.global_id(0), n, rk.block_dim(0) * rk.grid_dim(0)):
        v += x[i]
    d = rk.warp_size() // 2
    while d > 0:
        v += rk.shfl_down(v, d)
        d //= 2
    if rk.lane_id() == 0:
        partial[t // rk.warp_size()] = v
    rk.barrier()
    if t == 0:
        total = f32(0.0)
        for w in range(rk.block_dim(0) // rk.warp_size()):
            total += partial[w]
        sums[rk.block_id(0)] = total


@rk.kernel
def tree_sum(x: Array[f32], sums: Array[f32], n: i32):
    """Grid-stride sums, then the shared-memory tree: log2(BLOCK) barriers."""
    buf = rk.shared_array(f32, BLOCK)
    t = rk.thread_id(0)
    v = f32(0.0)
    for i in range(rk.global_id(0), n, rk.block_dim(0) * rk.grid_dim(0)):
        v += x[i]
    buf[t] = v
    rk.barrier()
    stride = BLOCK // 2
    while stride > 0:
        if t < stride:
            buf[t] += buf[t + stride]
        rk.barrier()
        stride //= 2
    if t == 0:
        sums[rk.block_id(0)] = buf[0]


def run_shuffle(settings: Settings) -> list[Row]:
    """Shuffle reduction vs shared-memory tree on each backend that is here."""
    from ringkernel.runtime import backend_status

    n = (1 << 16) if settings.quick else (1 << 20)
    grid = 64
    x = np.random.default_rng(0).uniform(-1, 1, n).astype(np.float32)
    want = x.astype(np.float64).sum()
    rows = []
    for backend in ("cpu", "wgpu"):
        ok, reason = backend_status(backend)
        if not ok:
            print(f"[shuffle: {backend} skipped: {reason}]", file=sys.stderr)
            continue
        device = rk.to_device(x, backend=backend)
        sums = {k: rk.device_array((grid,), np.float32, backend=backend) for k in ("shuffle", "tree")}
        for kernel, name in ((shuffle_sum, "shuffle"), (tree_sum, "tree")):
            kernel.launch(grid, BLOCK, (device, sums[name], n), backend=backend)
            got = float(sums[name].numpy().astype(np.float64).sum())
            assert abs(got - want) <= 1e-3 * max(1.0, abs(want)), (backend, name, got, want)

        ours = _timed(shuffle_sum, grid, (device, sums["shuffle"], n), backend)
        base = _timed(tree_sum, grid, (device, sums["tree"], n), backend)
        mine, theirs = measure_pair(ours, base, settings.repeats, settings.min_time)
        rows.append(Row("shuffle", f"{backend}: shuffle reduction, {n} f32, {grid}x{BLOCK}", mine.median,
                        "shared-memory tree", theirs.median, format_rate(n * 4, mine.median, "B")))
    if not rows:
        raise Skipped("neither cpu nor wgpu can run here")
    return rows


def _timed(kernel: rk.Kernel, grid: int, args: tuple, backend: str) -> Callable[[], None]:
    """One unchecked launch that waits for the device (wgpu launches on device arrays return early)."""
    def launch() -> None:
        kernel.launch(grid, BLOCK, args, backend=backend, checked=False)
        rk.synchronize()
    return launch


# --- SASS instruction counts ----------------------------------------------------------------

CUDA_SOURCES = {
    "saxpy": """
extern "C" __global__ void saxpy(float a, float* x, float* y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a * x[i] + y[i];
}""",
    "block_reduce": """
#define RED 64
extern "C" __global__ void block_reduce(float* x, float* sums) {
    __shared__ float buf[RED];
    int t = threadIdx.x;
    buf[t] = x[blockIdx.x * blockDim.x + t];
    __syncthreads();
    for (int stride = RED / 2; stride > 0; stride /= 2) {
        if (t < stride) buf[t] += buf[t + stride];
        __syncthreads();
    }
    if (t == 0) sums[blockIdx.x] = buf[0];
}""",
    "warp_shuffle_reduce": """
#define WARPS 64
extern "C" __global__ void warp_shuffle_reduce(float* x, float* sums, int n) {
    __shared__ float partial[WARPS];
    int t = threadIdx.x;
    float v = 0.0f;
    for (int i = blockIdx.x * blockDim.x + t; i < n; i += blockDim.x * gridDim.x) v += x[i];
    for (int d = warpSize / 2; d > 0; d /= 2) v += __shfl_down_sync(0xffffffffu, v, d);
    if ((threadIdx.x & 31) == 0) partial[t / warpSize] = v;
    __syncthreads();
    if (t == 0) {
        float total = 0.0f;
        for (int w = 0; w < blockDim.x / warpSize; ++w) total += partial[w];
        sums[blockIdx.x] = total;
    }
}""",
    "warp_scan": """
#define WARPS 64
extern "C" __global__ void warp_scan(int* x, int* out) {
    __shared__ int totals[WARPS];
    int t = threadIdx.x;
    int g = blockIdx.x * blockDim.x + t;
    int lane = threadIdx.x & 31;
    int v = x[g];
    for (int d = 1; d < warpSize; d *= 2) {
        int up = __shfl_up_sync(0xffffffffu, v, d);
        if (lane >= d) v += up;
    }
    if (lane == warpSize - 1) totals[t / warpSize] = v;
    __syncthreads();
    if (t == 0) {
        int running = 0;
        for (int w = 0; w < blockDim.x / warpSize; ++w) {
            int here = totals[w];
            totals[w] = running;
            running += here;
        }
    }
    __syncthreads();
    out[g] = v + totals[t / warpSize];
}""",
    "ballot_compact": """
#define WARPS 64
extern "C" __global__ void ballot_compact(int* x, int* out, int* count) {
    __shared__ int offsets[WARPS];
    int t = threadIdx.x;
    int lane = threadIdx.x & 31;
    bool keep = x[t] > 0;
    unsigned mask = __ballot_sync(0xffffffffu, keep);
    int rank = __popc(mask & ((1u << lane) - 1u));
    if (lane == 0) offsets[t / warpSize] = __popc(mask);
    __syncthreads();
    if (t == 0) {
        int running = 0;
        for (int w = 0; w < blockDim.x / warpSize; ++w) {
            int here = offsets[w];
            offsets[w] = running;
            running += here;
        }
        count[0] = running;
    }
    __syncthreads();
    if (keep) out[offsets[t / warpSize] + rank] = x[t];
}""",
    "histogram": """
#define BINS 16
extern "C" __global__ void histogram(int* values, int* bins, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) atomicAdd(&bins[values[i] % BINS], 1);
}""",
    "stencil3": """
extern "C" __global__ void stencil3(float* src, float* dst, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i > 0 && i < n - 1) dst[i] = 0.25f * src[i - 1] + 0.5f * src[i] + 0.25f * src[i + 1];
}""",
    "transpose_2d": """
extern "C" __global__ void transpose_2d(float* src, float* dst, int width, int height) {
    int col = blockIdx.x * blockDim.x + threadIdx.x;
    int row = blockIdx.y * blockDim.y + threadIdx.y;
    if (col < width && row < height) dst[col * height + row] = src[row * width + col];
}""",
}
"""The corpus kernels (tests/kernel_corpus.py; ``stencil3`` below) as a CUDA programmer writes them:
same algorithm.  With the issue's five reference kernels (saxpy, block sum, histogram, 3-point
stencil, transpose) come the subgroup kernels of issue 15."""


@rk.kernel
def stencil3(src: Array[f32], dst: Array[f32], n: i32):
    """A 3-point stencil (the corpus has 2-D ones only)."""
    i = rk.global_id(0)
    if i > 0 and i < n - 1:
        dst[i] = 0.25 * src[i - 1] + 0.5 * src[i] + 0.25 * src[i + 1]

_INSTRUCTION = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)(.*?);")


def sass_tools() -> tuple[Path, Path, Path]:
    """(nvcc, ptxas, cuobjdump), or :class:`Skipped` naming what is missing and how to get it."""
    roots = _wheel_bins()
    found = {}
    for tool in ("nvcc", "cuobjdump", "nvdisasm"):
        path = next((p / tool for p in roots if (p / tool).is_file()), None) or shutil.which(tool)
        found[tool] = Path(path) if path else None
    found["ptxas"] = find_ptxas()
    missing = [t for t, p in found.items() if p is None]
    if missing:
        raise Skipped(f"{', '.join(missing)} not found: pip install nvidia-cuda-nvcc "
                      "nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm")
    return found["nvcc"], found["ptxas"], found["cuobjdump"]  # type: ignore[return-value]


def _wheel_bins() -> list[Path]:
    import importlib.util

    spec = importlib.util.find_spec("nvidia")
    bases = spec.submodule_search_locations if spec and spec.submodule_search_locations else []
    return [Path(b) / sub / "bin" for b in bases for sub in ("cu13", "cu12", "cuda_nvcc", "cuda_cuobjdump",
                                                                "cuda_nvdisasm")]


def count_sass(cubin: Path, cuobjdump: Path, kernel: str) -> int:
    """Instructions of ``kernel`` in ``cubin``, without the NOP padding and the closing self-branch."""
    env = dict(os.environ, PATH=f"{cuobjdump.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    text = subprocess.run([str(cuobjdump), "-sass", "-fun", kernel, str(cubin)], capture_output=True,
                          text=True, check=True, env=env).stdout
    count = 0
    for address, opcode, rest in _INSTRUCTION.findall(text):
        if opcode == "NOP" or (opcode == "BRA" and rest.strip() == f"0x{int(address, 16):x}"):
            continue
        count += 1
    if count == 0:
        raise RuntimeError(f"cuobjdump printed no SASS for {kernel}:\n{text[:500]}")
    return count


def sass_counts() -> list[tuple[str, int, int]]:
    """(kernel, our SASS instructions, nvcc -O3's) for each kernel of :data:`CUDA_SOURCES`."""
    nvcc, ptxas, cuobjdump = sass_tools()
    if str(_TESTS) not in sys.path:
        sys.path.insert(0, str(_TESTS))
    import kernel_corpus

    kernels = {c.name: c.kernel for c in kernel_corpus.CASES} | {"stencil3": stencil3}
    env = dict(os.environ, PATH=f"{nvcc.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    counts = []
    with tempfile.TemporaryDirectory(prefix="ringkernel-sass-") as tmp:
        work = Path(tmp)
        for name, source in CUDA_SOURCES.items():
            ptx, ours = work / f"{name}.ptx", work / f"{name}.ours.cubin"
            ptx.write_text(kernels[name].compile("ptx", arch=ARCH))
            subprocess.run([str(ptxas), f"-arch={ARCH}", "-O3", "-o", str(ours), str(ptx)], check=True,
                           capture_output=True)
            cu, theirs = work / f"{name}.cu", work / f"{name}.nvcc.cubin"
            cu.write_text(source)
            subprocess.run([str(nvcc), "-O3", f"-arch={ARCH}", "-cubin", "-o", str(theirs), str(cu)],
                           check=True, capture_output=True, env=env)
            counts.append((name, count_sass(ours, cuobjdump, name), count_sass(theirs, cuobjdump, name)))
    return counts


def run_sass(settings: Settings) -> list[Row]:
    """SASS instruction counts as rows (``ours``/``baseline`` are counts, unit "instr")."""
    rows = []
    for name, ours, theirs in sass_counts():
        verdict = "ok" if ours <= GOAL * theirs else f"over the {GOAL:.2f}x goal"
        rows.append(Row("sass", f"{name} ({ARCH} SASS instructions)", ours, "nvcc -O3 CUDA C", theirs,
                        note=verdict, unit="instr"))
    return rows


if __name__ == "__main__":
    quick = Settings.make(quick=True)
    table: list[Row] = []
    for suite in (run_shuffle, run_sass):
        try:
            table.extend(suite(quick))
        except Skipped as exc:
            print(f"[{suite.__name__}: skipped: {exc}]", file=sys.stderr)
    print(render_table(table))
