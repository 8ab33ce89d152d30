"""Perfetto (Chrome trace-event JSON) traces of actor messages and kernel launches.

Actors: a tracer thread *taps* queues every ``interval`` seconds: it copies
the slots published since its last look from each actor's input queue (the
host's sends) and output queue (the actor's replies, to the host or into the
next actor's K2K queue).  Every reply envelope carries the replying actor's
HLC stamp taken as it began handling the message (its clock merged with the
message's), and the ``sequence`` of the message it answers, so:

- a span per handled message sits on the actor's track.  An actor spawned
  while a tracer exists has a *trace ring* (``docs/layout.md``, "Trace
  ring"): its loop writes each handler's start and duration and the
  message's sequence, with or without a reply, and the tracer taps it like
  a queue.  Loops with a device clock (cpu, cuda) time the handler itself
  (1 µs resolution); batch loops (wgpu, metal) write their dispatch's host
  clock and 0 µs.  An actor spawned before the tracer has no ring: a span
  then runs from the reply's stamp (the HLC's physical microseconds, the logical counter as thousandths
  of a microsecond) to the first of: the next message's stamp, the stamp of
  the downstream actor's span for it (K2K), the moment the tap saw the reply;
  a handler that returns no reply leaves no envelope and so no such span;
- flows join the host's send (or the upstream actor's span) to the span of
  the actor that handled that sequence number; the HLC guarantees the
  receiver's stamp is later than the sender's;
- a counter track per actor shows its input queue depth at each tap, and
  one per actor group the depth of all its instances' input queues (a
  track per instance would make 100,000 tracks).

The clocks are comparable because the cpu loop reads the wall clock and the
batch loops (wgpu, metal) get the host's clock in the control block.
Memory is bounded: the tracer keeps the last ``capacity`` events, and a tap
that falls more than a queue's capacity behind counts the messages it missed
(``otherData.lost``) instead of reading overwritten slots.

Kernels: ``rk.trace(path)`` records one host-timed span per launch.
"""

from __future__ import annotations

import json
import os
import threading
from collections import deque
from typing import Any

import numpy as np

from ringkernel.observability.clock import wall_us
from ringkernel.observability.launches import KERNEL_TRACERS
from ringkernel.ringir import layout as L

CAPACITY_MIN = 16
TRACE_RING_ENTRIES = 1024  # per actor: 16 KiB; a tap every 2 ms keeps up with 500,000 messages/s
HOST_TID = 0
PID = 1


def check_trace_path(path: Any) -> str:
    """``path`` as a string, refused now (not when the trace is written, hours later) if its
    folder does not exist or cannot be written."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"a trace path must be a str or os.PathLike, got {type(path).__name__}")
    text = os.fspath(path)
    if not isinstance(text, str) or not text:
        raise ValueError(f"a trace path must be a non-empty file name, got {path!r}")
    folder = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot write the trace {text!r}: folder {folder!r} does not exist")
    if os.path.isdir(text) or not os.access(folder, os.W_OK):
        raise PermissionError(f"cannot write the trace {text!r}: not a writable file path")
    return text


class _Tap:
    """Reads the slots published into one queue since the last look."""

    def __init__(self, buffer: np.ndarray, cursor: int) -> None:
        self.buffer = buffer
        self.capacity = int(buffer[L.Q_CAPACITY])
        self.slot_words = int(buffer[L.Q_SLOT_WORDS])
        self.cursor = cursor

    def read(self) -> tuple[np.ndarray, int]:
        """The new slots' envelopes (rows of 6 words) and how many were missed."""
        b, cap = self.buffer, self.capacity
        tail = int(b[L.Q_TAIL])
        new = (tail - self.cursor) & 0xFFFFFFFF
        if new == 0:
            return np.zeros((0, 6), dtype=np.uint32), 0
        first = self.cursor
        positions = (first + np.arange(new, dtype=np.int64)) & 0xFFFFFFFF
        slots = b[L.QUEUE_HEADER_WORDS :].reshape(cap, self.slot_words)
        rows = slots[positions % cap, :6].copy()
        # a slot is reused for position p + capacity once p was consumed: keep what cannot have been
        again = int(b[L.Q_TAIL])
        intact = ((again - positions) & 0xFFFFFFFF) < cap
        self.cursor = tail
        return rows[intact], int(new - intact.sum())


