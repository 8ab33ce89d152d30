"""Defects the merged branch's fuzzers found where issue 14's frontend code meets the rest."""

from __future__ import annotations

import textwrap

import pytest

from ringkernel.frontends.module import build_module
from ringkernel.frontends.static import scan_source
from ringkernel.ringir.diagnostics import CompileError


def test_a_table_literal_that_overflows_its_dtype_is_a_located_error_in_ringc() -> None:
    """The libFuzzer frontend target found an OverflowError escaping ringc's static scan."""
    source = textwrap.dedent("""\
        import numpy as np
        import ringkernel as rk
        from ringkernel import Array, i32
        BIG = np.array([1180591620717411303424, 1], dtype=np.int32)
        @rk.kernel
        def k(out: Array[i32]):
            out[0] = BIG[0]
        """)
    scan = scan_source(source, "k.py")
    assert not scan.errors
    with pytest.raises(CompileError, match="cannot know the value of 'BIG'") as info:
        build_module([scan.get("k")])
    assert (info.value.line, info.value.col) == (7, 14)
