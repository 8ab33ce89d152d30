"""The kernel language's builtins: one :class:`Builtin` entry per builtin, as Warp's ``add_builtin``.

An entry carries everything about a builtin that is not target syntax: the
name kernels call it by, its arity, the typing rule that checks and types a
call (a ``call_<rule>`` method of the translator, with the rules themselves in
:mod:`ringkernel.frontends.semantic`), the RingIR node (and op) it lowers to,
and the one-line doc that docs/dsl.md lists.  ``rk.<name>`` stubs
(:mod:`ringkernel.frontends.dsl`) are made from the entries marked ``stub``;
Python's own objects (``math.sqrt``, ``np.sqrt``, ``abs``) name an entry
through ``objects``.  How each target spells the IR node is the emitters'
business (their templates and capability tables), not this table's.
"""

from __future__ import annotations

import builtins
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ringkernel.ringir.nodes import (
    AtomicCAS,
    AtomicRMW,
    Barrier,
    Binary,
    Bitcast,
    Cast,
    GridSync,
    LocalArray,
    MathCall,
    SharedArray,
    Stmt,
    Subgroup,
    SyncWarp,
    ThreadIndex,
)

Arity = int | tuple[int, int | None]  # exactly n, or (at least, at most / None: no limit)


@dataclass(frozen=True)
class Builtin:
    """One builtin of the kernel language."""

    name: str
    arity: Arity
    rule: str  # the translator's handler: FunctionTranslator.call_<rule>(entry, node)
    ir: type[Stmt] | None  # the RingIR node it lowers to (docs/ir.md); None when refused
    doc: str
    spelling: str  # how docs/dsl.md writes a call
    op: str | None = None  # the node's op (MathCall "sqrt", AtomicRMW "add", Cast "i32")
    objects: tuple[Any, ...] = ()  # Python objects that name it in kernels
    stub: bool = False  # ringkernel exports rk.<name>, a dsl.Intrinsic

    @property
    def lowers_to(self) -> str:
        """The IR node and op, as the docs list it (``Math(sqrt)``)."""
        if self.ir is None:
            return "refused" if self.rule == "refused" else "array extents"
        return f"{self.ir.__name__}({self.op})" if self.op else self.ir.__name__


def _thread_index(name: str, doc: str) -> Builtin:
    return Builtin(name, (0, 1), "thread_index", ThreadIndex, doc, f"rk.{name}(d)", op=name, stub=True)


def _math(name: str, doc: str, arity: int = 1, *objects: Any) -> Builtin:
    objects = objects or (getattr(math, name), getattr(np, name))
    spelling = f"math.{name}(x), np.{name}(x)" if arity == 1 else f"math.{name}(x, y)"
    return Builtin(name, arity, "math", MathCall, doc, spelling, op=name, objects=objects)


def _bits(name: str, doc: str) -> Builtin:
    """An integer bit count: a MathCall whose result keeps the argument's integer type."""
    return Builtin(name, 1, "math", MathCall, doc, f"rk.{name}(x)", op=name, stub=True)


def _present(module: Any, name: str) -> tuple[Any, ...]:
    """``module.name`` if this Python has it (``math.cbrt`` is 3.11+), else nothing."""
    obj = getattr(module, name, None)
    return () if obj is None else (obj,)


def _subgroup(name: str, arity: int, op: str, doc: str) -> Builtin:
    args = {0: "", 1: "p", 2: "v, lane" if name == "shfl" else "v, d" if name != "shfl_xor" else "v, m"}
    return Builtin(name, arity, "subgroup", Subgroup, doc, f"rk.{name}({args[arity]})", op=op, stub=True)


def _barrier_vote(name: str, op: str, doc: str) -> Builtin:
    """A block-wide vote: three barriers around a shared counter (frontends/python.py)."""
    return Builtin(name, 1, "barrier_vote", Barrier, doc, f"rk.{name}(p)", op=op, stub=True)


def _atomic(name: str, op: str, doc: str) -> Builtin:
    return Builtin(name, 3, "atomic", AtomicRMW, doc, f"rk.{name}(a, i, v)", op=op, stub=True)


def _cast(obj: type, ty: str) -> Builtin:
    name = obj.__name__
    doc = f"{name}(x): x converted to {ty}, as {ty}(x)."
    return Builtin(name, 1, "cast", Cast, doc, f"{name}(x)", op=ty, objects=(obj,))


