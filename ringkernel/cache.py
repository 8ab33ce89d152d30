"""The on-disk compile cache: target text keyed by the module's fingerprint.

Entries live in ``$RINGKERNEL_CACHE_DIR`` (default ``$XDG_CACHE_HOME/ringkernel``,
i.e. ``~/.cache/ringkernel``), one file per key.  The cache is an
optimization that must never change an answer, so:

- an entry is written to a temporary file in the same directory and moved in
  place with ``os.replace``: readers (other processes included) see either
  the old entry or the complete new one, never half of one;
- every entry starts with a header (magic, format, compiler version, build
  id, key, payload length and sha256); an entry that is truncated, garbled,
  written by another compiler build or filed under the wrong key is ignored
  (and overwritten by the next successful compile), never trusted;
- only successful compiles are stored (the caller stores after the emitter
  returned);
- a cache directory that cannot be created or written turns the disk cache
  off for this process, with one warning on the ``ringkernel.cache`` logger.

``RINGKERNEL_NO_CACHE=1`` turns the disk cache off.

The *build id* hashes the compiler's own source files (IR, passes, lowerings,
templates, the pipeline) and the llvmlite version, so an edited or upgraded
compiler never reads artifacts of another one, even at the same version number.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
import threading
from pathlib import Path

MAGIC = b"RINGKERNEL-CACHE"
FORMAT = 1
_HEADER_FIELDS = ("format", "version", "build", "key", "length", "sha256")
_MAX_HEADER = 1024

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
    """The cached text for ``key``, or None (disabled, missing, or not a valid entry)."""
    if not disk_cache_enabled():
        return None
    path = _entry_path(cache_dir(), key)
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return decode_entry(data, key)


def store(key: str, text: str) -> None:
    """Writes ``text`` under ``key`` atomically; any failure only disables the cache."""
    if not disk_cache_enabled():
        return
    directory = cache_dir()
    if str(directory) in _warned:
        return
    path = _entry_path(directory, key)
    tmp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".entry", dir=path.parent)
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(encode_entry(key, text))
        os.replace(tmp_name, path)
        tmp_name = None
    except OSError as exc:
        _warn_once(directory, exc)
    finally:
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass


def encode_entry(key: str, text: str) -> bytes:
    """Header lines, a blank line, then the UTF-8 payload."""
    payload = text.encode("utf-8")
    values = {
        "format": str(FORMAT),
        "version": _version(),
        "build": build_id(),
        "key": key,
        "length": str(len(payload)),
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
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
    if header["length"] != str(len(payload)) or header["sha256"] != hashlib.sha256(payload).hexdigest():
        return None
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return None


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


def _warn_once(directory: Path, exc: OSError) -> None:
    with _lock:
        if str(directory) in _warned:
            return
        _warned.add(str(directory))
    reason = exc.strerror or exc
    _log.warning("ringkernel: compile cache disabled: cannot write to %s (%s)", directory, reason)


__all__ = [
    "cache_dir",
    "disk_cache_enabled",
    "load",
    "store",
    "encode_entry",
    "decode_entry",
    "build_id",
    "ENV_DIR",
    "ENV_DISABLE",
]
