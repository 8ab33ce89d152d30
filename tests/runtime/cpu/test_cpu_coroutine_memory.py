"""A coroutine work-item whose frame ``malloc`` refuses stops the launch with MemoryError.

It used to crash the process (``llvm.coro.begin`` on a null frame), or with
luck run the block with that work-item missing.  The test runs in a child
process whose JIT-linked ``malloc`` refuses every request after the first few.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import ctypes, sys
    import numpy as np
    import llvmlite.binding as llvm
    sys.path.insert(0, sys.argv[1])
    from test_cpu_coroutines import array_sum, _mode

    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    allowed = [int(sys.argv[2])]

    @ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_size_t)
    def stingy_malloc(size):
        allowed[0] -= 1
        return libc.malloc(size) if allowed[0] >= 0 else None

    llvm.add_symbol("malloc", ctypes.cast(stingy_malloc, ctypes.c_void_p).value)
    assert _mode(array_sum) == "coroutines"
    data = np.ones(64, np.float32)
    try:
        array_sum.launch(1, 64, (data, 64), backend="cpu")
    except MemoryError as exc:
        print("MemoryError:", exc)
    else:
        print("ran:", float(data[0]))
    """
)


def _run(allowed: int) -> str:
    tests = __file__.rsplit("/", 1)[0]
    done = subprocess.run([sys.executable, "-c", CHILD, tests, str(allowed)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_a_refused_frame_is_a_memory_error_not_a_crash() -> None:
    out = _run(10)  # some work-items start, the 64 frames do not all fit
    assert "MemoryError" in out and "work-item frames" in out, out


def test_with_memory_the_same_launch_runs() -> None:
    assert "ran: 64.0" in _run(10**9)
