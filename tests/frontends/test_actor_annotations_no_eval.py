"""String annotations of messages and actors resolve without evaluating anything."""

from __future__ import annotations

import pytest

import ringkernel as rk
from ringkernel import f32, u32  # noqa: F401  (names the string annotations use)

CALLS: list[str] = []


def side_effect() -> type:
    CALLS.append("ran")
    return float


def test_string_annotations_resolve():
    @rk.message
    class Reading:
        value: f32
        count: u32

    msg = Reading(value=1.5, count=3)
    assert (msg.value, msg.count) == (1.5, 3)
    with pytest.raises((TypeError, ValueError, OverflowError)):
        Reading(value=1.0, count=-1)  # count really is a u32, resolved from the string


def test_an_annotation_with_a_call_is_never_run():
    with pytest.raises(rk.CompileError):

        @rk.message
        class Bad:
            value: side_effect()  # a string under `from __future__ import annotations`

    assert CALLS == []
