"""The loop-heavy actor the budget-check benchmark times (imported only once actors exist)."""

from __future__ import annotations

import ringkernel as rk
from ringkernel import f32, i32


@rk.message
class Work:
    n: i32


@rk.message
class Result:
    x: f32


@rk.actor
class Heavy:
    """A tight loop of dependent float steps on a local, written to the state once."""

    x: f32 = 0.0

    def work(self, msg: Work) -> Result:
        x = self.x
        for _i in range(msg.n):
            x = x * 0.5 + 1.0
        self.x = x
        return Result(x=x)


@rk.actor
class HeavyState:
    """The same steps on the state itself: the worst case (see ``bench.budget_checks``)."""

    x: f32 = 0.0

    def work(self, msg: Work) -> Result:
        for _i in range(msg.n):
            self.x = self.x * 0.5 + 1.0
        return Result(x=self.x)