BUILTINS: tuple[Builtin, ...] = (
    _thread_index("thread_id", "Index of the thread within its block along dim 0..2."),
    _thread_index("block_id", "Index of the block within the grid along dim 0..2."),
    _thread_index("block_dim", "Threads per block along dim 0..2."),
    _thread_index("grid_dim", "Blocks in the grid along dim 0..2."),
    _thread_index("global_id", "block_id(d) * block_dim(d) + thread_id(d)."),
    Builtin("shared_array", 2, "shared_array", SharedArray,
            "shared_array(T, n | (r, c)): a per-block array of n T's (or an r x c one).",
            "rk.shared_array(T, n)", stub=True),
    Builtin("dynamic_shared_array", 1, "dynamic_shared_array", SharedArray,
            "dynamic_shared_array(T): a per-block array of T sized per launch (dynamic_shared=N).",
            "rk.dynamic_shared_array(T)", stub=True),
    Builtin("local_array", 2, "local_array", LocalArray,
            "local_array(T, n | shape): a per-work-item (private) array.", "rk.local_array(T, n)", stub=True),
    Builtin("barrier", 0, "barrier", Barrier,
            "Waits for every thread of the block; orders shared memory.", "rk.barrier()", stub=True),
    Builtin("grid_sync", 0, "grid_sync", GridSync,
            "Waits for every thread of the whole grid; orders global memory (a cooperative launch: "
            "cuda and cpu only).", "rk.grid_sync()", stub=True),
    Builtin("rsqrt", 1, "math", MathCall, "1 / sqrt(x).", "rk.rsqrt(x)", op="rsqrt", stub=True),
    Builtin("fma", 3, "math", MathCall, "fma(a, b, c) = a * b + c with one rounding.", "rk.fma(a, b, c)",
            op="fma", stub=True),
    _atomic("atomic_add", "add", "atomic_add(a, i, v): a[i] += v atomically; returns the old a[i]."),
    _atomic("atomic_sub", "sub", "atomic_sub(a, i, v): a[i] -= v atomically; returns the old a[i]."),
    _atomic("atomic_min", "min", "atomic_min(a, i, v): a[i] = min(a[i], v); returns the old a[i]."),
    _atomic("atomic_max", "max", "atomic_max(a, i, v): a[i] = max(a[i], v); returns the old a[i]."),
    _atomic("atomic_and", "and", "atomic_and(a, i, v): a[i] &= v; returns the old a[i]."),
    _atomic("atomic_or", "or", "atomic_or(a, i, v): a[i] |= v; returns the old a[i]."),
    _atomic("atomic_xor", "xor", "atomic_xor(a, i, v): a[i] ^= v; returns the old a[i]."),
    _atomic("atomic_exchange", "exchange", "atomic_exchange(a, i, v): a[i] = v; returns the old a[i]."),
    _atomic("atomic_inc", "inc", "atomic_inc(a, i, limit): a[i] = 0 if a[i] >= limit else a[i] + 1 "
            "(CUDA's atomicInc, unsigned compare); returns the old a[i]."),
    _atomic("atomic_dec", "dec", "atomic_dec(a, i, limit): a[i] = limit if a[i] == 0 or a[i] > limit "
            "else a[i] - 1 (CUDA's atomicDec, unsigned compare); returns the old a[i]."),
    Builtin("atomic_cas", 4, "atomic", AtomicCAS,
            "atomic_cas(a, i, expected, desired): compare-and-swap; returns the old a[i].",
            "rk.atomic_cas(a, i, expected, desired)", stub=True),
    Builtin("bitcast", 2, "bitcast", Bitcast,
            "bitcast(v, T): the bits of v read as the same-sized scalar type T (f32 <-> u32/i32).",
            "rk.bitcast(v, T)", stub=True),
    _math("sqrt", "Square root."),
    _math("exp", "e ** x."),
    _math("log", "Natural logarithm."),
    _math("sin", "Sine (radians)."),
    _math("cos", "Cosine (radians)."),
    _math("tan", "Tangent (radians)."),
    _math("tanh", "Hyperbolic tangent."),
    _math("floor", "Largest integral value <= x, as a float."),
    _math("ceil", "Smallest integral value >= x, as a float."),
    _math("fabs", "Absolute value of a float."),
    _math("pow", "x ** y on floats.", 2, math.pow, np.power),
    Builtin("abs", 1, "abs", MathCall, "Absolute value; unsigned integers are their own.",
            "abs(x), np.abs(x)", op="abs", objects=(builtins.abs, np.abs)),
    Builtin("min", (2, None), "min_max", Binary, "The smallest of two or more values.", "min(a, b, ...)",
            op="min", objects=(builtins.min,)),
    Builtin("max", (2, None), "min_max", Binary, "The largest of two or more values.", "max(a, b, ...)",
            op="max", objects=(builtins.max,)),
    _math("atan2", "atan2(y, x) of the first argument y over the second x: the angle of (x, y), in radians.",
          2, math.atan2, np.arctan2),
    _math("hypot", "hypot(x, y): sqrt(x * x + y * y) without overflow.", 2, math.hypot, np.hypot),
    _math("copysign", "copysign(x, y): the magnitude of x with the sign of y.", 2, math.copysign,
          np.copysign),
    _math("erf", "The error function.", 1, math.erf),
    _math("erfc", "1 - erf(x), accurate for large x.", 1, math.erfc),
    _math("lgamma", "log(abs(gamma(x))).", 1, math.lgamma),
    _math("log1p", "log(1 + x), accurate for small x.", 1, math.log1p, np.log1p),
    _math("expm1", "exp(x) - 1, accurate for small x.", 1, math.expm1, np.expm1),
    _math("cbrt", "Cube root (negative for negative x).", 1, *_present(math, "cbrt"), np.cbrt),
    _math("isnan", "Whether x is a NaN (bool).", 1, math.isnan, np.isnan),
    _math("isinf", "Whether x is +inf or -inf (bool).", 1, math.isinf, np.isinf),
    _math("isfinite", "Whether x is neither infinite nor NaN (bool).", 1, math.isfinite, np.isfinite),
    _bits("popc", "popc(x): the number of set bits of an integer (CUDA __popc)."),
    _bits("clz", "clz(x): the number of leading zero bits of an integer (CUDA __clz)."),
    _bits("ffs", "ffs(x): the 1-based position of the lowest set bit, 0 for 0 (CUDA __ffs)."),
    _bits("brev", "brev(x): the bits of an integer in reverse order (CUDA __brev)."),
    Builtin("clamp", 3, "clamp", Binary, "clamp(v, lo, hi) = min(max(v, lo), hi), in their common type.",
            "rk.clamp(v, lo, hi)", stub=True),
    _subgroup("lane_id", 0, "lane_id", "The caller's lane in its subgroup (warp), 0 .. warp_size() - 1."),
    _subgroup("warp_size", 0, "size",
              "Lanes per subgroup: 32 on cuda and metal, the adapter's on wgpu, 1 on cpu."),
    _subgroup("shfl", 2, "shfl", "shfl(v, lane): v of lane (lane mod warp_size()) of the subgroup."),
    _subgroup("shfl_up", 2, "shfl_up", "shfl_up(v, d): v of lane_id() - d; lanes below d keep their own v."),
    _subgroup("shfl_down", 2, "shfl_down",
              "shfl_down(v, d): v of lane_id() + d; lanes past the end keep their own v."),
    _subgroup("shfl_xor", 2, "shfl_xor", "shfl_xor(v, m): v of lane lane_id() ^ m (own v beyond the end)."),
    _subgroup("ballot", 1, "ballot", "ballot(p): u32 with bit k set when p holds on lane k (lanes 0..31)."),
    _subgroup("vote_any", 1, "any", "vote_any(p): whether p holds on any lane of the subgroup."),
    _subgroup("vote_all", 1, "all", "vote_all(p): whether p holds on every lane of the subgroup."),
    Builtin("syncwarp", 0, "syncwarp", SyncWarp,
            "Waits for the lanes of the subgroup; orders their memory (CUDA __syncwarp).",
            "rk.syncwarp()", stub=True),
    _barrier_vote("barrier_count", "count", "barrier_count(p): a barrier that returns how many threads "
                  "of the block passed a true p (i32)."),
    _barrier_vote("barrier_and", "and", "barrier_and(p): a barrier that returns whether p holds on "
                  "every thread of the block."),
    _barrier_vote("barrier_or", "or", "barrier_or(p): a barrier that returns whether p holds on "
                  "any thread of the block."),
    _cast(builtins.int, "i32"),
    _cast(builtins.float, "f32"),
    _cast(builtins.bool, "bool"),
    Builtin("range", (1, 3), "refused", None, "Only as 'for i in range(...)' (a ForRange loop).",
            "range(start, stop, step)", op="range() can only be used as 'for i in range(...)'",
            objects=(builtins.range,)),
    Builtin("len", 1, "len", None, "The extent of an array's first dimension (i32), as a.shape[0].",
            "len(a)", objects=(builtins.len,)),
    Builtin("print", (0, None), "refused", None, "Refused: write values into an Array instead.", "print(...)",
            op="print() is not supported in kernels; write values into an Array", objects=(builtins.print,)),
)
"""Every builtin, in the order docs/dsl.md lists them.  A refused entry's ``op`` is its error."""

