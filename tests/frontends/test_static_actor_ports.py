"""ringc reads ``out: rk.Port[Msg]`` statically as a port, not a state field, as the live class does."""

from __future__ import annotations

import pytest

from ringkernel.frontends.static import scan_source
from ringkernel.ringir.diagnostics import CompileError

SOURCE = """\
import ringkernel as rk
from ringkernel import u32


@rk.message
class Ping:
    n: u32


@rk.message
class Pong:
    n: u32


@rk.actor
class Relay:
    out: rk.Port[Pong]
    total: u32 = 0
    {extra}

    def on(self, m: Ping) -> None:
        self.total += m.n
        self.out.send(Pong(n=self.total))
        self.send_to(self.index, Ping(n=1))
"""


def relay(extra: str = ""):
    result = scan_source(SOURCE.format(extra=extra), "relay.py")
    assert not result.errors, result.errors
    return result.get("Relay")


def test_ringc_reads_ports_like_the_live_class():
    info = relay().info
    assert list(info.ports) == ["out"] and info.ports["out"].message.name == "Pong"
    assert [f.name for f in info.state.fields] == ["total"]
    assert info.talks and info.routes_self
    kernel = relay().module("persistent").get("Relay")
    assert [p.name for p in kernel.params][-2:] == ["sends", "routed"]


@pytest.mark.parametrize(
    "extra, message",
    [("bad: rk.Port[u32]", "port 'bad' of 'Relay' carries .* not a message"),
     ("index: rk.Port[Pong]", "port 'index' of 'Relay' is a reserved name"),
     ("more: rk.Port[Pong] = 1", "takes no value")],
)
def test_a_bad_port_is_a_located_error(extra, message):
    with pytest.raises(CompileError, match=message) as info:
        relay(extra).info  # noqa: B018
    assert "relay.py:19" in str(info.value)
