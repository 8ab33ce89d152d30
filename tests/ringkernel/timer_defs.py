"""Actors for the checkpoint-timer tests (imported by name in a restoring child process)."""

from __future__ import annotations

import ringkernel as rk
from ringkernel import Vec, u32


@rk.message
class Arm:
    tag: u32
    delay_us: u32


@rk.message
class Ring:
    tag: u32


@rk.message
class Rang:
    tag: u32
    fired: u32


@rk.actor
class Alarm:
    """Arm sets a timer ``delay_us`` ahead and replies nothing; the timer's Ring is answered."""

    armed: u32 = 0
    fired: u32 = 0

    def on_arm(self, msg: Arm) -> None:
        self.armed += 1
        self.schedule(msg.delay_us, Ring(tag=msg.tag))

    def on_ring(self, msg: Ring) -> Rang:
        self.fired += 1
        return Rang(tag=msg.tag, fired=self.fired)


@rk.message
class WideArm:
    tag: u32
    delay_us: u32
    pad: Vec[u32, 12]


@rk.message
class WideRing:
    tag: u32
    pad: Vec[u32, 12]


@rk.actor
class WideAlarm:
    """As Alarm, with a timer message wider than Alarm's (the router's held rows get wider)."""

    fired: u32 = 0

    def on_arm(self, msg: WideArm) -> None:
        self.schedule(msg.delay_us, WideRing(tag=msg.tag, pad=msg.pad))

    def on_ring(self, msg: WideRing) -> Rang:
        self.fired += 1
        return Rang(tag=msg.tag, fired=self.fired)
