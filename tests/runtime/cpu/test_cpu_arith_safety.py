"""Integer corners that trap or are undefined in C/LLVM never hurt the cpu process.

x86's ``idiv`` raises SIGFPE for a zero divisor and for MIN / -1, LLVM makes
over-wide shifts and out-of-range ``fptosi`` poison.  The lowering defines
them all (``x // 0 == x % 0 == 0``, MIN // -1 wraps, shift amounts modulo the
width as in WGSL and the PTX build, float->int saturates); these tests run
the 64-bit and unsigned variants, in the checked and the unchecked build,
and once in a child process so that a SIGFPE would show as a crash, not as a
dead test run.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Array, f64, i32, i64, u32, u64


@rk.kernel
def divide_i64(a: Array[i64], b: Array[i64], out: Array[i64], n: i32):
    i = rk.global_id(0)
    if i < n:
        out[2 * i] = a[i] // b[i]
        out[2 * i + 1] = a[i] % b[i]


@rk.kernel
def divide_unsigned(a: Array[u32], b: Array[u32], wa: Array[u64], wb: Array[u64],
                    out: Array[u32], wout: Array[u64], n: i32):
    i = rk.global_id(0)
    if i < n:
        out[2 * i] = a[i] // b[i]
        out[2 * i + 1] = a[i] % b[i]
        wout[2 * i] = wa[i] // wb[i]
        wout[2 * i + 1] = wa[i] % wb[i]


@rk.kernel
def shift_i64(x: Array[i64], s: Array[i64], out: Array[i64], n: i32):
    i = rk.global_id(0)
    if i < n:
        out[2 * i] = x[i] << s[i]
        out[2 * i + 1] = x[i] >> s[i]


@rk.kernel
def f64_to_i64(x: Array[f64], out: Array[i64], uout: Array[u64], n: i32):
    i = rk.global_id(0)
    if i < n:
        out[i] = i64(x[i])
        uout[i] = u64(x[i])


CHECKED = pytest.mark.parametrize("checked", [True, False], ids=["checked", "unchecked"])
I64_MIN = np.iinfo(np.int64).min
I64_MAX = np.iinfo(np.int64).max


@CHECKED
def test_i64_division_by_zero_and_min_over_minus_one(checked: bool) -> None:
    a = np.array([9, -9, I64_MIN, I64_MIN, -7], np.int64)
    b = np.array([0, 0, -1, 0, 2], np.int64)
    out = np.full(10, 5, np.int64)
    divide_i64.launch(1, 8, (a, b, out, 5), backend="cpu", checked=checked)
    np.testing.assert_array_equal(out.reshape(-1, 2), [[0, 0], [0, 0], [I64_MIN, 0], [0, 0], [-4, 1]])


@CHECKED
def test_unsigned_division_by_zero_is_zero(checked: bool) -> None:
    a = np.array([7, 2**32 - 1, 10], np.uint32)
    b = np.array([0, 0, 3], np.uint32)
    wa = np.array([7, 2**64 - 1, 10], np.uint64)
    wb = np.array([0, 0, 4], np.uint64)
    out = np.full(6, 9, np.uint32)
    wout = np.full(6, 9, np.uint64)
    divide_unsigned.launch(1, 4, (a, b, wa, wb, out, wout, 3), backend="cpu", checked=checked)
    np.testing.assert_array_equal(out, [0, 0, 0, 0, 3, 1])
    np.testing.assert_array_equal(wout, [0, 0, 0, 0, 2, 2])


@CHECKED
def test_i64_shift_amounts_are_taken_modulo_64(checked: bool) -> None:
    x = np.array([1, -256, 3], np.int64)
    s = np.array([65, 64 + 4, -1], np.int64)
    out = np.zeros(6, np.int64)
    shift_i64.launch(1, 4, (x, s, out, 3), backend="cpu", checked=checked)
    np.testing.assert_array_equal(out.reshape(-1, 2), [[2, 0], [-4096, -16], [I64_MIN, 0]])


@CHECKED
def test_f64_to_64_bit_ints_saturate(checked: bool) -> None:
    x = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, -2.5, 2**63], np.float64)
    out = np.zeros(len(x), np.int64)
    uout = np.zeros(len(x), np.uint64)
    f64_to_i64.launch(1, 8, (x, out, uout, len(x)), backend="cpu", checked=checked)
    np.testing.assert_array_equal(out, [0, I64_MAX, I64_MIN, I64_MAX, I64_MIN, -2, I64_MAX])
    np.testing.assert_array_equal(uout, [0, 2**64 - 1, 0, 2**64 - 1, 0, 0, 2**63])


def test_trapping_divisions_do_not_kill_the_process(tmp_path) -> None:
    script = textwrap.dedent(
        """
        import numpy as np
        import ringkernel as rk
        from ringkernel import Array, i32

        @rk.kernel
        def k(a: Array[i32], b: Array[i32], out: Array[i32]):
            i = rk.global_id(0)
            out[2 * i] = a[i] // b[i]
            out[2 * i + 1] = a[i] % b[i]

        lo = np.iinfo(np.int32).min
        for checked in (True, False):
            out = np.ones(4, np.int32)
            k.launch(1, 2, (np.array([lo, 5], np.int32), np.array([-1, 0], np.int32), out),
                     backend="cpu", checked=checked)
            print(out.tolist())
        """
    )
    path = tmp_path / "divisions.py"
    path.write_text(script)
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr}"
    lo = np.iinfo(np.int32).min
    assert done.stdout.split("\n")[:2] == [f"[{lo}, 0, 0, 0]"] * 2
