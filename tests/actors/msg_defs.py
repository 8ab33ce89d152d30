"""Actors that send (issue 23), module level so the frontend reads them: ports, send_to, schedule."""

from __future__ import annotations

import ringkernel as rk
from ringkernel import f32, i32, i64, u32


@rk.message
class Split:
    count: i32
    tag: u32


@rk.message
class Piece:
    tag: u32
    part: i32


@rk.message
class Note:
    value: f32


@rk.actor
class Splitter:
    """Sends ``count`` pieces on ``out`` and one note on ``log`` per input; replies nothing."""

    out: rk.Port[Piece]
    log: rk.Port[Note]
    seen: u32 = 0

    def split(self, msg: Split) -> None:
        self.seen += 1
        for k in range(msg.count):
            self.out.send(Piece(tag=msg.tag, part=k))
        if msg.count > 2:
            self.note(f32(msg.count))

    def note(self, value: f32) -> None:
        self.log.send(Note(value=value))


@rk.message
class Cell:
    value: i32


@rk.actor
class Ring:
    """Each instance passes a value to both neighbours (the edges send out of range)."""

    me: i32 = -1
    size: i32 = 0

    def cell(self, msg: Cell) -> None:
        self.me = self.index
        self.size = self.group_size
        self.send_to(self.index - 1, Cell(value=msg.value + 1))
        self.send_to(self.index + 1, Cell(value=msg.value + 2))


@rk.message
class Tick:
    delay: i32


@rk.actor
class Ticker:
    """Schedules a tick back to itself: a negative delay is clamped to 0."""

    ticks: u32 = 0

    def tick(self, msg: Tick) -> None:
        self.ticks += 1
        self.schedule(msg.delay, Tick(delay=msg.delay))
        self.schedule(-5, Tick(delay=0))


@rk.message
class LongTick:
    delay: i64


@rk.actor
class LongTicker:
    """A 64-bit delay is clamped into 0 .. 2**32 - 1 microseconds (~71 minutes)."""

    ticks: u32 = 0

    def tick(self, msg: LongTick) -> None:
        self.ticks += 1
        self.schedule(msg.delay, LongTick(delay=msg.delay))


@rk.actor(budget=50)
class Spinner:
    """Sends one piece per loop iteration: past its budget the handler is aborted, its sends dropped."""

    done: u32 = 0

    out: rk.Port[Piece]

    def split(self, msg: Split) -> None:
        k = 0
        while k < msg.count:
            self.out.send(Piece(tag=msg.tag, part=k))
            k += 1
        self.done += 1


@rk.actor(threads=32)
class Fan:
    """Every lane below ``count`` sends one piece (lanes reserve slots atomically)."""

    out: rk.Port[Piece]

    def split(self, msg: Split) -> None:
        t = rk.thread_id(0)
        if t < msg.count:
            self.out.send(Piece(tag=msg.tag, part=t))


PORTABLE_TALKERS = [Splitter, Ring, Ticker, Spinner, Fan]  # (LongTicker has 64-bit fields: not WGSL)
TALKERS = [*PORTABLE_TALKERS, LongTicker]
