"""The disk cache refuses what others could plant: forged or renamed entries, directories
others can write, FIFOs, symlinks and huge files in place of entries.

tests/ringkernel/conftest.py gives every test an empty, private RINGKERNEL_CACHE_DIR.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import tracemalloc
from pathlib import Path

import pytest

import ringkernel as rk
import ringkernel.compiler as compiler
from ringkernel import Array, f32
from ringkernel import cache as disk_cache
from ringkernel.compiler import compile_module
from ringkernel.ringir.passes.fingerprint import fingerprint


@rk.kernel
def first(x: Array[f32]):
    x[rk.global_id(0)] = 1.0


@rk.kernel
def second(x: Array[f32]):
    x[rk.global_id(0)] = 2.0


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(disk_cache, "_warned", set())


def key_of(kernel) -> str:
    return fingerprint(compiler.optimize(kernel.ir), "ptx", {})


def entry_path(directory: Path, key: str) -> Path:
    return directory / key[:2] / f"{key}.entry"


def forget_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiler, "_memory_cache", {})


def plant(directory: Path, key: str, text: str) -> Path:
    """A well-formed entry for ``key`` saying ``text``, as another user could write it."""
    path = entry_path(directory, key)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_bytes(disk_cache.encode_entry(key, text))
    return path


def test_entry_with_rewritten_key_line_is_refused(private_cache_dir, monkeypatch):
    good = compile_module(first.ir, "ptx")
    other = compile_module(second.ir, "ptx")
    a, b = key_of(first), key_of(second)
    forged = entry_path(private_cache_dir, b).read_bytes().replace(f"key {b}".encode(), f"key {a}".encode())
    entry_path(private_cache_dir, a).write_bytes(forged)
    forget_memory(monkeypatch)
    assert disk_cache.load(a) is None
    assert compile_module(first.ir, "ptx") == good != other


def test_renamed_entry_is_refused(private_cache_dir):
    compile_module(second.ir, "ptx")
    a, b = key_of(first), key_of(second)
    target = entry_path(private_cache_dir, a)
    target.parent.mkdir(exist_ok=True)
    os.replace(entry_path(private_cache_dir, b), target)
    assert disk_cache.load(a) is None


@pytest.mark.parametrize("mode", [0o770, 0o777, 0o1777], ids=["group-writable", "world-writable", "sticky"])
def test_cache_dir_others_can_write_is_not_used(private_cache_dir, monkeypatch, caplog, mode):
    key = key_of(first)
    plant(private_cache_dir, key, "planted")
    private_cache_dir.chmod(mode)
    with caplog.at_level(logging.WARNING, logger="ringkernel.cache"):
        assert disk_cache.load(key) is None
        text = compile_module(first.ir, "ptx")
        compile_module(second.ir, "ptx")
    assert text != "planted" and ".entry first" in text
    warnings = [r.getMessage() for r in caplog.records if r.name == "ringkernel.cache"]
    assert len(warnings) == 1 and "writable by others" in warnings[0]
    assert not entry_path(private_cache_dir, key_of(second)).exists()  # nothing written there either


def test_shard_dir_others_can_write_is_not_used(private_cache_dir):
    key = key_of(first)
    plant(private_cache_dir, key, "planted").parent.chmod(0o777)
    assert disk_cache.load(key) is None


def test_parent_others_can_write_is_not_used(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # not sticky: anyone may rename the cache away and put another in place
    directory = shared / "cache"
    directory.mkdir(mode=0o700)
    monkeypatch.setenv("RINGKERNEL_CACHE_DIR", str(directory))
    key = key_of(first)
    plant(directory, key, "planted")
    assert disk_cache.load(key) is None
    assert "is writable by others and not sticky" in disk_cache.untrusted_reason(directory)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown needs root")
def test_cache_dir_of_another_user_is_not_used(private_cache_dir):
    key = key_of(first)
    plant(private_cache_dir, key, "planted")
    os.chown(private_cache_dir, 4242, -1)
    assert disk_cache.load(key) is None
    assert "belongs to another user (uid 4242)" in disk_cache.untrusted_reason(private_cache_dir)


def test_new_cache_dirs_are_private(tmp_path, monkeypatch):
    directory = tmp_path / "new" / "cache"
    monkeypatch.setenv("RINGKERNEL_CACHE_DIR", str(directory))
    old = os.umask(0o002)  # a umask that would leave directories group-writable
    try:
        compile_module(first.ir, "ptx")
    finally:
        os.umask(old)
    shard = entry_path(directory, key_of(first)).parent
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700 == stat.S_IMODE(shard.stat().st_mode)
    assert disk_cache.load(key_of(first)) is not None


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_in_place_of_an_entry_does_not_hang(private_cache_dir):
    key = key_of(first)
    path = entry_path(private_cache_dir, key)
    path.parent.mkdir(mode=0o700)
    os.mkfifo(path)
    result: list[str | None] = []
    reader = threading.Thread(target=lambda: result.append(disk_cache.load(key)), daemon=True)
    reader.start()
    reader.join(timeout=30)
    if reader.is_alive():  # unblock the hung reader so the suite can go on
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("loading a FIFO entry blocked")
    assert result == [None]


def test_symlinked_entry_is_not_followed(private_cache_dir, tmp_path):
    key = key_of(first)
    elsewhere = tmp_path / "elsewhere.entry"
    elsewhere.write_bytes(disk_cache.encode_entry(key, "planted"))
    path = entry_path(private_cache_dir, key)
    path.parent.mkdir(mode=0o700)
    path.symlink_to(elsewhere)
    assert disk_cache.load(key) is None


def test_huge_entry_is_not_read(private_cache_dir):
    key = key_of(first)
    path = plant(private_cache_dir, key, "planted")
    assert disk_cache.load(key) == "planted"
    with path.open("r+b") as f:
        f.truncate(disk_cache.MAX_ENTRY_BYTES + 1)  # sparse: costs no disk
    tracemalloc.start()
    try:
        assert disk_cache.load(key) is None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
