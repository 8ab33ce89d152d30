"""Bad messages and actors give clear errors that point at the user's source."""

from __future__ import annotations

import pytest

import ringkernel as rk
from ringkernel import Array, f32, u32
from ringkernel.ringir.diagnostics import CompileError


@rk.message
class Ping:
    n: u32


@rk.message
class Pong:
    n: u32


def test_message_construction_checks_fields():
    assert Ping(n=3).n == 3
    with pytest.raises(TypeError, match="no field 'm'"):
        Ping(m=3)
    with pytest.raises(TypeError, match="needs field 'n'"):
        Ping()
    with pytest.raises(ValueError, match="out of range"):
        Ping(n=-1)
    assert Ping.type_id != Pong.type_id and Ping.type_id != 0


def test_unsupported_field_type():
    with pytest.raises(CompileError, match="field 'xs' has unsupported type"):

        @rk.message
        class Bad:
            xs: Array[f32]


def test_two_handlers_for_one_message():
    with pytest.raises(CompileError, match="two handlers for message 'Ping'") as info:

        @rk.actor
        class Twice:
            def a(self, msg: Ping) -> Pong:
                return Pong(n=msg.n)

            def b(self, msg: Ping) -> Pong:
                return Pong(n=msg.n)

    assert info.value.line is not None


def test_handler_returning_a_non_message():
    @rk.actor
    class ReturnsNumber:
        def a(self, msg: Ping):
            return msg.n

    with pytest.raises(CompileError, match="a handler returns a reply message") as info:
        ReturnsNumber.compile("rir")
    assert info.value.source_line is not None and "return msg.n" in info.value.source_line


def test_unknown_state_field_and_missing_reply_field():
    @rk.actor
    class Typo:
        count: u32 = 0

        def a(self, msg: Ping) -> Pong:
            self.cout += 1
            return Pong(n=self.count)

    with pytest.raises(CompileError, match="no state field 'cout'"):
        Typo.compile("rir")

    @rk.actor
    class Missing:
        def a(self, msg: Ping) -> Pong:
            return Pong()

    with pytest.raises(CompileError, match="missing field"):
        Missing.compile("rir")


def test_actor_without_handlers():
    with pytest.raises(CompileError, match="has no handler"):

        @rk.actor
        class Idle:
            x: f32 = 0.0

            def helper(self, y: f32) -> f32:
                return y