BY_NAME: dict[str, Builtin] = {b.name: b for b in BUILTINS if b.stub}
"""The ``rk.<name>`` builtins by name: a dsl.Intrinsic finds its entry here."""

_BY_OBJECT: dict[Any, Builtin] = {obj: b for b in BUILTINS for obj in b.objects}


def builtin_of(obj: Any) -> Builtin | None:
    """The entry a Python object (``math.sqrt``, ``abs``) names in kernels, or None."""
    try:
        return _BY_OBJECT.get(obj)
    except TypeError:  # unhashable: no builtin
        return None


DOC_BEGIN = "<!-- builtins: generated from frontends/builtins.py by tools/gen_builtin_docs.py -->"
DOC_END = "<!-- builtins: end -->"


def docs_table() -> str:
    """docs/dsl.md's builtin list, between :data:`DOC_BEGIN` and :data:`DOC_END`."""
    rows = [DOC_BEGIN, "", "| call | lowers to | meaning |", "|---|---|---|"]
    for b in BUILTINS:
        doc = b.doc.replace("|", "\\|")  # a table cell: a[i] |= v
        rows.append(f"| `{b.spelling}` | {b.lowers_to} | {doc} |")
    return "\n".join([*rows, "", DOC_END])


__all__ = ["Builtin", "BUILTINS", "BY_NAME", "builtin_of", "docs_table", "DOC_BEGIN", "DOC_END"]
