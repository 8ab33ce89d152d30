"""Nesting limits of kernel source, checked before translation so it never hits ``RecursionError``.

The translator recurses once (a few Python frames) per nested statement and
per nested expression.  ``a + a + ... + a`` with thousands of terms, or a
deep tower of parentheses, would exhaust Python's stack inside the compiler;
this walk is iterative and stops at the first node past a limit with a
``CompileError`` pointing at it.
"""

from __future__ import annotations

import ast

from ringkernel.frontends.source import FunctionSource
from ringkernel.ringir.limits import MAX_NESTING

# Nested expressions (operators, calls, subscripts, ...) within one statement.
# Python's own parser allows 200 nested parentheses; sums of many terms nest
# one level per term.
MAX_EXPRESSION_DEPTH = 100


def check_nesting(source: FunctionSource) -> None:
    """Raises ``CompileError`` at the first statement or expression nested past its limit."""
    stack: list[tuple[ast.AST, int, int]] = [(stmt, 0, 0) for stmt in reversed(source.node.body)]
    while stack:
        node, blocks, depth = stack.pop()
        if isinstance(node, ast.stmt) and blocks > MAX_NESTING:
            raise source.error(
                node, f"statements nested too deeply (limit {MAX_NESTING} levels); "
                "move inner parts into an @rk.func or flatten elif chains",
            )
        if isinstance(node, ast.expr) and depth > MAX_EXPRESSION_DEPTH:
            raise source.error(
                node, f"expression nested too deeply (limit {MAX_EXPRESSION_DEPTH} levels); "
                "split it with temporary variables",
            )
        for child in reversed(list(ast.iter_child_nodes(node))):
            if isinstance(child, ast.stmt):
                stack.append((child, blocks + 1, 0))
            elif isinstance(child, ast.expr):
                stack.append((child, blocks, depth + 1))
            else:  # arguments, keywords, comprehensions, handlers: containers, no level
                stack.append((child, blocks, depth))
