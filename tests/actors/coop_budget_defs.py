"""Cooperative actors with budgets (module level: the frontend reads their source)."""

from __future__ import annotations

import ringkernel as rk
from ringkernel import u32


@rk.message
class Bump:
    value: u32


@rk.message
class Bumped:
    total: u32


@rk.actor(threads=4, budget=1000)
class Straight:
    """No loop: the budget has nothing to check, so the combination is fine."""

    total: u32 = 0

    def bump(self, msg: Bump) -> Bumped:
        if rk.thread_id(0) == 0:
            self.total += msg.value
        return Bumped(total=self.total)
