"""Field, state and method names of messages and actors: reserved ones are located errors,
every other name works on every target.

Regressions: a message field named ``envelope`` lost its value; dunder fields
(``__slots__``, ``__qualname__``) crashed ``rk.message`` and ringc; a helper
named ``on_<x>`` was taken for a handler; a device function named like a
generated function was "defined twice".
"""

from __future__ import annotations

import os
import sys
import textwrap

import pytest

import ringkernel as rk
from ringkernel import f32, u32
from ringkernel.frontends.static import scan_source
from ringkernel.ringir.diagnostics import CompileError

sys.path.insert(0, os.path.dirname(__file__))

THIS_FILE = os.path.abspath(__file__)


def _line_of(text: str) -> int:
    with open(THIS_FILE, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.strip() == text:
                return number
    raise AssertionError(text)


def _assert_located(error: CompileError, line_text: str, name: str) -> None:
    assert error.filename == THIS_FILE
    assert error.line == _line_of(line_text)
    assert error.source_line is not None and error.source_line.strip() == line_text
    assert error.col == error.source_line.index(name) + 1
    assert "^" * len(name) in str(error)


# --- reserved names, live decorators ---------------------------------------------------------


def test_a_message_field_named_envelope_is_a_located_error():
    with pytest.raises(CompileError, match="'envelope' of 'Stamped' is a reserved name") as info:

        @rk.message
        class Stamped:
            value: f32
            envelope: u32

    _assert_located(info.value, "envelope: u32", "envelope")
    assert ".envelope' holds its type id" in info.value.message


@pytest.mark.parametrize("reserved", ["type_id", "dtype"])
def test_message_fields_that_shadow_the_class_api_are_errors(reserved):
    with pytest.raises(CompileError, match=f"'{reserved}' of 'M' is a reserved name"):
        rk.message(type("M", (), {"__annotations__": {reserved: u32}}))


def test_dunder_message_fields_are_located_errors_not_crashes():
    with pytest.raises(CompileError, match="names starting with '__' are reserved") as info:

        @rk.message
        class Slots:
            __slots__: u32

    _assert_located(info.value, "__slots__: u32", "__slots__")


def test_private_mangled_fields_are_reported_as_written():
    with pytest.raises(CompileError, match="field '__hidden' of 'Private'") as info:

        @rk.message
        class Private:
            __hidden: u32

    _assert_located(info.value, "__hidden: u32", "__hidden")


def test_generated_prefix_is_reserved():
    with pytest.raises(CompileError, match="names starting with '_rk_' are reserved"):
        rk.message(type("M", (), {"__annotations__": {"a": u32, "_rk_default_a": u32}}))


@rk.message
class Ping:
    n: u32


def test_actor_state_fields_named_like_the_group_api_are_located_errors():
    with pytest.raises(CompileError, match="state field 'index' of 'Indexed' is a reserved name") as info:

        @rk.actor
        class Indexed:
            index: u32 = 0

            def on(self, msg: Ping) -> Ping:
                return Ping(n=msg.n)

    _assert_located(info.value, "index: u32 = 0", "index")


def test_helpers_named_like_the_group_api_are_errors_but_handlers_are_not():
    with pytest.raises(CompileError, match="helper 'schedule' of 'Sched' is a reserved name") as info:

        @rk.actor
        class Sched:
            def schedule(self, x: u32) -> u32:
                return x

            def on(self, msg: Ping) -> Ping:
                return Ping(n=self.schedule(msg.n))

    assert info.value.line is not None

    @rk.actor
    class Planner:
        def schedule(self, msg: Ping) -> Ping:  # a handler is never called through self
            return Ping(n=msg.n + u32(1))

    assert "Planner__on_Ping" in Planner.compile("rir")


def test_unsupported_field_types_are_located_too():
    with pytest.raises(CompileError, match="field 'xs' has unsupported type") as info:

        @rk.message
        class Bad:
            xs: str

    _assert_located(info.value, "xs: str", "xs")


# --- names that must keep working ------------------------------------------------------------


@rk.message
class Tricky:
    self: u32  # a field may be called self
    kernel: u32
    struct: f32
    float4: u32
    main: u32
    hlc: u32
    sequence: u32
    source: u32


@rk.message
class Echoed:
    main: u32
    struct: f32
    hlc: u32


@rk.actor
class TrickyActor:
    float4: u32 = 0
    kernel: f32 = 0.0
    state: u32 = 0
    ctrl: u32 = 0

    def on_Tricky(self, x: u32) -> u32:  # a helper named like a handler in RingIR
        return x + self.on_overflow(x)

    def on_overflow(self, x: u32) -> u32:
        return x * u32(0)

    def main(self, msg: Tricky) -> Echoed:
        self.float4 += msg.float4
        self.kernel += msg.struct
        self.state = msg.self
        self.ctrl = msg.hlc + msg.sequence + msg.source
        return Echoed(main=self.on_Tricky(msg.main + msg.kernel), struct=self.kernel, hlc=self.ctrl)


def test_a_field_called_self_constructs():
    msg = Tricky(self=1, kernel=2, struct=3.0, float4=4, main=5, hlc=6, sequence=7, source=8)
    assert msg.self == 1 and msg.envelope is None


def test_tricky_names_run_end_to_end(actor_backend):
    msg = Tricky(self=1, kernel=2, struct=3.5, float4=4, main=5, hlc=6, sequence=7, source=8)
    with rk.ActorSystem(backend=actor_backend) as system:
        ref = system.spawn(TrickyActor, queue_capacity=16)
        ref.send(msg)
        reply = ref.receive(timeout=10.0)
    assert reply == Echoed(main=7, struct=3.5, hlc=21)
    assert ref.state == {"float4": 4, "kernel": 3.5, "state": 1, "ctrl": 21}


def test_tricky_names_pass_every_target_validator():
    from ringkernel.lowering.cuda.ptxas import check_ptx, find_ptxas
    from ringkernel.lowering.msl.check import check_msl
    from ringkernel.lowering.wgsl import check_wgsl
    from ringkernel.ringir import parse

    text = TrickyActor.compile("rir")
    assert parse(text) == TrickyActor.ir
    check_wgsl(TrickyActor.compile("wgsl"))
    check_msl(TrickyActor.compile("msl"))
    ptx = TrickyActor.compile("ptx")
    if find_ptxas() is not None:
        check_ptx(ptx)


@rk.func
def Collide__h_helper(x: u32) -> u32:  # named like Collide's helper in RingIR
    return x + u32(10)


@rk.func
def Collide(x: u32) -> u32:  # named like the actor's loop kernel
    return x + u32(100)


def test_device_functions_named_like_generated_functions_get_other_names():
    namespace = {"rk": rk, "u32": u32, "Ping": Ping, "Collide__h_helper": Collide__h_helper}
    namespace["CollideF"] = Collide
    source = textwrap.dedent("""\
        @rk.actor
        class Collide:
            def helper(self, x: u32) -> u32:
                return x + u32(1)

            def on(self, msg: Ping) -> Ping:
                return Ping(n=CollideF(Collide__h_helper(self.helper(msg.n))))
        """)
    module = _load("<collide-actor>", source, namespace)
    actor = module["Collide"]
    names = [fn.name for fn in actor.ir.functions]
    assert len(names) == len(set(names))
    with rk.ActorSystem(backend="cpu") as system:
        ref = system.spawn(actor, queue_capacity=4)
        ref.send(Ping(n=1))
        assert ref.receive(timeout=10.0).n == 112


def _load(path: str, source: str, namespace: dict) -> dict:
    import linecache

    linecache.cache[path] = (len(source), None, source.splitlines(True), path)
    exec(compile(source, path, "exec", dont_inherit=True), namespace)  # noqa: S102 - the test's source
    return namespace


# --- ringc's static path -------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, name",
    [
        ("envelope: u32", "envelope"),
        ("__slots__: u32 = 1", "__slots__"),
        ("__qualname__: u32 = 1", "__qualname__"),
        ("type_id: u32", "type_id"),
    ],
)
def test_ringc_reports_reserved_message_fields_at_the_field(field, name):
    header = "import ringkernel as rk\nfrom ringkernel import u32\n@rk.message\nclass M:\n"
    text = f"{header}    x: u32\n    {field}\n"
    result = scan_source(text, "m.py")
    (error,) = result.errors
    assert (error.filename, error.line, error.col) == ("m.py", 6, 5)
    assert f"'{name}'" in error.message and "reserved" in error.message
    assert "^" * len(name) in str(error)


