"""The "shuffle" and "sass" bench suites run, check their kernels, and count SASS as cuobjdump prints it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bench import parallel_primitives as pp
from bench.report import Row, Skipped, render_table
from bench.settings import Settings


def test_shuffle_suite_compares_both_reductions_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from ringkernel import runtime

    real = runtime.backend_status
    monkeypatch.setattr(runtime, "backend_status", lambda b: real(b) if b == "cpu" else (False, "not here"))
    rows = pp.run_shuffle(Settings(quick=True, repeats=1, min_time=0.0, cold_repeats=1))
    assert [r.suite for r in rows] == ["shuffle"]
    assert rows[0].name.startswith("cpu: shuffle reduction") and rows[0].baseline_name == "shared-memory tree"
    assert rows[0].ours > 0 and rows[0].baseline > 0


def test_counting_skips_padding_and_the_closing_self_branch(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    listing = textwrap.dedent("""\
        Function : k
        /*0000*/                   MOV R1, c[0x0][0x28] ;                /* 0x00000a0000017a02 */
        /*0010*/              @!P0 EXIT ;                                /* 0x000000000000094d */
        /*0020*/                   SHFL.DOWN PT, R3, R0, 0x10, 0x1f ;    /* 0x0000000000037919 */
        /*0030*/                   EXIT ;                                /* 0x000000000000794d */
        /*0040*/                   BRA 0x40;                             /* 0xfffffff000007947 */
        /*0050*/                   NOP;                                  /* 0x0000000000007918 */
    """)

    class Done:
        stdout = listing

    monkeypatch.setattr(pp.subprocess, "run", lambda *a, **k: Done())
    assert pp.count_sass(tmp_path / "k.cubin", tmp_path / "cuobjdump", "k") == 4


def test_sass_rows_are_counts_with_a_verdict() -> None:
    try:
        rows = pp.run_sass(Settings.make(quick=True))
    except Skipped as exc:
        pytest.skip(str(exc))
    assert {r.name.split(" ")[0] for r in rows} == set(pp.CUDA_SOURCES)
    for row in rows:
        assert row.unit == "instr" and row.ours > 0 and row.baseline > 0
        assert row.note in ("ok", f"over the {pp.GOAL:.2f}x goal")
    assert " instr " in render_table(rows)


def test_seconds_rows_still_print_seconds() -> None:
    table = render_table([Row("s", "x", 0.002, "y", 0.001)])
    assert "2 ms" in table and "2x" in table
