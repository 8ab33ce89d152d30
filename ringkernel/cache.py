"""The on-disk compile cache: target text keyed by the module's fingerprint.

Entries live in ``$RINGKERNEL_CACHE_DIR`` (default ``$XDG_CACHE_HOME/ringkernel``,
i.e. ``~/.cache/ringkernel``), one file per key.  The cache is an
optimization that must never change an answer, so:

- an entry is written to a temporary file in the same directory and moved in
  place with ``os.replace``: readers (other processes included) see either
  the old entry or the complete new one, never half of one;
- every entry starts with a header (magic, format, compiler version, build
  id, key, payload length and a sha256 over those header lines *and* the
  payload); an entry that is truncated, garbled, written by another compiler
  build, or filed or renamed under another key is ignored (and overwritten by
  the next successful compile), never trusted;
- only successful compiles are stored (the caller stores after the emitter
  returned);
- the cache is used only where no one else can write: the cache directory and
  its subdirectories must be owned by the user and writable by no one else,
  and every directory above them owned by the user or root and not writable by
  others unless sticky (as ssh and pip check).  Otherwise another user could
  plant an entry with a valid checksum, so the disk cache is off for the
  process, with one warning;
- only regular files of at most :data:`MAX_ENTRY_BYTES` are read, opened
  without following symlinks and without blocking (a FIFO in the cache must
  not hang every compile, a huge file must not be read into memory);
- a cache directory that cannot be created or written turns the disk cache
  off for this process, with one warning on the ``ringkernel.cache`` logger.

``RINGKERNEL_NO_CACHE=1`` turns the disk cache off.

The *build id* hashes the compiler's own source files (IR, passes, lowerings,
templates, the pipeline) and the llvmlite version, so an edited or upgraded
compiler never reads artifacts of another one, even at the same version number.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import logging
import os
import stat
import tempfile
import threading
from pathlib import Path

MAGIC = b"RINGKERNEL-CACHE"
FORMAT = 2  # 2: the sha256 covers the header lines (the key among them), not just the payload
_HEADER_FIELDS = ("format", "version", "build", "key", "length", "sha256")
_MAX_HEADER = 1024
MAX_ENTRY_BYTES = 64 << 20
"""Larger entries are neither written nor read: no kernel's text comes near this."""

ENV_DIR = "RINGKERNEL_CACHE_DIR"
ENV_DISABLE = "RINGKERNEL_NO_CACHE"

_log = logging.getLogger("ringkernel.cache")
_warned: set[str] = set()
_lock = threading.Lock()
_build_id: str | None = None

# Packages whose sources decide the emitted text (frontends do not: their output is the IR).
_BUILD_PACKAGES = ("ringkernel.ringir", "ringkernel.lowering")
_BUILD_FILES = ("ringkernel.compiler",)
_BUILD_SUFFIXES = (".py", ".j2", ".h", ".lark")


def cache_dir() -> Path:
    """Where entries go: ``RINGKERNEL_CACHE_DIR``, else ``$XDG_CACHE_HOME/ringkernel``."""
    explicit = os.environ.get(ENV_DIR)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ringkernel"


def disk_cache_enabled() -> bool:
    return os.environ.get(ENV_DISABLE, "") in ("", "0")


def load(key: str) -> str | None:
    """The cached text for ``key``, or None (disabled, untrusted, missing, or not a valid entry)."""
    if not disk_cache_enabled():
        return None
    directory = cache_dir()
    path = _entry_path(directory, key)
    if not path.parent.is_dir() or _untrusted_warned(directory, path.parent):
        return None
    data = _read_regular(path)
    return None if data is None else decode_entry(data, key)


def store(key: str, text: str) -> None:
    """Writes ``text`` under ``key`` atomically; any failure only disables the cache."""
    if not disk_cache_enabled():
        return
    directory = cache_dir()
    if str(directory) in _warned:
        return
    path = _entry_path(directory, key)
    entry = encode_entry(key, text)
    if len(entry) > MAX_ENTRY_BYTES:
        return
    tmp_name = None
    try:
        _make_private_dirs(path.parent)
        if _untrusted_warned(directory, path.parent):
            return
        fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".entry", dir=path.parent)
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(entry)
        os.replace(tmp_name, path)
        tmp_name = None
    except OSError as exc:
        _warn_once(directory, f"cannot write to {directory} ({exc.strerror or exc})")
    finally:
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass


def load_bytes(key: str) -> bytes | None:
    """Binary data stored with :func:`store_bytes` (the same checked entries, base64 inside)."""
    text = load(key)
    if text is None:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return None


def store_bytes(key: str, data: bytes) -> None:
    """Writes binary ``data`` (machine code) under ``key``, as :func:`store` writes text."""
    store(key, base64.b64encode(data).decode("ascii"))


class ObjectCache:
    """The disk cache as the cpu JIT's store of machine code (``runtime.cpu.jit.use_object_store``).

    Its keys are digests of their own (text, machine, LLVM version), so they never
    meet the compile cache's.
    """

    def load(self, key: str) -> bytes | None:
        return load_bytes(key)

    def store(self, key: str, data: bytes) -> None:
        store_bytes(key, data)


def _make_private_dirs(path: Path) -> None:
    """Creates ``path`` and its missing parents as 0700 (``mkdir(parents=True)`` would use the umask)."""
    missing = []
    while not path.is_dir():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)


