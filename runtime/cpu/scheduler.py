"""The cpu actor scheduler: ``workers`` native threads serving every actor group of a system.

The threads and their loop are LLVM IR (:mod:`ringkernel.lowering.llvm.host_sched`,
which documents the rounds, the priority classes and the sleep protocol); this
module owns their memory and changes what they serve:

- :meth:`Scheduler.add` splits a group of ``count`` instances into chunks and
  publishes a new table with them (higher ``priority`` classes first);
  :meth:`Scheduler.remove` publishes one without them and waits until no
  worker can still be inside one of their chunks (every worker has moved to
  the new table or sleeps), so the group's memory may then change or go.
- :meth:`Scheduler.ring` after the host published something a sleeping
  worker should see (a send, a flag, room in an output queue): one native call
  that wakes the workers if one sleeps.  The host's queue pushes ring it
  themselves (:attr:`Scheduler.words` is their ``ctrl``/``bellq``).
- :meth:`Scheduler.close` stops the threads; it waits in short slices (Ctrl-C
  gets through) and gives up after its timeout, keeping the memory alive for
  a thread stuck in a handler.

Threads start with the first group, so a system without groups costs none.
"""

from __future__ import annotations

import ctypes
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ringkernel.lowering.llvm import host_sched as S
from ringkernel.ringir import layout as L
from ringkernel.runtime.cpu.native import NativeFunctions, native_functions
from ringkernel.runtime.native_queue import Call
from ringkernel.runtime.queues import fence

assert S.SLEEPERS == L.C["parked"] and S.BELL == L.Q_BELL  # the queue kernels ring the scheduler
MAX_WORKERS = S.MAX_WORKERS
# instances per chunk at most: a worker holds a chunk this long, so smaller
# chunks spread a group over the workers and keep a flooded one from holding many
CHUNK_MAX = 1024
_POLL_S = 0.0005
PROGRESS = L.C["progress"]  # word 17 of block 0: a turn handled (or dropped) a message


def sched_functions() -> NativeFunctions:
    """``rk_sched_*`` and the router's ``rk_route_*``/``rk_bell_*`` (one module, compiled once
    per process: :mod:`.native`)."""
    vp, i32, i64 = ctypes.c_void_p, ctypes.c_int32, ctypes.c_int64
    return native_functions(S.build_sched_module, {
        "rk_sched_start": ctypes.CFUNCTYPE(i32, vp, i32),
        "rk_sched_join": ctypes.CFUNCTYPE(None, vp, i32),
        "rk_route_range": ctypes.CFUNCTYPE(i32, vp, i64, i64),
        "rk_route_push": ctypes.CFUNCTYPE(i32, vp, i64, vp, i32),
        "rk_bell_wait": ctypes.CFUNCTYPE(None, vp, ctypes.c_uint32, i64),
        "rk_bell_ring": ctypes.CFUNCTYPE(None, vp),
    })


def _keep_forever(obj: object) -> None:
    """Leaks one reference to ``obj`` on purpose: a native thread that cannot be stopped
    may still read the memory it holds."""
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))