def test_ringc_reports_reserved_state_fields_and_helpers_like_the_decorator():
    text = textwrap.dedent("""\
        import ringkernel as rk
        from ringkernel import u32

        @rk.message
        class Ping:
            n: u32

        @rk.actor
        class A:
            group_size: u32 = 0

            def on(self, msg: Ping) -> None:
                pass
        """)
    result = scan_source(text, "a.py")
    with pytest.raises(CompileError, match="state field 'group_size' of 'A' is a reserved name") as info:
        result.get("A").module()
    assert (info.value.filename, info.value.line, info.value.col) == ("a.py", 10, 5)


# --- class names -----------------------------------------------------------------------------


def test_a_message_named_like_its_actor_is_a_located_error():
    source = textwrap.dedent("""\
        @rk.message
        class Same:
            n: u32

        Msg = Same

        @rk.actor
        class Same:
            total: u32 = 0

            def on(self, msg: Msg) -> Msg:
                self.total += msg.n
                return Msg(n=self.total)
        """)
    actor = _load("<same-name>", source, {"rk": rk, "u32": u32})["Same"]
    with pytest.raises(CompileError, match="message 'Same' has the name of actor 'Same'") as info:
        actor.compile("wgsl")
    assert info.value.line == 11 and "def on(self, msg: Msg)" in info.value.source_line


def test_two_messages_of_one_name_are_a_located_error():
    source = textwrap.dedent("""\
        @rk.message
        class Ping:
            other: f32

        @rk.actor
        class Both:
            def a(self, msg: Ping) -> PingB:
                return PingB(n=u32(1))
        """)
    namespace = _load("<two-pings>", source, {"rk": rk, "u32": u32, "f32": f32, "PingB": Ping})
    with pytest.raises(CompileError, match="two different messages of actor 'Both' are named 'Ping'"):
        namespace["Both"].compile("rir")
