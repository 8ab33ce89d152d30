"""Misused ports, send_to, schedule, self.index and self.group_size: clear, located CompileErrors."""

from __future__ import annotations

import pytest

import ringkernel as rk
from ringkernel import f32, i32, u32
from ringkernel.ringir.diagnostics import CompileError


@rk.message
class Ping:
    n: u32


@rk.message
class Pong:
    n: u32


@rk.message
class Other:
    x: f32


def compile_error(make) -> str:
    """The text of the CompileError that defining (and translating) an actor raises."""
    with pytest.raises(CompileError) as info:
        actor = make()
        actor.ir  # noqa: B018 - translating the handlers finds errors inside them
    text = str(info.value)
    assert "test_actor_sends_errors.py" in text and "^" in text, text  # file:line:col and a caret
    return text


def test_a_port_sends_only_its_message_type():
    def make():
        @rk.actor
        class A:
            out: rk.Port[Pong]

            def on(self, m: Ping) -> None:
                self.out.send(Other(x=1.0))

        return A

    assert "port 'out' of 'A' carries 'Pong', not 'Other'" in compile_error(make)


def test_an_unknown_port_names_the_helper_rule():
    def make():
        @rk.actor
        class A:
            out: rk.Port[Pong]

            def on(self, m: Ping) -> None:
                self.outt.send(Pong(n=m.n))

        return A

    assert "actor 'A' has no port 'outt' (ports: out)" in compile_error(make)


def test_sending_a_non_message_is_an_error():
    def make():
        @rk.actor
        class A:
            out: rk.Port[Pong]

            def on(self, m: Ping) -> None:
                self.out.send(m.n)

        return A

    assert "sends a message constructed in place" in compile_error(make)


def test_a_port_has_only_send():
    def make():
        @rk.actor
        class A:
            out: rk.Port[Pong]

            def on(self, m: Ping) -> None:
                self.out.push(Pong(n=1))

        return A

    assert "a port has one method, send" in compile_error(make)


def test_a_port_is_not_a_value_and_takes_no_assignment():
    def read():
        @rk.actor
        class A:
            out: rk.Port[Pong]

            def peek(self) -> u32:
                return self.out

            def on(self, m: Ping) -> None:
                self.peek()

        return A

    def write():
        @rk.actor
        class B:
            out: rk.Port[Pong]

            def on(self, m: Ping) -> None:
                self.out = 1

        return B

    assert "'self.out' is a port, not a value" in compile_error(read)
    assert "'self.out' is a port; it cannot be assigned" in compile_error(write)


def test_send_to_needs_a_type_the_actor_handles():
    def make():
        @rk.actor
        class A:
            def on(self, m: Ping) -> None:
                self.send_to(0, Pong(n=m.n))

        return A

    text = compile_error(make)
    assert "no handler for 'Pong'" in text and "on(Ping)" in text


def test_schedule_needs_a_type_the_actor_handles():
    def make():
        @rk.actor
        class A:
            def on(self, m: Ping) -> None:
                self.schedule(10, Other(x=1.0))

        return A

    assert "no handler for 'Other'" in compile_error(make)


def test_schedule_takes_an_integer_delay():
    def make():
        @rk.actor
        class A:
            def on(self, m: Ping) -> None:
                self.schedule(1.5, Ping(n=1))

        return A

    assert "integer number of microseconds" in compile_error(make)


def test_send_to_and_schedule_take_two_positional_arguments():
    def one():
        @rk.actor
        class A:
            def on(self, m: Ping) -> None:
                self.send_to(Ping(n=1))

        return A

    def keyword():
        @rk.actor
        class B:
            def on(self, m: Ping) -> None:
                self.schedule(delay_us=3, msg=Ping(n=1))

        return B

    assert "self.send_to takes 2 argument(s)" in compile_error(one)
    assert "self.schedule takes no keyword arguments" in compile_error(keyword)


def test_index_and_group_size_are_read_only():
    def assign():
        @rk.actor
        class A:
            def on(self, m: Ping) -> None:
                self.index = 3

        return A

    def augment():
        @rk.actor
        class B:
            def on(self, m: Ping) -> None:
                self.group_size += 1

        return B

    assert "'self.index' is read-only" in compile_error(assign)
    assert "'self.group_size' is read-only" in compile_error(augment)


def test_send_to_is_a_method():
    def make():
        @rk.actor
        class A:
            def peek(self) -> i32:
                return self.send_to

            def on(self, m: Ping) -> None:
                self.peek()

        return A

    assert "'self.send_to' is a method" in compile_error(make)


def test_a_message_built_outside_a_send_or_reply_says_where_it_may_be():
    def make():
        @rk.actor
        class A:
            def on(self, m: Ping) -> None:
                x = Pong(n=1)  # noqa: F841

        return A

    assert "self.out.send(Msg(field=...))" in compile_error(make)


def test_a_port_of_a_non_message_is_an_error():
    with pytest.raises(CompileError, match="port 'out' of 'A' carries .* not a message") as info:

        @rk.actor
        class A:
            out: rk.Port[int]

            def on(self, m: Ping) -> None:
                pass

    assert "^" in str(info.value)


def test_port_names_follow_the_name_rules():
    with pytest.raises(CompileError, match="port 'index' of 'A' is a reserved name"):

        @rk.actor
        class A:
            index: rk.Port[Pong]

            def on(self, m: Ping) -> None:
                pass

    with pytest.raises(CompileError, match="both a port and a method"):

        @rk.actor
        class B:
            out: rk.Port[Pong]

            def out(self, m: Ping) -> None:  # noqa: F811
                pass


def test_a_port_takes_no_value_and_rk_port_is_no_constructor():
    with pytest.raises(CompileError, match="takes no value"):

        @rk.actor
        class A:
            out: rk.Port[Pong] = None

            def on(self, m: Ping) -> None:
                pass

    with pytest.raises(TypeError, match="annotation"):
        rk.Port(Pong)


def test_ports_are_numbered_in_declaration_order_and_are_not_state():
    @rk.actor
    class A:
        b: rk.Port[Pong]
        total: u32 = 0
        a: rk.Port[Other]

        def on(self, m: Ping) -> None:
            self.a.send(Other(x=1.0))

    assert {n: p.number for n, p in A.info.ports.items()} == {"b": 0, "a": 1}
    assert A.ports == {"b": Pong, "a": Other}
    assert [f.name for f in A.info.state.fields] == ["total"]
    assert A.info.talks and not A.info.routes_self


def test_an_actor_that_does_not_talk_keeps_its_handler_signature():
    @rk.actor
    class Quiet:
        def on(self, m: Ping) -> Pong:
            return Pong(n=m.n)

    handler = Quiet.ir.get("Quiet__on_Ping")
    assert [p.name for p in handler.params][-1] == "rk.sbase" and not Quiet.info.talks


def test_send_to_takes_an_i32_or_u32_index_only():
    @rk.actor
    class Unsigned:
        def on(self, m: Ping) -> None:
            self.send_to(m.n, Ping(n=1))

    assert Unsigned.ir.get("Unsigned__on_Ping") is not None

    def floating():
        @rk.actor
        class A:
            def on(self, m: Ping) -> None:
                self.send_to(2.0, Ping(n=1))

        return A

    assert "cannot be used as i32" in compile_error(floating)
