"""Vec fields in messages and actor state (issue 14, for actor groups' per-instance arrays).

Layout (docs/layout.md "Records"): a Vec field's elements follow each other
as scalar fields of its type would, so slots grow to fit (a power of two)
and RingIR's struct lists the elements as ``name_0 .. name_{N-1}``.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import Vec, durability, f32, u8, u32
from ringkernel.ringir import layout as L

sys.path.insert(0, os.path.dirname(__file__))
from vec_field_defs import (  # noqa: E402
    Hist,
    Histogrammer,
    Pair,
    Samples,
    ShorterBins,
    Sum,
    Summer16,
    WideKeeper,
)


def test_vec_fields_take_their_elements_words() -> None:
    info = Samples.__rk_message__
    values = info.layout.field("values")
    assert (values.word, values.words, info.layout.words) == (0, 16, 17)
    assert info.slot_words == 32  # 6 envelope + 17 payload words, rounded up to a power of two
    assert Samples.dtype.fields["values"][0] == np.dtype((np.float32, (16,)))
    pair = Pair.__rk_message__.layout
    assert [(f.word, f.words) for f in pair.fields] == [(0, 6), (6, 4)]
    state = Histogrammer.info.state
    assert [(f.name, f.word, f.length) for f in state.fields] == [
        ("bins", 0, 256), ("marks", 256, 4), ("count", 260, None)]


def test_the_ir_struct_lists_the_elements_and_gives_back_the_type_id() -> None:
    layout = Hist.__rk_message__.layout
    struct = layout.struct_type()
    assert [n for n, _ in struct.fields][:3] == ["low_0", "low_1", "low_2"] and len(struct.fields) == 9
    again = L.record_layout(struct.name, struct.fields)
    assert L.type_id_of(again) == Hist.type_id and again.words == layout.words


def test_messages_hold_numpy_arrays() -> None:
    msg = Samples(values=range(16), n=3)
    assert msg.values.dtype == np.float32 and msg == Samples(values=np.arange(16), n=3)
    with pytest.raises(TypeError, match=r"Samples.values must be 16 numbers"):
        Samples(values=[1.0, 2.0], n=1)
    with pytest.raises(ValueError, match="not u32 integers"):
        Hist(low=[-1] * 8, count=0)


def test_histogram_in_state(actor_backend) -> None:
    with rk.ActorSystem(backend=actor_backend) as system:
        ref = system.spawn(Histogrammer)
        ref.send(Samples(values=np.arange(16, dtype=np.float32), n=10))
        first = ref.receive(timeout=10.0)
        ref.send(Samples(values=np.arange(16, dtype=np.float32) + 3, n=16))
        second = ref.receive(timeout=10.0)
        state = ref.state
    expect = np.zeros(256, np.uint32)
    np.add.at(expect, np.arange(10), 1)
    np.testing.assert_array_equal(first.low, expect[:8])
    np.add.at(expect, np.arange(16) + 3, 1)
    expect[255] += 4
    np.testing.assert_array_equal(second.low, expect[:8])
    assert (first.count, second.count) == (1, 2)
    np.testing.assert_array_equal(state["bins"], expect)
    np.testing.assert_array_equal(state["marks"], [1, 2, 3, 24])
    assert state["count"] == 2


def test_64_bit_vec_fields_on_cpu() -> None:
    with rk.ActorSystem(backend="cpu") as system:
        ref = system.spawn(WideKeeper)
        ref.send(Pair(xs=[1.5, -2.0, 1e300], ks=[2**40, -7]))
        reply = ref.receive(timeout=10.0)
    np.testing.assert_array_equal(reply.xs, [3.0, -4.0, 2e300])
    np.testing.assert_array_equal(reply.ks, [0, 2**40 - 1])


def test_send_many_with_vec_fields() -> None:
    batch = np.zeros(3, Samples.dtype)
    batch["values"] = np.arange(48).reshape(3, 16) % 5
    batch["n"] = 16
    with rk.ActorSystem(backend="cpu") as system:
        ref = system.spawn(Histogrammer)
        ref.send_many(batch)
        replies = [ref.receive(timeout=10.0) for _ in range(3)]
    assert replies[-1].count == 3
    np.testing.assert_array_equal(replies[-1].low[:5], np.bincount(batch["values"].ravel().astype(int)))


def test_every_target_accepts_vec_field_actors() -> None:
    from ringkernel.lowering.cuda.ptxas import check_ptx
    from ringkernel.lowering.msl.check import check_msl
    from ringkernel.lowering.wgsl import check_wgsl
    from ringkernel.ringir import parse

    text = Histogrammer.compile("rir")
    assert parse(text) == Histogrammer.ir
    check_wgsl(Histogrammer.compile("wgsl"))
    check_ptx(Histogrammer.compile("ptx"))
    check_ptx(WideKeeper.compile("ptx"))
    try:
        check_msl(Histogrammer.compile("msl"))
    except rk.CompileError as exc:
        if "needs clang" not in str(exc):
            raise


def _compile_error(make) -> rk.CompileError:
    with pytest.raises(rk.CompileError) as info:
        actor = make()
        actor.compile("rir")
    return info.value


def _writes_message():
    @rk.actor
    class WritesMessage:
        seen: u32

        def add(self, msg: Samples) -> None:
            msg.values[0] = 1.0

    return WritesMessage


def _atomic_on_scalar():
    @rk.actor
    class AtomicScalar:
        count: u32

        def add(self, msg: Samples) -> None:
            rk.atomic_add(self.count, 0, u32(1))

    return AtomicScalar


def _atomic_on_floats():
    @rk.actor
    class AtomicFloats:
        sums: Vec[f32, 4]

        def add(self, msg: Samples) -> None:
            rk.atomic_add(self.sums, 0, 1.0)

    return AtomicFloats


def _whole_big_vec():
    @rk.actor
    class WholeBig:
        bins: Vec[u32, 256]

        def add(self, msg: Samples) -> None:
            b = self.bins
            b[0] = u32(1)

    return WholeBig


@pytest.mark.parametrize("make, message, underlined", [
    (_writes_message, "messages are read-only", "msg.values[0]"),
    (_atomic_on_scalar, "atomic_add() takes a Vec state field", "self.count"),
    (_atomic_on_floats, "atomic_add() on a Vec[f32, 4] state field is not supported", "self.sums"),
    (_whole_big_vec, "'self.bins' is a Vec[u32, 256] in memory; index it", "self.bins"),
], ids=["write-message", "atomic-scalar", "atomic-floats", "whole-big-vec"])
def test_vec_field_errors_point_at_the_cause(make, message: str, underlined: str) -> None:
    err = _compile_error(make)
    assert message in err.message
    start = err.col - 1  # type: ignore[operator]
    assert err.source_line[start:start + len(underlined)] == underlined  # type: ignore[index]


@pytest.mark.parametrize("annotation, message", [
    (Vec[bool, 4], "declare it Vec[u32, 4]"),
    (Vec[u8, 4], "declare it Vec[u32, 4]"),
    (Vec[u32, 0], "a Vec field holds 1 to 65536 values"),
], ids=str)
def test_bad_vec_field_types(annotation, message: str) -> None:
    with pytest.raises(rk.CompileError) as info:
        rk.message(type("Bad", (), {"__annotations__": {"xs": annotation}}))
    assert message in info.value.message


def test_an_element_name_clash_is_an_error() -> None:
    with pytest.raises(rk.CompileError, match="field 'xs_1' has the name RingIR gives element 1"):
        rk.message(type("Clash", (), {"__annotations__": {"xs": Vec[u32, 2], "xs_1": u32}}))


def test_ringc_reads_vec_fields_statically(tmp_path, capsys) -> None:
    from ringkernel.cli import main

    source = os.path.join(os.path.dirname(__file__), "vec_field_defs.py")
    for actor in (Histogrammer, WideKeeper):
        assert main([source, "-t", "rir", "--kernel", actor.__name__]) == 0
        assert capsys.readouterr().out == actor.compile("rir")


def test_checkpoint_keeps_vec_state_and_refuses_another_length(tmp_path) -> None:
    """Regression: the checkpoint named a Vec[u32, 256] field 'u32', so a class whose field was
    a Vec of another length (or a scalar) passed the layout check."""
    path = tmp_path / "h.rkc"
    with rk.ActorSystem(backend="cpu") as system:
        ref = system.spawn(Histogrammer)
        ref.ask(Samples(values=np.arange(16, dtype=np.float32), n=16), timeout=10.0)
        ref.checkpoint(path)
        before = ref.state
    with rk.ActorSystem(backend="cpu") as system:
        [copy] = system.restore(path)
        np.testing.assert_array_equal(copy.state["bins"], before["bins"])
        with pytest.raises(durability.CheckpointError, match=r"bins: Vec\[u32, 256\].*bins: Vec\[u32, 128\]"):
            system.restore(path, types={"Histogrammer": ShorterBins})


def test_handlers_loop_over_vec_fields() -> None:
    with rk.ActorSystem(backend="cpu") as system:
        ref = system.spawn(Summer16)
        reply = ref.ask(Samples(values=np.arange(16, dtype=np.float32), n=16), timeout=10.0)
    assert reply == Sum(total=2.0 * 120 + 32.0)
