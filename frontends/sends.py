"""Sends from actor handlers: ports, ``self.send_to``, ``self.schedule``, ``self.index``.

A handler (or a helper it calls) of an actor that *talks* (``ActorInfo.talks``)
takes two more params, ``%sends`` (the instance's ``sends`` queue array) and
``%rk.qbase`` (the first word of the instance's ``sends`` queue in it).  The
loop writes the running handler's *send context* into that queue's header
before the handler (``docs/layout.md``, "Sends"): how many slots it may stage
(``room``), the clock, the actor id, its index and group size.  A send here
reserves a slot with an atomic add on ``staged`` (so the lanes of a
cooperative handler can all send), writes the envelope and payload after the
queue's ``tail`` without publishing it, or counts the send as ``rejected``
when no slot is left.  The loop publishes the staged slots once the handler
has returned (or discards them when it aborted).  This module only builds
the RingIR of one send; the rules of what may be sent live in
:mod:`.actors`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ringkernel.ringir import I32, U32, FunctionBuilder, LocalVar, Value
from ringkernel.ringir import layout as L

# params a talking actor's handlers and helpers take after their own leading ones
SEND_PARAMS = ("sends", "rk.qbase")
SELF_SENDS = ("send_to", "schedule")  # methods of ``self`` that send
SELF_VALUES = ("index", "group_size")  # read-only i32 values of ``self``


@dataclass(frozen=True)
class PortInfo:
    """An ``out: rk.Port[Msg]`` attribute: its number (declaration order) and message."""

    name: str
    number: int
    message: Any  # MessageInfo


def uses_messaging(nodes: Iterable[ast.AST], ports: Iterable[str]) -> tuple[bool, bool]:
    """(talks, routes_self) of methods whose syntax trees are ``nodes``.

    ``talks``: some method reads ``self.index``/``self.group_size`` or sends
    (on a port, ``send_to``, ``schedule``): its handlers need the send params.
    ``routes_self``: some method uses ``send_to`` or ``schedule`` (messages come
    back to its own group, so its ``routed`` queue is sized at spawn).
    """
    names = {*SELF_SENDS, *SELF_VALUES, *ports}
    talks = routes_self = False
    for root in nodes:
        for node in ast.walk(root):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "self"
                and node.attr in names
            ):
                talks = True
                routes_self = routes_self or node.attr in SELF_SENDS
    return talks, routes_self


class SendBuilder:
    """Builds the RingIR of sends and of ``self.index``/``self.group_size`` in one method."""

    def __init__(self, b: FunctionBuilder, sends: Value, qbase: Value, temp: Any, store_field: Any) -> None:
        """``temp(prefix, ty)`` makes a fresh local; ``store_field(b, words, index, value)``
        writes a field."""
        self.b, self.sends, self.qbase, self.temp, self.store_field = b, sends, qbase, temp, store_field

    def c(self, value: int) -> Value:
        return self.b.const(value, U32)

    def word(self, index: int | Value) -> Value:
        return self.b.binary("add", self.qbase, self.c(index) if isinstance(index, int) else index)

    def header(self, index: int) -> Value:
        return self.b.load(self.sends, self.word(index))

    def context_i32(self, name: str) -> Value:
        """``self.index`` or ``self.group_size``: words of the loop's send context, as i32."""
        word = L.Q_INDEX if name == "index" else L.Q_GROUP_SIZE
        return self.b.bitcast(self.header(word), I32)

    def send(self, type_id: int, kind: int, index: Value, sequence: Value | None,
             payload: list[tuple[int, Value]]) -> None:
        """One send: a slot reserved and written (not yet published), or counted as rejected.

        ``index`` (u32) goes into the ``target`` word below ``kind``; ``sequence``
        None means the send's position in the ``sends`` stream.
        """
        b = self.b
        r = b.atomic("add", self.sends, self.word(L.Q_STAGED), self.c(1))
        with b.if_(b.compare("lt", r, self.header(L.Q_ROOM))):
            pos = b.binary("add", self.header(L.Q_TAIL), r)
            slot = b.binary("mul", b.binary("and", pos, self.header(L.Q_MASK)), self.header(L.Q_SLOT_WORDS))
            base = self.word(b.binary("add", slot, self.c(L.QUEUE_HEADER_WORDS)))
            target = b.binary(
                "or", self.c(kind << L.TARGET_KIND_SHIFT), b.binary("and", index, self.c(L.TARGET_INDEX_MASK))
            )
            if sequence is None:
                sequence = b.binary("add", self.header(L.Q_ENQUEUED), r)
            lo, hi = self.stamp(r)
            for offset, value in (
                (L.ENV_TYPE_ID, self.c(type_id)),
                (L.ENV_SOURCE, self.header(L.Q_SOURCE)),
                (L.ENV_TARGET, target),
                (L.ENV_SEQUENCE, sequence),
                (L.ENV_HLC_LO, lo),
                (L.ENV_HLC_HI, hi),
            ):
                b.store(self.sends, b.binary("add", base, self.c(offset)), value)
            for word, value in payload:
                at = b.binary("add", base, self.c(L.ENVELOPE_WORDS + word))
                self.store_field(b, self.sends, at, value)
        with b.else_():
            b.atomic("add", self.sends, self.word(L.Q_REJECTED), self.c(1))

    def stamp(self, r: Value) -> tuple[Value, Value]:
        """The clock at the handler's start plus ``r + 1`` (send r's tick), saturating at 2**64 - 1."""
        b = self.b
        start_lo, start_hi = self.header(L.Q_SEND_HLC_LO), self.header(L.Q_SEND_HLC_HI)
        lo = b.binary("add", start_lo, b.binary("add", r, self.c(1)))
        carry = b.cast(b.compare("lt", lo, start_lo), U32)
        hi = b.binary("add", start_hi, carry)
        out_lo: LocalVar = self.temp("rk.send_lo", U32)
        out_hi: LocalVar = self.temp("rk.send_hi", U32)
        b.store_var(out_lo, lo)
        b.store_var(out_hi, hi)
        with b.if_(b.compare("lt", hi, start_hi)):
            b.store_var(out_lo, self.c(0xFFFFFFFF))
            b.store_var(out_hi, self.c(0xFFFFFFFF))
        return b.load_var(out_lo), b.load_var(out_hi)

    def in_group(self, index: Value) -> Value:
        """Whether ``index`` (u32: a negative i32 is huge) names an instance of the group;
        counts a ``bad_target`` when it does not."""
        b = self.b
        ok = b.compare("lt", index, self.header(L.Q_GROUP_SIZE))
        with b.if_(b.unary("not", ok)):
            b.atomic("add", self.sends, self.word(L.Q_BAD_TARGET), self.c(1))
        return ok


__all__ = ["PortInfo", "SendBuilder", "SEND_PARAMS", "SELF_SENDS", "SELF_VALUES", "uses_messaging"]
