"""Finding a live kernel's source survives a file that Python's parser cannot take whole."""

from __future__ import annotations

import ast

import pytest

import ringkernel as rk
from ringkernel import Array, CompileError, f32
from ringkernel.frontends import source


@rk.kernel
def fill(x: Array[f32]):
    x[rk.global_id(0)] = 1.0


@pytest.mark.parametrize("failure", [RecursionError, MemoryError])
def test_whole_file_too_deep_falls_back_to_the_function_block(monkeypatch, failure):
    """A deeply nested expression elsewhere in the file must not make the kernel unreadable."""
    real_parse = ast.parse
    whole = "".join(source.linecache.getlines(__file__))

    def parse(text, *args, **kwargs):
        if text == whole:
            raise failure("maximum recursion depth exceeded during ast construction")
        return real_parse(text, *args, **kwargs)

    monkeypatch.setattr(source.ast, "parse", parse)
    found = source.source_of(fill.py_func)
    assert found.node.name == "fill" and found.node.lineno == 15


def test_unreadable_block_is_a_compile_error(monkeypatch):
    def parse(text, *args, **kwargs):
        raise RecursionError("too deep")

    monkeypatch.setattr(source.ast, "parse", parse)
    monkeypatch.setattr(source.inspect, "getsourcelines", lambda fn: (_ for _ in ()).throw(OSError()))
    with pytest.raises(CompileError, match="cannot read the source of 'fill'"):
        source.source_of(fill.py_func)
