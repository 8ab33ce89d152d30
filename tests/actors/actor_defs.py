"""Messages and actors shared by the actor tests."""

import ringkernel as rk
from ringkernel import f32, f64, i32, u32


@rk.message
class Add:
    value: f32


@rk.message
class Total:
    total: f32
    count: u32


@rk.message
class Num:
    value: f32


@rk.message
class Wide:
    big: f64
    small: i32


@rk.actor
class Accumulator:
    total: f32 = 0.0
    count: u32 = 0

    def add(self, msg: Add) -> Total:
        self.total += msg.value
        self.count += 1
        return Total(total=self.total, count=self.count)


@rk.actor
class Doubler:
    def double(self, msg: Num) -> Num:
        return Num(value=msg.value * 2.0)


@rk.actor
class Incrementer:
    step: f32 = 1.0

    def bump(self, msg: Num) -> Num:
        return Num(value=self.shifted(msg.value))

    def shifted(self, x: f32) -> f32:
        return x + self.step


@rk.actor
class Summer:
    total: f32 = 0.0
    count: u32 = 0

    def take(self, msg: Num) -> Total:
        self.total += msg.value
        self.count += 1
        return Total(total=self.total, count=self.count)


@rk.actor
class Counter:
    """Counts Adds silently and answers Num with the count so far (two handlers, one silent)."""

    seen: u32 = 0
    wide: f64 = 0.0

    def add(self, msg: Add):
        self.seen += 1
        self.wide += f64(msg.value)

    def ask(self, msg: Num) -> Wide:
        if msg.value < 0.0:
            return None
        return Wide(big=self.wide, small=i32(self.seen))


@rk.message
class Narrow:
    big: f32
    small: i32


@rk.actor
class Counter32:
    """Counter without 64-bit fields, for targets that have none (WGSL)."""

    seen: u32 = 0
    wide: f32 = 0.0

    def add(self, msg: Add):
        self.seen += 1
        self.wide += msg.value

    def ask(self, msg: Num) -> Narrow:
        if msg.value < 0.0:
            return None
        return Narrow(big=self.wide, small=i32(self.seen))
