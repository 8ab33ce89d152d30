"""Block-level builtins in actor methods: only in a cooperative actor, with an error naming threads=N."""

from __future__ import annotations

import pytest

import ringkernel as rk
from ringkernel import u32
from ringkernel.ringir.diagnostics import CompileError


@rk.message
class Tick:
    x: u32


def test_block_builtins_need_threads_and_the_error_points_at_the_call():
    @rk.actor
    class Lonely:
        def tick(self, msg: Tick) -> Tick:
            return Tick(x=u32(rk.thread_id(0)))

    with pytest.raises(CompileError, match=r"needs a cooperative actor, @rk.actor\(threads=N\)") as info:
        Lonely.compile("rir")
    assert "test_cooperative_frontend_errors.py" in str(info.value) and "^" in str(info.value)


def test_grid_indices_stay_out_of_cooperative_handlers():
    @rk.actor(threads=4)
    class Crowd:
        def tick(self, msg: Tick) -> Tick:
            return Tick(x=u32(rk.block_id(0)))  # a group's instance is not the handler's business

    with pytest.raises(CompileError, match=r"rk.block_id\(\) in an actor method"):
        Crowd.compile("rir")


@pytest.mark.parametrize("threads", [0, 1025, 1.5])
def test_bad_threads_are_a_value_error_with_the_range(threads):
    with pytest.raises(ValueError, match="from 1 to 1024"):
        rk.actor(threads=threads)
