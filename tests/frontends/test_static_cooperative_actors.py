"""ringc's static reading of ``@rk.actor(threads=N)``: N changes the kernel, so it is read too."""

from __future__ import annotations

import textwrap

import pytest

from ringkernel.frontends.static import scan_source
from ringkernel.ringir import Barrier, walk
from ringkernel.ringir.diagnostics import CompileError

SOURCE = """\
import ringkernel as rk
from ringkernel import u32


@rk.message
class Ping:
    x: u32


@rk.actor(threads={threads})
class Pool:
    seen: u32 = 0

    def ping(self, msg: Ping) -> Ping:
        shared = rk.shared_array(u32, 8)
        shared[rk.thread_id(0) % 8] = msg.x
        rk.barrier()
        return Ping(x=shared[0])
"""


def actor(threads: str):
    result = scan_source(textwrap.dedent(SOURCE.format(threads=threads)), "pool.py")
    assert not result.errors, result.errors
    return result.get("Pool")


def test_ringc_compiles_a_cooperative_actor_with_its_lanes():
    pool = actor("32")
    assert pool.info.threads == 32
    assert any(isinstance(s, Barrier) for s in walk(pool.module("persistent").get("Pool").body))


@pytest.mark.parametrize("threads, message", [("0", "from 1 to 1024"), ("N", "as a number")])
def test_a_bad_threads_is_a_located_error(threads, message):
    with pytest.raises(CompileError, match=message) as info:
        actor(threads).info  # noqa: B018
    assert "pool.py:10" in str(info.value)