def chunk_size(count: int, workers: int) -> int:
    """Instances per chunk: about four chunks per worker, at most :data:`CHUNK_MAX`."""
    return max(1, min(CHUNK_MAX, -(-count // (4 * workers))))


@dataclass
class Group:
    """What the scheduler serves of one group: its range function, arguments and chunks."""

    fn: int  # address of the range function
    argv: Any  # ctypes array of the five word arrays (kept alive here)
    dims: Any  # ctypes int32[6]
    count: int
    priority: int
    progress: np.ndarray  # the group's control block 0 (its `progress` word)
    locks: np.ndarray  # one u32 try-lock per chunk
    chunk: int
    keep: Any = None  # what the arguments point into
    route: int = -1  # the router endpoint of instance 0 (-1: nothing to route after its turns)


class Scheduler:
    """``workers`` native threads running the turns of every registered group; see the module."""

    def __init__(self, workers: int, sleep_ns: int) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
            raise ValueError(f"workers must be an integer from 1 to {MAX_WORKERS}, got {workers!r}")
        self.workers = workers
        self._block = np.zeros(S.SCHED_BYTES // 8, dtype=np.uint64)  # 8-byte aligned
        self.words = self._block.view(np.uint32)[:32]  # the ctrl/bellq words the queue kernels ring
        self.words[S.SLEEP_NS] = sleep_ns
        self._bytes = self._block.view(np.uint8)
        self._slots = self._block.view(np.uint32)[S.SLOTS // 4 : S.SLOTS // 4 + workers]
        self._ring = Call("rk_actor_ring", self.words, self.words)
        self._groups: list[Group] = []
        # the published table and any a worker may still walk, each with the groups it lists
        # (whose memory must outlive it)
        self._tables: list[tuple[np.ndarray, tuple[Group, ...]]] = []
        self._lock = threading.Lock()
        self._router: tuple[np.ndarray, object] | None = None
        self._started = 0
        self.closed = False
        self._publish()

    @property
    def threads(self) -> int:
        """Native threads started (0 until the first group)."""
        return self._started

    @property
    def rounds(self) -> int:
        """Rounds walked by all workers so far."""
        return int(self._block[S.ROUNDS // 8])

    @property
    def sleeps(self) -> int:
        """Times a worker went to sleep so far."""
        return int(self._block[S.SLEEPS // 8])

    def add(self, group: Group) -> None:
        """Serves ``group`` from now on (starting the threads with the first group)."""
        with self._lock:
            if self.closed:
                raise RuntimeError("the actor scheduler is closed")
            self._groups.append(group)
            self._publish()
            self._start()
        self._settle(0.0)  # no need to wait: older tables go at the next settle
        self.ring()

    def remove(self, group: Group, timeout: float = 5.0) -> bool:
        """Stops serving ``group``; True once no worker can be running one of its chunks.

        False if a worker stayed inside an old table for ``timeout`` s (a handler
        that does not return); calling again waits again.
        """
        with self._lock:
            if group in self._groups:
                self._groups.remove(group)
                self._publish()
        return self._settle(timeout)

    def republish(self) -> None:
        """A new table after a group's record changed (its ``route``)."""
        with self._lock:
            self._publish()
        self._settle(0.0)
        self.ring()

    def attach_router(self, ctl: np.ndarray, owner: object) -> None:
        """The workers route with the router whose control block is ``ctl``; ``owner`` (what
        holds its tables) is kept alive here: a worker may read them until the threads end."""
        with self._lock:
            self._router = (ctl, owner)
            self._block[S.ROUTER // 8] = ctl.ctypes.data
            fence()

    def ring(self) -> None:
        """Wakes the workers if one sleeps (after publishing what they should see)."""
        self._ring.run()

    def close(self, timeout: float = 1.0) -> bool:
        """Stops the threads; False (memory kept for good by the caller) if one did not leave."""
        with self._lock:
            self.closed = True
            self.words[S.STOP] = 1
            self._bytes[S.CANCEL : S.CANCEL + 4] = 1  # range functions start no further instance
            fence()
            self._ring.run()
            started = self._started
        deadline = time.monotonic() + timeout
        while self.words[S.ALIVE]:
            if time.monotonic() > deadline:
                _keep_forever(self)  # a worker still runs: its tables and groups stay valid
                return False
            self._ring.run()
            time.sleep(_POLL_S)
        if started:
            sched_functions().rk_sched_join(self._block.ctypes.data, started)
            self._started = 0
        return True

    # --- internals ---

    def _start(self) -> None:
        if self._started or not self._groups:
            return
        started = sched_functions().rk_sched_start(self._block.ctypes.data, self.workers)
        self._started = started
        if started < self.workers:
            self.close(1.0)
            raise RuntimeError(f"cpu actor scheduler: the OS refused {self.workers - started} of "
                               f"{self.workers} worker threads")

    def _publish(self) -> None:
        """A new table (higher priority classes first), then a new epoch (holding ``_lock``)."""
        ordered = sorted(self._groups, key=lambda g: -g.priority)
        # one column per record word, built for every group at once (a spawn republishes them all)
        cols = np.array([(g.fn, ctypes.addressof(g.argv), ctypes.addressof(g.dims), g.count, g.chunk,
                          g.locks.ctypes.data, g.progress.ctypes.data + 4 * PROGRESS,
                          g.priority & 0xFFFFFFFF, g.route, len(g.locks)) for g in ordered],
                        dtype=np.int64).reshape(len(ordered), 10)
        chunks = cols[:, 9]
        total = int(chunks.sum())
        table = np.zeros((S.TABLE_HEADER_BYTES + S.RECORD_BYTES * total) // 8, dtype=np.int64)
        table[0] = total
        rows = table[S.TABLE_HEADER_BYTES // 8 :].reshape(total, S.RECORD_BYTES // 8)
        per = np.repeat(cols, chunks, axis=0)  # each group's words on each of its chunks' records
        k = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(chunks) - chunks, chunks)
        first = k * per[:, 4]
        rows[:, :3] = per[:, :3]
        rows[:, S.R_FIRST // 8] = first
        rows[:, S.R_END // 8] = np.minimum(first + per[:, 4], per[:, 3])
        rows[:, S.R_LOCK // 8] = per[:, 5] + 4 * k
        rows[:, S.R_PROGRESS // 8] = per[:, 6]
        rows[:, S.R_CLASS // 8] = per[:, 7]  # the low i32
        rows[:, S.R_ROUTE // 8] = per[:, 8]
        self._tables.append((table, tuple(self._groups)))
        self._block[S.TABLE // 8] = table.ctypes.data
        fence()
        self.words[S.EPOCH] += 1
        fence()

    def _settle(self, timeout: float) -> bool:
        """Waits until every worker walks the newest table or sleeps; then older tables go."""
        epoch = int(self.words[S.EPOCH])
        deadline = time.monotonic() + timeout
        while True:
            fence()
            slots = self._slots
            if np.all((slots == 0) | (slots >= epoch)):
                with self._lock:
                    if int(self.words[S.EPOCH]) == epoch:
                        del self._tables[:-1]
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(_POLL_S)


__all__ = ["Scheduler", "Group", "chunk_size", "MAX_WORKERS", "CHUNK_MAX"]
