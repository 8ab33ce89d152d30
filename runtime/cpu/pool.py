"""The persistent worker pool of the cpu backend: native threads shared by everything on the cpu.

Starting threads for every launch, or waking Python threads (each must take
the GIL to see the work), costs tens of microseconds; the native pool of
:mod:`ringkernel.lowering.llvm.host_pool` takes new work in about one.  One
pool serves the whole process (:func:`shared_pool`), so kernels and, later,
the cpu actor runtime share the same threads instead of oversubscribing
the cores.

The interface is small on purpose:

- ``pool.run(fn_address, argv, dims, count, parts, keep=...)`` runs the
  native *range function* at ``fn_address`` (``int32 fn(void *argv, void
  *dims, int64 first, int64 end, int32 *cancel)``, the signature of every
  kernel's launch wrapper) over ``0 .. count-1`` split into ``parts`` equal
  ranges on the pool's threads, and returns each range's result.  The
  caller waits in slices of 50 ms, so Ctrl-C reaches it: ``run`` then sets
  the cancel flag (the range function stops at its next check), waits for
  the ranges once more and re-raises; a second Ctrl-C stops waiting, and
  the pool keeps ``keep`` (the memory the ranges use) until they end.
- One job runs at a time; ``run`` from several Python threads queue up.
- A forked child process gets a new pool on its first launch (the parent's
  threads do not exist in it).
- ``pool.size``: threads.  ``pool.close()`` stops them.

How many parts a launch uses is the backend's choice (:func:`worker_count`:
``CpuBackend(threads=N)``, else ``RINGKERNEL_CPU_THREADS``, else every core).
"""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Any

from ringkernel.lowering.llvm.host_pool import build_pool_module
from ringkernel.runtime.cpu.native import NativeFunctions, native_functions

ENV_THREADS = "RINGKERNEL_CPU_THREADS"
MAX_THREADS = 256
_WAIT_SLICE_NS = 50_000_000


def worker_count(requested: int | None = None) -> int:
    """The threads a launch uses: ``requested``, else ``RINGKERNEL_CPU_THREADS``, else every core.

    Raises ``ValueError`` naming the allowed range for anything but a whole
    number from 1 to :data:`MAX_THREADS`.
    """
    source = "CpuBackend(threads=...)"
    if requested is None:
        text = os.environ.get(ENV_THREADS, "").strip()
        if not text:
            return min(os.cpu_count() or 1, MAX_THREADS)
        source = ENV_THREADS
        try:
            requested = int(text)
        except ValueError:
            raise ValueError(
                f"{ENV_THREADS}={text!r}: expected a whole number of threads from 1 to {MAX_THREADS}"
            ) from None
    if isinstance(requested, bool) or not isinstance(requested, int) or not 1 <= requested <= MAX_THREADS:
        raise ValueError(f"{source}: {requested!r} threads; allowed: 1 to {MAX_THREADS}")
    return requested


def _functions() -> NativeFunctions:
    """The ``rk_pool_*`` functions (compiled once per process, :mod:`.native`)."""
    vp, i32, i64 = ctypes.c_void_p, ctypes.c_int32, ctypes.c_int64
    return native_functions(build_pool_module, {
        "rk_pool_create": ctypes.CFUNCTYPE(vp, i32),
        "rk_pool_submit": ctypes.CFUNCTYPE(None, vp, vp, vp, vp, i64, i32, vp, vp),
        "rk_pool_wait": ctypes.CFUNCTYPE(i32, vp, i64),
        "rk_pool_destroy": ctypes.CFUNCTYPE(None, vp),
    })


class WorkerPool:
    """``size`` native threads running range functions; see the module docstring."""

    def __init__(self, size: int) -> None:
        if not 1 <= size <= MAX_THREADS:
            raise ValueError(f"a worker pool has 1 to {MAX_THREADS} threads, not {size}")
        self._fns = _functions()
        handle = self._fns.rk_pool_create(size)
        if not handle:
            raise RuntimeError(f"cpu backend: the OS refused to start {size} worker threads")
        self._handle: int | None = handle
        self.size = size
        self._lock = threading.Lock()
        self._unfinished: list[Any] | None = None  # what an abandoned job still uses

    def run(self, fn_address: int, argv: Any, dims: Any, count: int, parts: int,
            keep: Any = None) -> list[int]:
        """Runs ``fn(argv, dims, first, end, cancel)`` over ``parts`` ranges of ``0 .. count-1``."""
        with self._lock:
            if self._handle is None:
                raise RuntimeError("the worker pool is closed")
            if self._unfinished is not None:
                self._wait_all()
            cancel = ctypes.c_int32(0)
            status = (ctypes.c_int32 * parts)()
            job = [argv, dims, cancel, status, keep]
            self._fns.rk_pool_submit(self._handle, fn_address, argv, dims, count, parts,
                             ctypes.byref(cancel), status)
            self._unfinished = job
            try:
                self._wait_all()
            except KeyboardInterrupt:
                cancel.value = 1
                self._wait_all()  # a second Ctrl-C leaves the job in ``_unfinished``
                raise
            return list(status)

    def close(self) -> None:
        """Waits for the running job, then stops and joins the threads."""
        with self._lock:
            if self._handle is None:
                return
            if self._unfinished is not None:
                self._wait_all()
            self._fns.rk_pool_destroy(self._handle)
            self._handle = None

    def _wait_all(self) -> None:
        while not self._fns.rk_pool_wait(self._handle, _WAIT_SLICE_NS):
            pass
        self._unfinished = None


_shared: WorkerPool | None = None
_shared_lock = threading.Lock()


def _forget_after_fork() -> None:
    """A forked child has none of the parent's threads: its first launch makes a new pool.

    (The old pool's mutexes may even have been held at the fork; it is never touched again.)
    """
    global _shared, _shared_lock
    _shared, _shared_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def shared_pool(threads: int) -> WorkerPool:
    """The process-wide pool, with at least ``threads`` threads (replaced by a larger one if needed)."""
    global _shared
    pool = _shared
    if pool is not None and pool.size >= threads:
        return pool
    with _shared_lock:
        if _shared is None or _shared.size < threads:
            old, _shared = _shared, WorkerPool(max(threads, min(os.cpu_count() or 1, MAX_THREADS)))
            if old is not None:
                old.close()
        return _shared
