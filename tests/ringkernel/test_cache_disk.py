"""The on-disk compile cache: hits, invalidation, corrupt entries, concurrency, unwritable dirs.

tests/ringkernel/conftest.py gives every test an empty RINGKERNEL_CACHE_DIR
and an empty in-memory cache.
"""

from __future__ import annotations

import importlib
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import ringkernel as rk
import ringkernel.compiler as compiler
from ringkernel import Array, f32, i32
from ringkernel import cache as disk_cache
from ringkernel.compiler import compile_module
from ringkernel.ringir.passes.fingerprint import fingerprint


@rk.kernel
def saxpy(a: f32, x: Array[f32], y: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        y[i] = a * x[i] + y[i]


@rk.kernel
def saxpy_edited(a: f32, x: Array[f32], y: Array[f32], n: i32):
    i = rk.global_id(0)
    if i < n:
        y[i] = a * x[i] - y[i]


@pytest.fixture
def emitter_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts real emitter runs (by target) while still producing the real text."""
    calls: list[str] = []
    real = compiler._emitter

    def counting(target: str):
        emit = real(target)

        def wrapped(module, **options):
            calls.append(target)
            return emit(module, **options)

        return wrapped

    monkeypatch.setattr(compiler, "_emitter", counting)
    return calls


def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forgets the in-memory cache, as a new process would."""
    monkeypatch.setattr(compiler, "_memory_cache", {})


def entries(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.entry"))


def test_second_compile_is_a_disk_hit(private_cache_dir, emitter_calls, monkeypatch):
    first = compile_module(saxpy.ir, "ptx")
    fresh_process(monkeypatch)
    second = compile_module(saxpy.ir, "ptx")
    assert first == second
    assert emitter_calls == ["ptx"]
    assert len(entries(private_cache_dir)) == 1


def test_decorators_use_the_disk_cache(private_cache_dir, emitter_calls, monkeypatch):
    text = saxpy.compile("wgsl")
    fresh_process(monkeypatch)
    assert saxpy.compile("wgsl") == text
    assert emitter_calls == ["wgsl"]


def test_entry_is_keyed_by_the_fingerprint(private_cache_dir):
    text = compile_module(saxpy.ir, "msl")
    key = fingerprint(compiler.optimize(saxpy.ir), "msl", {})
    path = private_cache_dir / key[:2] / f"{key}.entry"
    assert disk_cache.decode_entry(path.read_bytes(), key) == text


def test_source_change_invalidates(private_cache_dir, emitter_calls, monkeypatch):
    a = compile_module(saxpy.ir, "ptx")
    fresh_process(monkeypatch)
    b = compile_module(saxpy_edited.ir, "ptx")
    assert a != b
    assert emitter_calls == ["ptx", "ptx"]
    assert len(entries(private_cache_dir)) == 2


def test_option_and_target_changes_invalidate(private_cache_dir, emitter_calls, monkeypatch):
    compile_module(saxpy.ir, "ptx", arch="sm_80")
    fresh_process(monkeypatch)
    other_arch = compile_module(saxpy.ir, "ptx", arch="sm_90")
    fresh_process(monkeypatch)
    compile_module(saxpy.ir, "wgsl")
    assert ".target sm_90" in other_arch
    assert emitter_calls == ["ptx", "ptx", "wgsl"]


def test_codegen_environment_variable_invalidates(private_cache_dir, emitter_calls, monkeypatch):
    fingerprint_module = importlib.import_module("ringkernel.ringir.passes.fingerprint")
    monkeypatch.setattr(fingerprint_module, "CODEGEN_ENV_VARS", ("RINGKERNEL_TEST_CODEGEN",))
    compile_module(saxpy.ir, "llvm")
    fresh_process(monkeypatch)
    monkeypatch.setenv("RINGKERNEL_TEST_CODEGEN", "1")
    compile_module(saxpy.ir, "llvm")
    assert emitter_calls == ["llvm", "llvm"]


def test_other_compiler_build_is_a_miss(private_cache_dir, emitter_calls, monkeypatch):
    compile_module(saxpy.ir, "ptx")
    fresh_process(monkeypatch)
    monkeypatch.setattr(disk_cache, "_build_id", "0" * 32)  # the compiler's sources changed
    compile_module(saxpy.ir, "ptx")
    assert emitter_calls == ["ptx", "ptx"]
    (path,) = entries(private_cache_dir)
    assert b"build 00000000000000000000000000000000\n" in path.read_bytes()  # rewritten


def garble_payload(data: bytes) -> bytes:
    return data[:-10] + bytes(b ^ 0x20 for b in data[-10:])


def swap_key(data: bytes) -> bytes:
    lines = data.split(b"\n")
    lines[4] = b"key " + b"f" * 64
    return b"\n".join(lines)


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda d: d[: len(d) // 2],  # truncated payload
        lambda d: d[:20],  # truncated header
        lambda d: b"",  # empty file
        garble_payload,  # bit rot: sha256 mismatch
        lambda d: d.replace(b"RINGKERNEL-CACHE", b"SOMETHING-ELSE!!"),  # foreign file
        lambda d: d.replace(f"format {disk_cache.FORMAT}".encode(), b"format 9"),  # future format
        lambda d: d.replace(b"version ", b"version 99"),  # another release
        swap_key,  # an entry filed under the wrong key
        lambda d: os.urandom(len(d)),  # noise
    ],
    ids=["truncated", "short", "empty", "garbled", "foreign", "format", "version", "wrong-key", "noise"],
)
def test_corrupt_entry_is_ignored_and_rewritten(private_cache_dir, emitter_calls, monkeypatch, corrupt):
    good = compile_module(saxpy.ir, "ptx")
    (path,) = entries(private_cache_dir)
    original = path.read_bytes()
    path.write_bytes(corrupt(original))
    fresh_process(monkeypatch)
    assert compile_module(saxpy.ir, "ptx") == good
    assert emitter_calls == ["ptx", "ptx"]  # recompiled, never trusted
    assert path.read_bytes() == original  # and rewritten


def test_a_directory_in_place_of_an_entry_is_a_miss(private_cache_dir, emitter_calls, monkeypatch):
    key = fingerprint(compiler.optimize(saxpy.ir), "ptx", {})
    (private_cache_dir / key[:2] / f"{key}.entry").mkdir(parents=True)
    assert ".entry saxpy" in compile_module(saxpy.ir, "ptx")


def test_failed_compile_is_not_cached(private_cache_dir):
    with pytest.raises(rk.CompileError, match="unknown option"):
        compile_module(saxpy.ir, "ptx", bogus=1)
    assert entries(private_cache_dir) == []


def test_warm_cache_does_not_swallow_errors(private_cache_dir):
    compile_module(saxpy.ir, "ptx")
    with pytest.raises(rk.CompileError, match="invalid CUDA architecture"):
        compile_module(saxpy.ir, "ptx", arch="bogus")


def test_rir_target_is_not_cached(private_cache_dir):
    compile_module(saxpy.ir, "rir")
    assert entries(private_cache_dir) == []


def test_no_cache_environment_variable(private_cache_dir, emitter_calls, monkeypatch):
    monkeypatch.setenv("RINGKERNEL_NO_CACHE", "1")
    compile_module(saxpy.ir, "wgsl")
    fresh_process(monkeypatch)
    compile_module(saxpy.ir, "wgsl")
    assert emitter_calls == ["wgsl", "wgsl"]
    assert entries(private_cache_dir) == []


def test_cache_false_skips_memory_and_disk(private_cache_dir, emitter_calls):
    compile_module(saxpy.ir, "wgsl", cache=False)
    compile_module(saxpy.ir, "wgsl", cache=False)
    assert emitter_calls == ["wgsl", "wgsl"]
    assert entries(private_cache_dir) == []


def test_unwritable_cache_dir_warns_once_and_still_compiles(tmp_path, monkeypatch, caplog, emitter_calls):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("RINGKERNEL_CACHE_DIR", str(blocker / "cache"))
    with caplog.at_level(logging.WARNING, logger="ringkernel.cache"):
        assert ".entry saxpy" in compile_module(saxpy.ir, "ptx")
        assert compile_module(saxpy.ir, "wgsl")
        assert compile_module(saxpy_edited.ir, "msl")
    warnings = [r for r in caplog.records if r.name == "ringkernel.cache"]
    assert len(warnings) == 1
    assert "compile cache disabled" in warnings[0].getMessage()
    assert emitter_calls == ["ptx", "wgsl", "msl"]


def test_default_location(monkeypatch, tmp_path):
    monkeypatch.delenv("RINGKERNEL_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert disk_cache.cache_dir() == tmp_path / ".cache" / "ringkernel"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert disk_cache.cache_dir() == tmp_path / "xdg" / "ringkernel"


def test_keys_must_be_hex_digests():
    with pytest.raises(ValueError):
        disk_cache.load("../../etc/passwd")


def test_concurrent_threads_never_see_a_partial_entry(private_cache_dir):
    key = "ab" * 32
    texts = [f"payload {n} ".ljust(200_000, "x") for n in range(4)]
    seen: list[str | None] = []
    stop = threading.Event()

    def writer(text: str) -> None:
        for _ in range(30):
            disk_cache.store(key, text)

    def reader() -> None:
        while not stop.is_set():
            seen.append(disk_cache.load(key))

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(t,)) for t in texts]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert all(s is None or s in texts for s in seen)
    assert any(s is not None for s in seen)
    assert disk_cache.load(key) in texts
    assert [p.name for p in (private_cache_dir / "ab").iterdir()] == [f"{key}.entry"]  # no temp files left


def test_concurrent_processes_do_not_corrupt(private_cache_dir):
    key = "cd" * 32
    script = (
        "import sys\n"
        "from ringkernel import cache\n"
        "text = sys.argv[1] * 50000\n"
        "for _ in range(40):\n"
        "    cache.store(sys.argv[2], text)\n"
        "    got = cache.load(sys.argv[2])\n"
        "    assert got is None or got in ('A' * 50000, 'B' * 50000), 'partial entry'\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, letter, key], stderr=subprocess.PIPE, text=True)
        for letter in "AB"
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert disk_cache.load(key) in ("A" * 50000, "B" * 50000)
    assert len(list((private_cache_dir / "cd").iterdir())) == 1