class _RingTap:
    """Reads the entries an actor's loop wrote into its trace ring since the last look."""

    def __init__(self, ref: Any, cursor: int) -> None:
        self.state, self.ctrl = ref.state_words, ref.ctrl
        self.entries = int(self.ctrl[L.C["trace_mask"]]) + 1
        at = int(self.ctrl[L.C["trace_at"]])
        self.ring = self.state[at : at + self.entries * L.TRACE_ENTRY_WORDS].reshape(self.entries, -1)
        self.cursor = cursor

    def read(self) -> tuple[np.ndarray, int]:
        """The new entries (rows of start lo, start hi, µs taken, sequence) and how many were missed."""
        head = int(self.ctrl[L.C["trace_head"]])
        new = (head - self.cursor) & 0xFFFFFFFF
        self.cursor = head
        if new == 0:
            return np.zeros((0, L.TRACE_ENTRY_WORDS), dtype=np.uint32), 0
        take = min(new, self.entries)
        positions = (head - take + np.arange(take, dtype=np.int64)) & 0xFFFFFFFF
        rows = self.ring[positions & (self.entries - 1)].copy()
        # entry p is rewritten as entry p + entries, published by head p + entries + 1: keep what
        # cannot have been meanwhile, and no entry a restart's state reset zeroed
        again = int(self.ctrl[L.C["trace_head"]])
        intact = (((again - positions) & 0xFFFFFFFF) <= self.entries) & ((rows[:, 0] | rows[:, 1]) != 0)
        return rows[intact], int(new - intact.sum())


def _stamp_us(rows: np.ndarray, epoch_us: int) -> np.ndarray:
    """HLC stamps of envelope rows as microseconds after ``epoch_us`` (logical counter as fractions).

    The subtraction is done in integers first: as a float, 2025-relative
    microseconds keep only about 1/128 µs, too coarse for the fractions.
    """
    lo = rows[:, L.ENV_HLC_LO].astype(np.uint64)
    hi = rows[:, L.ENV_HLC_HI].astype(np.uint64)
    packed = lo | hi << np.uint64(32)
    physical = (packed >> np.uint64(L.HLC_LOGICAL_BITS)).astype(np.int64) - epoch_us
    logical = (packed & np.uint64((1 << L.HLC_LOGICAL_BITS) - 1)).astype(np.float64)
    return physical.astype(np.float64) + logical / 1000.0


class EventRing:
    """The last ``capacity`` events, kept as chunks (one numpy pair per tap), trimmed from the front."""

    def __init__(self, capacity: int) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < CAPACITY_MIN:
            raise ValueError(f"trace capacity must be an integer >= {CAPACITY_MIN} events, got {capacity!r}")
        self.capacity = capacity
        self.chunks: deque[tuple[str, int, int, float, np.ndarray, np.ndarray]] = deque()
        self.size = 0
        self.evicted = 0

    def add(
        self, kind: str, actor: int, target: int, seen_us: float, ts: np.ndarray, seq: np.ndarray
    ) -> None:
        """Appends one chunk of events (``ts`` and ``seq`` of equal length) and drops the oldest."""
        if len(ts) == 0:
            return
        self.chunks.append((kind, actor, target, seen_us, ts, seq))
        self.size += len(ts)
        while self.size > self.capacity:
            kind0, a0, t0, s0, ts0, seq0 = self.chunks[0]
            extra = self.size - self.capacity
            if extra >= len(ts0):
                self.chunks.popleft()
                self.size -= len(ts0)
                self.evicted += len(ts0)
            else:
                self.chunks[0] = (kind0, a0, t0, s0, ts0[extra:], seq0[extra:])
                self.size -= extra
                self.evicted += extra

    def __len__(self) -> int:
        return self.size


