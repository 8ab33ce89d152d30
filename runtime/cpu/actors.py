"""The cpu actor hosts: actor groups served by the system's scheduler (:class:`CpuGroupHost`,
:mod:`.scheduler`: ``workers`` threads for every group, one turn per instance at a time),
single actors as groups of one on it (:class:`CpuSingleHost`, what the facade spawns), and
a single actor's persistent loop on a native thread of its own (:class:`CpuActorThread`,
which the rest of this docstring describes; the facade no longer uses it on cpu).

The actor kernel (``ringkernel.ringir.passes.actor_lowering``) is compiled by
the facade for the same ``host`` target as every cpu kernel, JIT-compiled
like them and launched once, as a
grid of one block, from a Python thread; ctypes releases the GIL for the
whole call, so the loop runs natively until the control block asks it to
leave.  Its five arguments are numpy ``uint32`` arrays the host also reads
and writes (queues, control block, state); ``ringkernel.runtime.queues`` documents
the memory-order protocol.

Idle, the loop spins ``IDLE_SPINS`` polls, then *parks*: a Linux ``futex``
wait on the control block's ``doorbell`` word, for at most ``ctrl.idle_ns``.
Whatever the host publishes for a loop (a message, room in its output, a stop
or drain flag) is followed by :meth:`CpuActorThread.wake`, which rings the
doorbell (bumps it and ``futex``-wakes the loop) when the loop says it is
``parked``: one native call (``native_queue``'s ``rk_actor_ring``).  The loop
announces ``parked`` and fences before its last look at its inputs; the host
fences between publishing and reading ``parked``; so one of the two always
sees the other and no wake-up is lost (``actor_lowering.park``).

The other direction works the same way: a host thread waiting for a reply
spins a little, then parks on ``reply_bell`` (:meth:`CpuActorThread.wait_reply`),
and the loop wakes it after publishing a reply (``actor_lowering.wake_host``).
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
import threading
import time
from typing import Any

import numpy as np

from ringkernel.lowering.llvm.codegen import host_cpu
from ringkernel.ringir import Module
from ringkernel.ringir import layout as L
from ringkernel.runtime.actor_host import ActorMemory
from ringkernel.runtime.backend import KernelBuild
from ringkernel.runtime.cpu.jit import jit_kernel
from ringkernel.runtime.cpu.scheduler import MAX_WORKERS, Group, Scheduler, chunk_size
from ringkernel.runtime.native_queue import Call
from ringkernel.runtime.queues import fence

# Parks and wakes go through Linux futexes (the host target's backoff and wake);
# elsewhere a parked loop sleeps its idle_ns and a host thread polls.
FUTEX = sys.platform.startswith("linux") and platform.machine() in ("x86_64", "aarch64", "arm64")
# A host thread waiting for a reply spins this long before it parks: a reply
# that comes within it costs no wake-up on either side.
REPLY_SPIN_US = 50
# ... of which the first REPLY_HOT_US without yielding the CPU: a reply from a loop
# running on another CPU comes within it; a loop sharing this CPU runs once it yields.
REPLY_HOT_US = 3
# One park of a waiting host thread at most (ns): it looks at stop flags and
# deadlines in between.
REPLY_PARK_NS = 20_000_000
REPLY_BELL = L.C["reply_bell"]
WEAK_ORDER = platform.machine() not in ("x86_64", "AMD64", "i686", "x86")  # loads may pass loads
# The longest sleep of a scheduler worker (ns): the host rings it after every publish, so
# this only bounds how late it notices what nobody rang for.
SCHED_SLEEP_NS = 100_000_000
_JOIN_POLL_S = 0.001


def host_options(kernel: str) -> dict[str, Any]:
    """What an actor loop is compiled with: the ``host`` target for this CPU, unchecked."""
    cpu, features = host_cpu()
    return {"kernel": kernel, "workitem_loops": True, "checked": False, "cpu": cpu, "features": features}


class CpuActorThread:
    """Runs one actor loop kernel over five shared word arrays on a native thread."""

    def __init__(self, build: KernelBuild, lanes: int = 1) -> None:
        self.compiled = jit_kernel(build)
        self.kernel = build.kernel_name
        self.lanes = lanes
        self.thread: threading.Thread | None = None
        self.status: int | None = None
        self._memory: ActorMemory | None = None
        self._ring: Call | None = None
        self._reply_ring: Call | None = None
        self._waits = threading.local()  # one ReplyWait per waiting thread (they own their args)

    def start(self, memory: ActorMemory) -> None:
        """Launches the loop; the arrays must stay alive (this object keeps them) until it exits."""
        if self.running:
            raise RuntimeError(f"actor loop '{self.kernel}' is already running")
        arrays = memory.arrays
        for a in arrays:
            if a.dtype != np.uint32 or not a.flags.c_contiguous:
                raise ValueError("actor memory must be contiguous uint32 arrays")
        self._memory = memory
        self._ring = Call("rk_actor_ring", memory.ctrl, memory.k2k)
        self._reply_ring = Call("rk_reply_ring", memory.ctrl)
        argv = (ctypes.c_void_p * len(arrays))(*(a.ctypes.data for a in arrays))
        dims = (ctypes.c_int32 * 6)(1, 1, 1, self.lanes, 1, 1)
        launch = self.compiled.launch

        def run() -> None:
            self.status = launch(argv, dims, 0, 1)

        self.status = None
        self.thread = threading.Thread(target=run, name=f"ringkernel-actor-{self.kernel}", daemon=True)
        self.thread.start()

    def wake(self) -> None:
        """Rings the doorbell if the loop is parked (call after publishing what it should see)."""
        if self._ring is not None:
            self._ring.run()

    def ring_replies(self) -> None:
        """Wakes host threads waiting for replies: call after taking replies that others wait for."""
        if self._reply_ring is not None:
            self._reply_ring.run()

    def reply_wait(self) -> ReplyWait | None:
        """This thread's :class:`ReplyWait` on the loop's output queue (None: it feeds another actor)."""
        memory = self._memory
        if memory is None or not memory.out_to_host or not FUTEX:
            return None
        wait: ReplyWait | None = getattr(self._waits, "wait", None)
        if wait is None or wait.out is not memory.out:
            wait = self._waits.wait = ReplyWait(memory.ctrl, memory.out)
        return wait

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        """Waits for the loop to leave; True once it has."""
        if self.thread is None:
            return True
        self.thread.join(timeout)
        return not self.thread.is_alive()


class ReplyWait:
    """A host thread's wait for replies on one output queue, woken by the loop (no polling).

    The caller reads :meth:`bell`, then looks for its reply, and finding none
    calls :meth:`wait` with the bell it read: one native call registers the
    thread in ``host_waiting`` (so the loop rings ``reply_bell`` after each
    reply), spins a little (yielding), then parks until the queue has a
    message, the bell differs from the one read, or the time is up.  Since
    the bell was read *before* the look, a reply that landed (or that another
    host thread moved, ringing the bell) after the look is never missed
    (``docs/layout.md``, "Reply wake").  Not shared between threads.
    """

    def __init__(self, ctrl: np.ndarray, out: np.ndarray) -> None:
        self.ctrl = ctrl
        self.out = out
        self.args = np.zeros(4, dtype=np.uint32)
        self.args[1], self.args[3] = REPLY_SPIN_US, REPLY_HOT_US
        self._wait = Call("rk_reply_wait", ctrl, out, self.args)
        self.whole: np.ndarray | None = None  # a group instance's: the group's whole output array

    def bell(self) -> int:
        """``reply_bell`` now, read before the caller looks for its reply."""
        bell = int(self.ctrl[REPLY_BELL])
        if WEAK_ORDER:
            fence()  # the read before the look's (x86 keeps loads in order by itself)
        return bell

    def wait(self, bell: int, seconds: float | None) -> None:
        """Waits (spin ``REPLY_SPIN_US``, then park) until a reply may be there, or ``seconds``
        (at most ``REPLY_PARK_NS`` in one call)."""
        args = self.args
        args[0] = bell
        args[2] = REPLY_PARK_NS if seconds is None else max(0, min(REPLY_PARK_NS, int(seconds * 1e9)))
        self._wait.run()


class CpuActorRuntime:
    """Actors on the cpu: plain numpy memory and ``workers`` scheduler threads
    (:mod:`ringkernel.runtime.cpu.scheduler`) for every group and single actor."""

    mode = "persistent"
    group_mode = "turn"  # a group's kernel runs one turn per instance per call
    target = "host"
    max_buffer_words = None
    doorbell = FUTEX  # wake() reaches a parked loop: it may park long
    takes_workers = True  # open_runtime passes ActorSystem(workers=)
    priorities = True  # group_host honours priority classes

    def __init__(self, idle_ns: int = 50_000, workers: int | None = None) -> None:
        self.idle_ns = idle_ns
        if workers is None:
            workers = min(os.cpu_count() or 1, MAX_WORKERS)
        self.workers = workers
        self._scheduler: Scheduler | None = None
        self._lock = threading.Lock()

    def alloc(self, words: int) -> np.ndarray:
        return np.zeros(words, dtype=np.uint32)

    def compile_options(self, module: Module, kernel: str, lanes: int) -> dict[str, Any]:
        return host_options(kernel)

    def host(self, build: KernelBuild, lanes: int) -> CpuActorThread:
        return CpuActorThread(build, lanes)

    def single_host(self, build: KernelBuild, lanes: int) -> CpuSingleHost:
        """A single actor's host: a group of one on the scheduler (its kernel lowered as a
        group's, ``group_mode``), so it takes none of the ``workers`` threads for itself."""
        return CpuSingleHost(self, build, lanes, 1)

    def group_host(self, build: KernelBuild, lanes: int, count: int, priority: int = 0) -> CpuGroupHost:
        return CpuGroupHost(self, build, lanes, count, priority)

    def scheduler(self) -> Scheduler:
        """The system's scheduler (made on first use; its threads start with the first group)."""
        with self._lock:
            if self._scheduler is None:
                self._scheduler = Scheduler(self.workers, SCHED_SLEEP_NS)
            return self._scheduler

    @property
    def threads(self) -> int:
        """Scheduler threads running (0 until the first group)."""
        return 0 if self._scheduler is None else self._scheduler.threads

    def close(self, timeout: float = 0.0) -> bool:
        """Stops the scheduler's threads (single actors' threads have left, or were abandoned
        with their memory kept alive); False if a worker did not leave within ``timeout`` s."""
        return True if self._scheduler is None else self._scheduler.close(timeout)


