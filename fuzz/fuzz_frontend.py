"""Python frontend: kernel sources mutated from real kernels -> ``CompileError`` or verified IR.

The source text goes through ringc's static path (``frontends/static.py``):
it is parsed with ``ast`` and never executed, so a mutated file cannot do
anything but exercise the compiler.  Invalid Python is the input's fault, and
the static path reports it as a ``CompileError`` like every other user error;
so the contract is simply: every entry (kernel, func, or actor with its
message loop) either translates to a module that verifies and round-trips
through the RingIR text form, or raises ``CompileError``.  Any other
exception is a finding.

The custom mutator edits the syntax tree (operators, constants, names, types,
whole statements) so most mutants stay valid Python and reach the frontend's
type checks; one mutation in four is libFuzzer's byte-level one.
"""

from __future__ import annotations

import ast
import copy
import random

from fuzz.harness import Finding
from ringkernel.frontends.module import build_module
from ringkernel.frontends.static import scan_source
from ringkernel.ringir import verify
from ringkernel.ringir.diagnostics import CompileError
from ringkernel.ringir.parser import parse_module

SMOKE_RUNS = 400
MAX_LEN = 8192


def test_one_input(data: bytes) -> None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    try:
        scan = scan_source(text, "<fuzz>.py")
    except CompileError:
        return
    builds = [lambda e=entry: build_module([e]) for entry in scan.entries]
    builds += [actor.module for actor in getattr(scan, "actors", ())]
    for build in builds:
        try:
            module = build()
        except CompileError:
            continue
        verify(module)
        printed = str(module)
        if parse_module(printed, "<printed>") != module:
            raise Finding(f"the frontend's module does not round-trip through text:\n{printed}")


# --- the structure-aware mutator --------------------------------------------------------

_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.LShift,
           ast.RShift, ast.BitOr, ast.BitXor, ast.BitAnd, ast.MatMult)
_CMPOPS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Is, ast.In)
_UNARYOPS = (ast.USub, ast.UAdd, ast.Not, ast.Invert)
_CONSTANTS = (0, 1, -1, 2, 31, 32, 63, 64, 2**31 - 1, 2**31, 2**32, 2**63, 2**64, -(2**63) - 1,
              10**400, 0.0, -0.0, 0.5, 1e308, 1e-320, float("inf"), True, False, None, "s", b"b",
              1j, ...)
_NAMES = ("rk.global_id", "rk.thread_id", "rk.block_id", "rk.block_dim", "rk.grid_dim",
          "rk.shared_array", "rk.barrier", "rk.atomic_add", "rk.atomic_cas", "rk.atomic_min",
          "rk.rsqrt", "rk.fma", "math.sqrt", "math.floor", "math.pow", "math.tanh", "math.pi",
          "f32", "f64", "i32", "u32", "i64", "u64", "rk.bool_", "int", "float", "bool", "range",
          "abs", "min", "max", "len", "print", "Array", "Array[f32]", "Array[i32]", "np.float32",
          "np.int64", "np.zeros", "rk", "math", "None", "x", "i", "n", "u8", "i16", "f16",
          "Array[u8]", "Array[f16]", "np.uint8", "np.float16", "rk.TypeVar", "T", "Array[T]")


def _pick(rng: random.Random, items: list):
    return items[rng.randrange(len(items))] if items else None


def _expr(source: str) -> ast.expr:
    return ast.parse(source, mode="eval").body


def _mutate_tree(tree: ast.Module, rng: random.Random) -> None:
    nodes = list(ast.walk(tree))
    kind = rng.randrange(9)
    if kind == 0:
        node = _pick(rng, [n for n in nodes if isinstance(n, (ast.BinOp, ast.AugAssign))])
        if node is not None:
            node.op = rng.choice(_BINOPS)()
    elif kind == 1:
        node = _pick(rng, [n for n in nodes if isinstance(n, ast.Compare)])
        if node is not None:
            node.ops = [rng.choice(_CMPOPS)() for _ in node.ops]
    elif kind == 2:
        node = _pick(rng, [n for n in nodes if isinstance(n, ast.Constant)])
        if node is not None:
            node.value = rng.choice(_CONSTANTS)
    elif kind == 3:
        node = _pick(rng, [n for n in nodes if isinstance(n, ast.UnaryOp)])
        if node is not None:
            node.op = rng.choice(_UNARYOPS)()
    elif kind in (4, 5):
        _replace_expression(tree, nodes, rng)
    else:
        _mutate_statements(nodes, rng)


def _replace_expression(tree: ast.Module, nodes: list, rng: random.Random) -> None:
    """Replaces one expression by a name from the vocabulary or another expression of the file."""
    exprs = [n for n in nodes if isinstance(n, ast.expr) and not isinstance(n, ast.expr_context)]
    parents = [(p, f) for p in nodes for f, v in ast.iter_fields(p) if isinstance(v, ast.expr)]
    if not parents:
        return
    parent, name = rng.choice(parents)
    if rng.randrange(2) and exprs:
        replacement = copy.deepcopy(rng.choice(exprs))  # a copy: an ancestor would make a cycle
    else:
        replacement = _expr(rng.choice(_NAMES))
    setattr(parent, name, replacement)


def _mutate_statements(nodes: list, rng: random.Random) -> None:
    """Deletes, duplicates, swaps or wraps a statement in some body."""
    bodies = [getattr(n, f) for n in nodes for f in ("body", "orelse")
              if isinstance(getattr(n, f, None), list) and getattr(n, f)
              and isinstance(getattr(n, f)[0], ast.stmt)]
    body = _pick(rng, bodies)
    if body is None:
        return
    i = rng.randrange(len(body))
    action = rng.randrange(5)
    if action == 0 and len(body) > 1:
        del body[i]
    elif action == 1:
        body.insert(rng.randrange(len(body) + 1), copy.deepcopy(body[i]))
    elif action == 2:
        j = rng.randrange(len(body))
        body[i], body[j] = body[j], body[i]
    elif action == 3:
        wrapper = rng.choice(("if i < n:\n    pass", "for k in range(4):\n    pass",
                              "while x > 0:\n    pass", "if True:\n    pass\nelse:\n    pass"))
        stmt = ast.parse(wrapper).body[0]
        stmt.body = [body[i]]
        body[i] = stmt
    else:
        body.insert(i, ast.parse(rng.choice(
            ("break", "continue", "return", "return 1", "x = 1", "x += 1.0", "y: f32 = 0.0",
             "rk.barrier()", "s = rk.shared_array(f32, 64)", "pass", "del x", "global n",
             "a, b = 1, 2", "x[0] = 1", "assert x", "print(x)", "lambda: 0", "import os",
             "with x:\n    pass", "try:\n    pass\nexcept Exception:\n    pass")
        )).body[0])


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    """Mutates the syntax tree when the input parses, else libFuzzer's byte mutation."""
    import atheris

    rng = random.Random(seed)
    if rng.randrange(4) == 0:
        return atheris.Mutate(data, max_size)
    try:
        tree = ast.parse(data.decode("utf-8"))
        for _ in range(1 + rng.randrange(3)):
            _mutate_tree(tree, rng)
        out = ast.unparse(ast.fix_missing_locations(tree)).encode("utf-8")
    except Exception:  # the input is not Python, or unparse met an odd tree
        return atheris.Mutate(data, max_size)
    return out[:max_size]