class ActorTracer:
    """``system.trace(path)``: taps every actor's queues until closed, then writes ``path``."""

    def __init__(
        self, system: Any, path: str | os.PathLike[str], capacity: int = 200_000, interval: float = 0.002
    ) -> None:
        self.system = system
        self.path = check_trace_path(path)
        self.ring = EventRing(capacity)
        self.interval = interval
        self.epoch_us = wall_us()  # times are kept relative to this, in µs
        self.lost = 0
        self._taps: dict[int, _Tap] = {}
        self._rings: dict[int, _RingTap] = {}  # by actor id
        self._depths: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one poll at a time
        self.closed = False

    def start(self) -> ActorTracer:
        """Starts tapping (once)."""
        if self._thread is None:
            self._mirror(True)
            self._switch_rings(True)
            with self._lock:  # what was sent before tracing is not traced
                for ref in list(self.system.actors):
                    for queue in (ref.h2k, ref.out):
                        self._tap(queue.buffer, int(queue.buffer[L.Q_TAIL]))
                    self._ring(ref, int(ref.ctrl[L.C["trace_head"]]))
            self._thread = threading.Thread(target=self._run, name="ringkernel-trace", daemon=True)
            self._thread.start()
        return self

    def __enter__(self) -> ActorTracer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _mirror(self, on: bool) -> None:
        """Asks re-dispatched loops (wgpu, metal) to read their K2K output slots back too."""
        for host in list(self.system.hosts.values()):
            if hasattr(host, "mirror_out"):
                host.mirror_out = on

    def _switch_rings(self, on: bool) -> None:
        """Trace rings record only while a tracer looks: on at its start, off when the last one
        closes (an actor has ring space if it was spawned while a tracer existed)."""
        if not on and any(isinstance(o, ActorTracer) and not o.closed for o in self.system._observers):
            return
        if not on:
            self.system.trace_entries = 0  # actors spawned from now on get no ring space
        for ref in list(self.system.actors):
            at = int(ref.ctrl[L.C["trace_at"]])
            if at:
                entries = (ref.state_words.size - at) // L.TRACE_ENTRY_WORDS
                ref.ctrl[L.C["trace_mask"]] = entries - 1 if on else 0

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def _tap(self, buffer: np.ndarray, cursor: int = 0) -> _Tap:
        """The tap of ``buffer``; a queue first seen now was created while tracing (from 0)."""
        tap = self._taps.get(id(buffer))
        if tap is None or tap.buffer is not buffer:
            tap = self._taps[id(buffer)] = _Tap(buffer, cursor)
        return tap

    def _ring(self, ref: Any, cursor: int = 0) -> _RingTap | None:
        """The tap of ``ref``'s trace ring, if it has one (a ring re-made by a migration starts at 0)."""
        if not int(ref.ctrl[L.C["trace_mask"]]):
            return None
        tap = self._rings.get(ref.id)
        if tap is None or tap.state is not ref.state_words:
            tap = self._rings[ref.id] = _RingTap(ref, cursor)
        return tap

    def poll(self) -> None:
        """One look at every queue (the thread calls it every ``interval`` s)."""
        with self._lock:
            self._mirror(True)  # actors spawned since
            for ref in list(self.system.actors):
                self._read(ref, "send", self._tap(ref.h2k.buffer), HOST_TID, ref.id)
                target = int(ref.ctrl[L.C["out_target"]])
                self._read(ref, "handled", self._tap(ref.out.buffer), ref.id, target)
                ring = self._ring(ref)
                if ring is not None:
                    self._read_ring(ref, ring)
                self._depth(ref.id, ref.inputs_pending())
            for group in list(getattr(self.system, "groups", ())):
                self._depth(group.id, group.inputs_pending())  # all instances: no track per instance

    def _depth(self, key: int, depth: int) -> None:
        """A queue-depth counter event for ``key`` (an actor's id, or a group's), when it changed."""
        if self._depths.get(key) != depth:
            self._depths[key] = depth
            now = float(wall_us() - self.epoch_us)
            self.ring.add("depth", key, 0, now, np.array([now]), np.array([depth]))

    def _read(self, ref: Any, kind: str, tap: _Tap, actor: int, target: int) -> None:
        rows, missed = tap.read()
        self.lost += missed
        if len(rows):
            seq = rows[:, L.ENV_SEQUENCE].copy()
            seen = float(wall_us() - self.epoch_us)
            self.ring.add(kind, actor, target, seen, _stamp_us(rows, self.epoch_us), seq)

    def _read_ring(self, ref: Any, ring: _RingTap) -> None:
        rows, missed = ring.read()
        self.lost += missed
        if len(rows):
            stamps = np.zeros((len(rows), 6), np.uint32)  # the entries' HLC starts, as envelopes hold them
            stamps[:, L.ENV_HLC_LO], stamps[:, L.ENV_HLC_HI] = rows[:, 0], rows[:, 1]
            ts = _stamp_us(stamps, self.epoch_us)
            seen = float(wall_us() - self.epoch_us)
            self.ring.add("span", ref.id, 0, seen, ts, rows[:, [3, 2]].astype(np.int64))  # (seq, µs)

    def close(self) -> None:
        """Stops tapping, takes a last look and writes the trace file (once)."""
        if self.closed:
            return
        self.closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.poll()
        self._mirror(False)
        self._switch_rings(False)
        write_json(self.path, self.events(), {"lost": self.lost, "evicted": self.ring.evicted})

    def events(self) -> list[dict[str, Any]]:
        """The trace events (metadata, spans, flows, counters) of what the ring holds."""
        names = {ref.id: ref.name for ref in self.system.actors}
        names.update((g.id, g.name) for g in getattr(self.system, "groups", ()))  # (a group's id is < 0)
        out: list[dict[str, Any]] = [_meta("process_name", HOST_TID, f"ActorSystem ({self.system.backend})")]
        out.append(_meta("thread_name", HOST_TID, "host"))
        for actor_id, name in names.items():
            out.append(_meta("thread_name", actor_id, name))
        chunks = list(self.ring.chunks)
        origin = min((float(c[4].min()) for c in chunks), default=0.0)
        sends: dict[tuple[int, int], list[tuple[float, int]]] = {}  # (receiver, seq) -> [(ts, sender)]
        spans: dict[int, list[tuple[float, float, int, int]]] = {}  # actor -> [(ts, seen, seq, target)]
        exact: dict[int, list[tuple[float, float, int]]] = {}  # actor -> [(ts, µs taken, seq)] (rings)
        for kind, actor, target, seen, ts, seq in chunks:
            if kind == "depth":
                name = f"{names.get(actor, actor)} queue depth"
                out.append(
                    {
                        "ph": "C",
                        "pid": PID,
                        "tid": actor,
                        "name": name,
                        "ts": float(ts[0]) - origin,
                        "args": {"depth": int(seq[0])},
                    }
                )
                continue
            if kind == "send":
                for t, s in zip(ts.tolist(), seq.tolist()):
                    sends.setdefault((target, s), []).append((t, HOST_TID))
                    out.append(_span(HOST_TID, f"send to {names.get(target, target)}", t - origin, 0.5, s))
                continue
            if kind == "span":
                exact.setdefault(actor, []).extend(zip(ts.tolist(), seq[:, 1].tolist(), seq[:, 0].tolist()))
                continue
            rows = spans.setdefault(actor, [])
            rows.extend((t, seen, s, target) for t, s in zip(ts.tolist(), seq.tolist()))
        for actor, rows in spans.items():
            for t, _, s, target in rows:
                if target:
                    sends.setdefault((target, s), []).append((t, actor))
        begun = {(actor, s): t for actor, rows in spans.items() for t, _, s, _ in rows}
        # (actor, start, µs, seq, slack): an exact start is whole µs of the device clock, a send's
        # HLC stamp has fractions, so a send up to 1 µs later may still be the message's
        boxes: list[tuple[int, float, float, int, float]] = []
        for actor, rows in spans.items():
            if actor in exact:
                continue  # its ring has every span exactly
            for i, (t, seen, s, target) in enumerate(rows):
                # it ended before: the tap saw its reply, its next message began, its receiver began
                end = min(seen, rows[i + 1][0] if i + 1 < len(rows) else seen, begun.get((target, s), seen))
                boxes.append((actor, t, end - t, s, 0.0))
        boxes += [(actor, t, took, s, 1.0) for actor, rows in exact.items() for t, took, s in rows]
        flow_id = 0
        for actor, t, took, s, slack in boxes:
            out.append(_span(actor, "handle", t - origin, max(took, 0.001), s))
            before = [c for c in sends.get((actor, s), ()) if c[0] < t + slack]
            if before:
                sent_at, sender = max(before)
                flow_id += 1
                out.append(
                    {
                        "ph": "s",
                        "pid": PID,
                        "tid": sender,
                        "name": "message",
                        "cat": "message",
                        "id": flow_id,
                        "ts": round(min(sent_at, t) - origin, 3),
                    }
                )
                out.append(
                    {
                        "ph": "f",
                        "bp": "e",
                        "pid": PID,
                        "tid": actor,
                        "name": "message",
                        "cat": "message",
                        "id": flow_id,
                        "ts": round(t - origin, 3),
                    }
                )
        return out


