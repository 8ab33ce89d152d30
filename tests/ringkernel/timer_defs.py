"""Actors for the checkpoint-timer tests (imported by name in a restoring child process)."""

from __future__ import annotations

import ringkernel as rk
from ringkernel import u32


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