def _read_regular(path: Path) -> bytes | None:
    """The bytes of ``path`` if it is a regular file (not a symlink) of sane size, else None."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as stream:
            info = os.fstat(stream.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_ENTRY_BYTES:
                return None
            data = stream.read(MAX_ENTRY_BYTES + 1)
    except OSError:
        return None
    return data if len(data) <= MAX_ENTRY_BYTES else None


def untrusted_reason(directory: Path, shard: Path | None = None) -> str | None:
    """Why others could write to the cache at ``directory`` (and its ``shard`` subdirectory), or None.

    The cache directory and the shard must be the user's own and writable by no one else;
    the directories above must belong to the user or root and be writable by others only
    if sticky.  Does nothing where there are no POSIX owners (Windows).
    """
    geteuid = getattr(os, "geteuid", None)
    if geteuid is None:
        return None
    me = geteuid()
    try:
        real = Path(os.path.realpath(directory))
        for own in (real, *([real / shard.name] if shard is not None else [])):
            info = os.lstat(own)
            if not stat.S_ISDIR(info.st_mode):
                return f"{own} is not a directory"
            if info.st_uid != me:
                return f"{own} belongs to another user (uid {info.st_uid})"
            if info.st_mode & 0o022:
                return f"{own} is writable by others (mode {stat.S_IMODE(info.st_mode):o})"
        for parent in real.parents:
            info = os.stat(parent)
            if info.st_uid not in (me, 0):
                return f"{parent} belongs to another user (uid {info.st_uid})"
            if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
                return f"{parent} is writable by others and not sticky"
    except OSError as exc:
        return f"cannot check {directory}: {exc.strerror or exc}"
    return None


def _untrusted_warned(directory: Path, shard: Path) -> bool:
    """True (after one warning) if the cache at ``directory`` must not be used."""
    if str(directory) in _warned:
        return True
    reason = untrusted_reason(directory, shard)
    if reason is None:
        return False
    _warn_once(directory, f"others could write to it: {reason}")
    return True


def encode_entry(key: str, text: str) -> bytes:
    """Header lines, a blank line, then the UTF-8 payload."""
    payload = text.encode("utf-8")
    values = {
        "format": str(FORMAT),
        "version": _version(),
        "build": build_id(),
        "key": key,
        "length": str(len(payload)),
    }
    values["sha256"] = _digest(values, payload)
    header = MAGIC + b"\n" + b"".join(f"{k} {values[k]}\n".encode() for k in _HEADER_FIELDS)
    return header + b"\n" + payload


def decode_entry(data: bytes, key: str) -> str | None:
    """The payload of a well-formed entry for ``key`` from this compiler build, else None."""
    end = data.find(b"\n\n", 0, _MAX_HEADER)
    if end < 0:
        return None
    lines = data[:end].split(b"\n")
    if lines[0] != MAGIC or len(lines) != len(_HEADER_FIELDS) + 1:
        return None
    header: dict[str, str] = {}
    for name, line in zip(_HEADER_FIELDS, lines[1:]):
        field, _, value = line.decode("ascii", errors="replace").partition(" ")
        if field != name:
            return None
        header[name] = value
    payload = data[end + 2 :]
    expected = {"format": str(FORMAT), "version": _version(), "build": build_id(), "key": key}
    if any(header[k] != v for k, v in expected.items()):
        return None
    if header["length"] != str(len(payload)) or header["sha256"] != _digest(header, payload):
        return None
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _digest(header: dict[str, str], payload: bytes) -> str:
    """sha256 of the header lines before it (the key among them) and the payload."""
    digest = hashlib.sha256()
    for name in _HEADER_FIELDS[:-1]:
        digest.update(f"{name} {header[name]}\n".encode())
    digest.update(payload)
    return digest.hexdigest()


def build_id() -> str:
    """A hash of the compiler's code-generating sources and llvmlite's version (computed once)."""
    global _build_id
    with _lock:
        if _build_id is None:
            _build_id = _compute_build_id()
        return _build_id


def _compute_build_id() -> str:
    import llvmlite

    digest = hashlib.sha256(f"llvmlite {llvmlite.__version__}\n".encode())
    files: list[tuple[str, Path]] = []
    for package in _BUILD_PACKAGES:
        spec = importlib.util.find_spec(package)
        for root in (spec.submodule_search_locations or []) if spec else []:
            base = Path(root)
            files += [
                (f"{package}/{p.relative_to(base).as_posix()}", p)
                for p in base.rglob("*")
                if p.suffix in _BUILD_SUFFIXES and "__pycache__" not in p.parts
            ]
    for module in _BUILD_FILES:
        spec = importlib.util.find_spec(module)
        if spec and spec.origin:
            files.append((module, Path(spec.origin)))
    for name, path in sorted(files):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        digest.update(f"{name} {len(data)}\n".encode())
        digest.update(data)
    return digest.hexdigest()[:32]


def _version() -> str:
    from ringkernel.ringir.version import __version__

    return __version__


def _entry_path(directory: Path, key: str) -> Path:
    if not key or not all(c in "0123456789abcdef" for c in key):
        raise ValueError(f"cache keys are lowercase hex digests, got {key!r}")
    return directory / key[:2] / f"{key}.entry"


def _warn_once(directory: Path, reason: str) -> None:
    with _lock:
        if str(directory) in _warned:
            return
        _warned.add(str(directory))
    _log.warning("ringkernel: compile cache disabled: %s", reason)


__all__ = [
    "cache_dir",
    "disk_cache_enabled",
    "load",
    "store",
    "encode_entry",
    "decode_entry",
    "build_id",
    "untrusted_reason",
    "MAX_ENTRY_BYTES",
    "ENV_DIR",
    "ENV_DISABLE",
]