def _meta(name: str, tid: int, value: str) -> dict[str, Any]:
    return {"ph": "M", "pid": PID, "tid": tid, "name": name, "args": {"name": value}}


def _span(tid: int, name: str, ts: float, dur: float, seq: int) -> dict[str, Any]:
    return {
        "ph": "X",
        "pid": PID,
        "tid": tid,
        "name": name,
        "ts": round(ts, 3),
        "dur": round(dur, 3),
        "args": {"seq": seq},
    }


def write_json(path: str, events: list[dict[str, Any]], other: dict[str, Any]) -> None:
    """Writes a trace-event JSON file whole (a temporary file, then a rename)."""
    temp = f"{path}.{os.getpid()}.tmp"
    with open(temp, "w") as f:
        json.dump({"traceEvents": events, "displayTimeUnit": "ns", "otherData": other}, f)
    os.replace(temp, path)


class KernelTracer:
    """``rk.trace(path)``: one span per kernel launch (host wall time around the call)."""

    def __init__(self, path: str | os.PathLike[str], capacity: int = 200_000) -> None:
        self.path = check_trace_path(path)
        self.ring = EventRing(capacity)
        self._names: dict[str, int] = {}

    def record(self, name: str, start_us: float, end_us: float) -> None:
        """Notes one launch of kernel ``name`` that ran from ``start_us`` to ``end_us`` (wall µs)."""
        tid = self._names.setdefault(name, len(self._names) + 1)
        self.ring.add("launch", tid, 0, end_us, np.array([start_us]), np.array([end_us]))

    def __enter__(self) -> KernelTracer:
        KERNEL_TRACERS.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        KERNEL_TRACERS.remove(self)
        names = {tid: name for name, tid in self._names.items()}
        chunks = list(self.ring.chunks)
        origin = min((float(c[4][0]) for c in chunks), default=0.0)
        events = [_meta("process_name", 0, "kernel launches")]
        events += [_meta("thread_name", tid, name) for tid, name in names.items()]
        for _, tid, _, _, start, end in chunks:
            events.append(
                {
                    "ph": "X",
                    "pid": PID,
                    "tid": tid,
                    "name": names[tid],
                    "ts": float(start[0]) - origin,
                    "dur": max(float(end[0] - start[0]), 0.001),
                }
            )
        write_json(self.path, events, {"evicted": self.ring.evicted})


def trace(path: str | os.PathLike[str], capacity: int = 200_000) -> KernelTracer:
    """``with rk.trace("launches.json"):`` records every kernel launch inside the block."""
    return KernelTracer(path, capacity)

