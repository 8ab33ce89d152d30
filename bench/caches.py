"""Cold measurements: every compile cache emptied, the disk cache pointed at an empty folder.

The in-memory caches are private to their modules; they are cleared here by
name, and a cache that does not exist (yet) is simply skipped.  The whole run
keeps its disk caches in one temporary folder (``isolated_cache_root``), so
the user's ``~/.cache/ringkernel`` is neither read nor written.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

# (module, attribute) of every in-memory compile cache
_MEMORY_CACHES = (
    ("ringkernel.compiler", "_memory_cache"),
    ("ringkernel.runtime.cpu.jit", "_cache"),
    ("ringkernel.runtime.cpu.jit", "_fingerprints"),
)
_ENV = "RINGKERNEL_CACHE_DIR"
_root: list[str] = []


@contextmanager
def isolated_cache_root() -> Iterator[None]:
    """Inside the block the disk cache lives in a temporary folder, removed afterwards."""
    old = os.environ.get(_ENV)
    with tempfile.TemporaryDirectory(prefix="rk-bench-") as root:
        _root.append(root)
        os.environ[_ENV] = tempfile.mkdtemp(dir=root)
        try:
            yield
        finally:
            _root.pop()
            if old is None:
                os.environ.pop(_ENV, None)
            else:
                os.environ[_ENV] = old


def cold_start() -> None:
    """Empties every in-memory compile cache and switches to a new, empty disk cache folder."""
    if _root:
        os.environ[_ENV] = tempfile.mkdtemp(dir=_root[-1])
    clear_memory_caches()


def clear_memory_caches() -> None:
    """Empties the compiler's, the cpu JIT's and every live wgpu backend's in-memory caches."""
    for module_name, attribute in _MEMORY_CACHES:
        try:
            getattr(importlib.import_module(module_name), attribute).clear()
        except (ImportError, AttributeError):
            continue
    from ringkernel import runtime

    for backend in getattr(runtime, "_instances", {}).values():
        for attribute in ("_pipelines",):
            cache = getattr(backend, attribute, None)
            if isinstance(cache, dict):
                cache.clear()
