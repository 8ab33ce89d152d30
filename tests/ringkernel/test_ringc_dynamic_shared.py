"""ringc --dynamic-shared N sizes rk.dynamic_shared_array for the whole compile, as launch() does."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ringkernel.cli import main

HIST = textwrap.dedent('''
    import ringkernel as rk
    from ringkernel import Array, i32, u32

    @rk.kernel
    def hist(data: Array[u32], counts: Array[u32], n: i32, bins: i32):
        local = rk.dynamic_shared_array(u32)
        t = rk.thread_id(0)
        for b in range(t, bins, rk.block_dim(0)):
            local[b] = u32(0)
        rk.barrier()
        i = rk.global_id(0)
        if i < n:
            rk.atomic_add(local, i32(data[i]) % bins, u32(1))
        rk.barrier()
        for b in range(t, bins, rk.block_dim(0)):
            rk.atomic_add(counts, b, local[b])

    @rk.kernel
    def plain(x: Array[u32]):
        x[rk.global_id(0)] = u32(1)
''')


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "hist.py"
    path.write_text(HIST)
    return path


@pytest.mark.parametrize("target, sized", [
    ("ptx", ".b8 rk_shared_hist_0[1024]"),
    ("wgsl", "array<atomic<u32>, 256>"),
    ("msl", "atomic_uint v0[256]"),
    ("rir", "array<u32, shared, 256>"),
])
def test_the_size_reaches_every_target(source: Path, tmp_path: Path, target: str, sized: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / f"hist.{target}"
    assert main([str(source), "-t", target, "--dynamic-shared", "256", "-o", str(out)]) == 0
    assert sized in out.read_text()


def test_without_the_flag_the_error_names_it(source: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(source), "-t", "ptx"]) == 1
    err = capsys.readouterr().err
    assert "hist.py:7:13" in err and "ringc --dynamic-shared N" in err


def test_kernels_without_dynamic_arrays_ignore_it(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "plain.ptx"
    assert main([str(source), "-t", "ptx", "-k", "plain", "--dynamic-shared", "64", "-o", str(out)]) == 0
    assert ".entry plain(" in out.read_text()


@pytest.mark.parametrize("bad", ["0", "-3", "many", "1.5"])
def test_a_bad_count_is_a_usage_error(source: Path, bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(source), "-t", "ptx", "--dynamic-shared", bad]) == 2
    assert "--dynamic-shared" in capsys.readouterr().err


def test_a_size_over_the_shared_limit_is_a_compile_error(source: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(source), "-t", "ptx", "--dynamic-shared", "100000000"]) == 1
    assert "bytes of shared memory" in capsys.readouterr().err
