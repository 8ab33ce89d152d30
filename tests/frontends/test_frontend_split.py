"""The frontend split by job: the shared constant evaluator, the scanner's handed-in context."""

from __future__ import annotations

import ast
import textwrap

import pytest

import ringkernel
from ringkernel.frontends import consteval
from ringkernel.frontends.static import ConstantEvaluator, ScanContext, scan_source


@pytest.mark.parametrize("expr", ["2 ** 1000000000", "1 << 100000", "(-3) ** 5000"])
def test_one_size_guard_for_both_folders(expr):
    node = ast.parse(expr, mode="eval").body
    a, b = ast.literal_eval(ast.unparse(node.left)), ast.literal_eval(ast.unparse(node.right))
    assert consteval.too_large(node.op, a, b)
    with pytest.raises(consteval.ConstantTooLarge):
        consteval.fold_binary(node.op, a, b)
    with pytest.raises(consteval.NotConstant, match="too large"):
        ConstantEvaluator({}).evaluate(node)


def test_static_reader_folds_with_the_shared_table():
    import ringkernel.frontends.static as static

    assert not hasattr(static.ConstantEvaluator, "_BINARY")
    assert issubclass(static.ConstantEvaluator, consteval.ConstantEvaluator)


def test_the_scanner_recognizes_the_decorators_it_is_given():
    """The facade hands in the decorators; an object it did not name is not one."""
    text = textwrap.dedent("""\
        import ringkernel as rk
        from ringkernel import Array, f32

        @rk.kernel
        def k(x: Array[f32]):
            x[0] = 1.0
        """)
    found = scan_source(text, "k.py", ScanContext.from_facade(ringkernel)).entries
    assert [e.__name__ for e in found] == ["k"]
    only_funcs = ScanContext({id(ringkernel.func): "func"}, ringkernel.message)
    assert scan_source(text, "k.py", only_funcs).entries == []


def test_static_reader_imports_no_facade():
    import ringkernel.frontends.static as static

    tree = ast.parse(open(static.__file__, encoding="utf-8").read())
    imported = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ] + [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert "ringkernel" not in imported
