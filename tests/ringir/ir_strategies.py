"""Hypothesis strategies that generate random *valid* RingIR modules.

``modules()`` is the fuzz generator (``fuzz/ir_generator.py``) with its
choices drawn by hypothesis instead of libFuzzer's bytes: one list of what a
module can contain (statements, ops, types, hostile names) serves both, so
they cannot drift.  Every module it yields passes ``verify``.  Unlike a fuzz
input it may hold no kernel at all (passes must keep every func then).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from fuzz.ir_generator import FULL, Draw, generate_module  # noqa: E402
from ringkernel.ringir import Module  # noqa: E402

T = TypeVar("T")

# Everything the IR can hold, no kernel required (targets need one, the IR does not).
IR = dataclasses.replace(FULL, min_kernels=0)


class HypothesisDraw(Draw):
    """The generator's choices, drawn by hypothesis (so failures shrink)."""

    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any]) -> None:
        self.draw = draw

    def int(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def bool(self) -> bool:
        return self.draw(st.booleans())

    def pick(self, options: Sequence[T]) -> T:
        return self.draw(st.sampled_from(options))

    def float(self) -> float:
        return self.draw(st.floats())


@st.composite
def modules(draw: Any, max_funcs: int = 3, max_kernels: int = 2, max_depth: int = 3) -> Module:
    """A random valid module: structs, funcs (each calling only earlier ones), kernels."""
    profile = dataclasses.replace(IR, max_funcs=max_funcs, max_kernels=max_kernels, max_depth=max_depth)
    return generate_module(HypothesisDraw(draw), profile)
