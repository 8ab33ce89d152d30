"""Atomic-array propagation over calls, and the shared jinja2 settings."""

from __future__ import annotations

import jinja2
import pytest

from ringkernel.lowering.common import atomic_arrays, make_environment
from ringkernel.ringir import I32, VOID, ArrayType, FunctionBuilder, Module


def test_atomic_use_in_a_callee_makes_the_callers_array_atomic() -> None:
    helper = FunctionBuilder("bump", "func", [("cells", ArrayType(I32))])
    (cells,) = helper.params
    helper.atomic("add", cells, helper.const(0, I32), helper.const(1, I32))
    kernel = FunctionBuilder("k", "kernel", [("a", ArrayType(I32)), ("b", ArrayType(I32))])
    a, b = kernel.params
    kernel.call("bump", (a,), VOID)
    kernel.store(b, kernel.const(0, I32), kernel.const(2, I32))
    atomic = atomic_arrays(Module((helper.finish(), kernel.finish())))
    assert atomic == {("bump", "cells"), ("k", "a")}


def test_environment_fails_loudly_and_keeps_source_text() -> None:
    env = make_environment(jinja2.DictLoader({
        "t.j2": "{% if x %}\n  a < b && {{ x }}\n{% endif %}\n",
        "bad.j2": "{{ missing }}",
        "boom.j2": "{{ raise('no such form') }}",
    }))
    assert env.get_template("t.j2").render(x="c") == "  a < b && c\n"
    with pytest.raises(jinja2.UndefinedError):
        env.get_template("bad.j2").render()
    with pytest.raises(AssertionError, match="no such form"):
        env.get_template("boom.j2").render()
