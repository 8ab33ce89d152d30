"""The IR generator (fuzzing and the hypothesis strategy) reaches every node, op and type.

A statement class, op or type it never draws would go untested by both the
fuzz targets and the RingIR property tests; adding one to ``ringir/nodes.py``
without teaching ``fuzz/ir_generator.py`` fails here.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from fuzz.ir_generator import FULL, Draw, generate_module  # noqa: E402
from ringkernel.ringir import nodes, verify  # noqa: E402
from ringkernel.ringir.nodes import (  # noqa: E402
    AtomicRMW,
    Binary,
    Compare,
    Const,
    MathCall,
    Stmt,
    ThreadIndex,
    Unary,
    atomic_applies,
    walk,
)
from ringkernel.ringir.types import SCALAR_TYPES  # noqa: E402


class _Random:
    """A seeded stand-in for atheris' FuzzedDataProvider."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def ConsumeIntInRange(self, lo: int, hi: int) -> int:  # noqa: N802 (atheris' name)
        return self.rng.randint(lo, hi)

    def ConsumeBool(self) -> bool:  # noqa: N802
        return self.rng.random() < 0.5

    def ConsumeRegularFloat(self) -> float:  # noqa: N802
        return self.rng.uniform(-1e6, 1e6)


def _statements() -> list[Stmt]:
    found: list[Stmt] = []
    for seed in range(500):
        module = verify(generate_module(Draw(_Random(seed)), FULL))
        for fn in module.functions:
            found.extend(walk(fn.body))
    return found


STMTS = _statements()


def test_every_statement_class_is_generated() -> None:
    classes = {cls for cls in vars(nodes).values()
               if isinstance(cls, type) and issubclass(cls, Stmt) and cls is not Stmt}
    assert classes - {type(s) for s in STMTS} == set()


def test_every_op_is_generated() -> None:
    seen = {(type(s), getattr(s, "op", None) or getattr(s, "func", None) or getattr(s, "kind", None))
            for s in STMTS if isinstance(s, (Unary, Binary, Compare, MathCall, ThreadIndex))}
    wanted = {(Unary, op) for op in nodes.UNARY_OPS} | {(Binary, op) for op in nodes.BINARY_OPS}
    wanted |= {(Compare, op) for op in nodes.COMPARE_OPS} | {(MathCall, f) for f in nodes.MATH_FUNCS}
    wanted |= {(ThreadIndex, kind) for kind in nodes.THREAD_INDEX_KINDS}
    assert wanted - seen == set()


def test_every_atomic_op_on_every_element_kind() -> None:
    seen = {(s.op, s.result.type.kind) for s in STMTS if isinstance(s, AtomicRMW)}
    wanted = {(op, ty.kind) for ty in SCALAR_TYPES.values()
              for op in nodes.ATOMIC_OPS + nodes.FLOAT_ATOMIC_OPS if atomic_applies(op, ty)}
    assert ("min", "float") in wanted and ("max", "float") in wanted
    assert wanted - seen == set()


def test_every_scalar_type_is_generated() -> None:
    seen = {s.result.type.name for s in STMTS if isinstance(s, Const)}
    assert set(SCALAR_TYPES) - seen == set()