class CpuGroupHost:
    """One actor group, served by the system's scheduler instead of threads of its own.

    ``start`` registers the group's turn kernel; the group *leaves* (``join``
    returns True) once block 0's ``stop`` is set, or ``drain`` with every input
    queue empty, and the scheduler has let go of it (no worker inside it).
    """

    def __init__(self, runtime: CpuActorRuntime, build: KernelBuild, lanes: int, count: int,
                 priority: int = 0) -> None:
        self.compiled = jit_kernel(build)
        self.kernel = build.kernel_name
        self.runtime = runtime
        self.lanes = lanes
        self.count = count
        self.priority = priority
        self.memory: ActorMemory | None = None
        self._group: Group | None = None
        self.route_base = -1  # its instance 0's endpoint in the native router (-1: it sends nothing)

    def routes_from(self, base: int) -> None:
        """The workers route what its turns send (``runtime/cpu/routing.py``), its instances
        being the router's endpoints ``base ..``; from now on and after every restart."""
        self.route_base = base
        group = self._group
        if group is not None:
            group.route = base
            self.runtime.scheduler().republish()

    @property
    def bell(self) -> tuple[np.ndarray, np.ndarray]:
        """The ``(ctrl, bellq)`` words an instance's input pushes ring: the scheduler's bell."""
        words = self.runtime.scheduler().words
        return words, words

    @property
    def running(self) -> bool:
        return self._group is not None

    def start(self, memory: ActorMemory) -> None:
        """Registers the group's turns with the scheduler (its arrays must stay alive meanwhile)."""
        if self._group is not None:
            raise RuntimeError(f"actor group '{self.kernel}' is already running")
        arrays = memory.arrays
        for a in arrays:
            if a.dtype != np.uint32 or not a.flags.c_contiguous:
                raise ValueError("actor memory must be contiguous uint32 arrays")
        scheduler = self.runtime.scheduler()
        argv = (ctypes.c_void_p * (len(arrays) + 2))(*(a.ctypes.data for a in arrays), None, None)
        dims = (ctypes.c_int32 * 6)(self.count, 1, 1, self.lanes, 1, 1)
        chunk = chunk_size(self.count, scheduler.workers)
        locks = np.zeros(-(-self.count // chunk), dtype=np.uint32)
        group = Group(self.compiled.address, argv, dims, self.count, self.priority, memory.ctrl, locks,
                      chunk, keep=(memory, self.compiled), route=self.route_base)
        self.memory = memory
        scheduler.add(group)
        self._group = group

    def wake(self) -> None:
        """Rings the scheduler's bell if a worker sleeps."""
        if self._group is not None:
            self.runtime.scheduler().ring()

    def join(self, timeout: float | None = None) -> bool:
        """Waits up to ``timeout`` s for the group to leave; True once it has."""
        group = self._group
        if group is None:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._leaving():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            time.sleep(_JOIN_POLL_S if left is None else min(_JOIN_POLL_S, left))
        left = 0.0 if deadline is None else max(0.0, deadline - time.monotonic())
        if not self.runtime.scheduler().remove(group, 3600.0 if deadline is None else left):
            return False
        self._group = None
        self._exited()
        return True

    def _exited(self) -> None:
        """Marks every instance's control block as left (``state`` word), as a loop does."""
        memory = self.memory
        assert memory is not None
        fence()
        memory.ctrl[L.C["state"] :: L.CONTROL_WORDS] = L.ACTOR_EXITED

    def _leaving(self) -> bool:
        memory = self.memory
        assert memory is not None
        fence()
        ctrl = memory.ctrl
        if ctrl[L.C["stop"]]:
            return True
        return bool(ctrl[L.C["drain"]]) and not inputs_waiting(memory, self.count)

    def instance(self, index: int) -> CpuInstanceHost:
        """The host of instance ``index``, as an ``ActorRef`` of it uses one."""
        return CpuInstanceHost(self, index)


def inputs_waiting(memory: ActorMemory, count: int) -> bool:
    """Whether any instance of a group has a message in its input queues (the router's too)."""
    for queues in (memory.h2k, memory.k2k, memory.routed):
        rows = queues.reshape(count, -1)
        if np.any(rows[:, L.Q_TAIL] != rows[:, L.Q_HEAD]):
            return True
    return False


class CpuInstanceHost:
    """What an ``ActorRef`` of one group instance asks its host: wake, join, reply waits."""

    def __init__(self, group: CpuGroupHost, index: int) -> None:
        self.group = group
        self.index = index
        self._waits = threading.local()
        self._reply_ring: Call | None = None

    def _ctrl(self) -> np.ndarray:
        memory = self.group.memory
        assert memory is not None
        at = self.index * L.CONTROL_WORDS
        return memory.ctrl[at : at + L.CONTROL_WORDS]

    def start(self, memory: ActorMemory) -> None:
        raise RuntimeError("an instance of an actor group starts and stops with its group")

    def wake(self) -> None:
        self.group.wake()

    def join(self, timeout: float | None = None) -> bool:
        return self.group.join(timeout)

    def ring_replies(self) -> None:
        if self.group.memory is None:
            return
        if self._reply_ring is None:
            self._reply_ring = Call("rk_reply_ring", self._ctrl())
        self._reply_ring.run()

    def reply_wait(self) -> ReplyWait | None:
        memory = self.group.memory
        if memory is None or not memory.out_to_host or not FUTEX:
            return None
        wait: ReplyWait | None = getattr(self._waits, "wait", None)
        if wait is None or wait.whole is not memory.out:
            stride = memory.out.size // self.group.count
            out = memory.out[self.index * stride : (self.index + 1) * stride]
            wait = self._waits.wait = ReplyWait(self._ctrl(), out)
            wait.whole = memory.out
        return wait


class CpuSingleHost(CpuGroupHost):
    """A single actor served by the scheduler as a group of one: what ``CpuGroupHost`` does,
    plus the reply waits an ``ActorRef`` asks its host for, those of instance 0."""

    def __init__(self, runtime: CpuActorRuntime, build: KernelBuild, lanes: int, count: int = 1) -> None:
        super().__init__(runtime, build, lanes, count)
        self._only = CpuInstanceHost(self, 0)

    def ring_replies(self) -> None:
        """Wakes host threads waiting for replies: call after taking replies that others wait for."""
        self._only.ring_replies()

    def reply_wait(self) -> ReplyWait | None:
        """This thread's :class:`ReplyWait` on the output queue (None: it feeds another actor)."""
        return self._only.reply_wait()


class CpuBatchDevice:
    """The batch loop on the cpu JIT, as a ``BatchDevice`` (``ringkernel.runtime.wgpu.actors``).

    Buffers are numpy arrays the host never sees directly and a dispatch is
    a synchronous JIT launch, so the re-dispatch pump that wgpu and Metal
    use can be run and tested on any machine.
    """

    target = "host"

    def buffer(self, words: int) -> np.ndarray:
        return np.zeros(max(words, 1), dtype=np.uint32)

    def write(self, buf: np.ndarray, word: int, data: np.ndarray) -> None:
        buf[word : word + data.size] = data

    def compile_options(self, module: Module, name: str, lanes: int) -> dict[str, Any]:
        return host_options(name)

    def kernel(self, build: KernelBuild, lanes: int) -> tuple:
        return jit_kernel(build), lanes

    def bind(self, kernel: tuple, buffers: tuple, grid: tuple[int, int] = (1, 1)) -> tuple:
        """One dispatch of ``grid`` (x, y) blocks: a group's instances (the pump's ``grid=``)."""
        compiled, lanes = kernel
        x, y = grid
        argv = (ctypes.c_void_p * len(buffers))(*(b.ctypes.data for b in buffers))
        dims = (ctypes.c_int32 * 6)(x, y, 1, lanes, 1, 1)
        return compiled, argv, dims, buffers, x * y

    def run(self, dispatches: list, reads: list) -> np.ndarray:
        for compiled, argv, dims, _, blocks in dispatches:
            compiled.launch(argv, dims, 0, blocks)
        parts = [buf[word : word + n] for buf, word, n in reads]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint32)


__all__ = ["CpuActorThread", "CpuActorRuntime", "CpuGroupHost", "CpuSingleHost", "CpuInstanceHost",
           "CpuBatchDevice"]
