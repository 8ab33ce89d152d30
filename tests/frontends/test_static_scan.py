"""The static reader behind ringc: decorators under any alias, constants, runtime-only names."""

from __future__ import annotations

import ast
import math
import textwrap

import numpy as np
import pytest

import ringkernel
from ringkernel import CompileError
from ringkernel.frontends import dsl
from ringkernel.frontends.module import build_module
from ringkernel.frontends.static import (
    ConstantEvaluator,
    NotConstant,
    RuntimeOnly,
    scan_source,
    split_lines,
)


def scan(text: str, filename: str = "k.py"):
    return scan_source(textwrap.dedent(text), filename)


def build(text: str, name: str):
    result = scan(text)
    assert not result.errors, result.errors
    return build_module([result.get(name)])


def error_of(text: str, name: str) -> CompileError:
    with pytest.raises(CompileError) as info:
        build(text, name)
    return info.value


HEADER = """\
import math
import numpy as np
import ringkernel as rk
from ringkernel import Array, f32, i32
"""


# --- imports and aliases ------------------------------------------------------------------------


def test_imports_bind_static_tables_of_the_real_objects():
    result = scan("""\
        import math
        import numpy as np
        import ringkernel
        import ringkernel as rk
        import ringkernel.frontends.dsl
        import ringkernel.frontends.dsl as d
        from math import sqrt as root
        from numpy import float32
        from ringkernel import kernel as k, f32
        from ringkernel.frontends import dsl
        """)
    scope = result.scope
    assert scope["math"].sqrt is math.sqrt and scope["np"].float32 is np.float32
    assert scope["root"] is math.sqrt
    assert scope["ringkernel"] is scope["rk"] and scope["rk"].kernel is ringkernel.kernel
    assert scope["d"] is scope["dsl"] and scope["d"].global_id is dsl.global_id
    assert scope["ringkernel"].frontends.dsl is scope["d"]
    assert scope["float32"] is np.float32
    assert scope["k"] is ringkernel.kernel and scope["f32"] is ringkernel.f32


def test_other_imports_are_runtime_only():
    result = scan("""\
        import os
        import ringkernel_evil as rk
        from os import path
        from . import sibling
        from ringkernel import does_not_exist
        """)
    for name in ("os", "rk", "path", "sibling", "does_not_exist"):
        assert isinstance(result.scope[name], RuntimeOnly), name
    assert "has no 'does_not_exist'" in result.scope["does_not_exist"].why
    assert "only follows imports of ringkernel, math and numpy" in result.scope["path"].why


def test_star_import_of_ringkernel():
    module = build("""\
        from ringkernel import *

        @kernel
        def k(x: Array[f32]):
            x[global_id(0)] = 1.0
        """, "k")
    assert module.kernels[0].name == "k"


def test_star_import_from_elsewhere_is_named_in_the_error():
    error = error_of("""\
        from ringkernel import *
        from helpers import *

        @kernel
        def k(x: Array[f32]):
            x[global_id(0)] = helper_constant
        """, "k")
    assert "'helper_constant' is not defined in this file" in error.message
    assert "from helpers import *' (line 2)" in error.message
    assert (error.line, error.col) == (6, 23)


def test_decorator_found_through_any_alias():
    result = scan("""\
        import ringkernel as rk
        import ringkernel.kernels as kmod
        from ringkernel import func as device
        K = rk.kernel

        @rk.kernel
        def a(): pass

        @kmod.kernel
        def b(): pass

        @device
        def c() -> None: pass

        @K
        def d(): pass

        def plain(): pass

        @staticmethod
        def other(): pass
        """)
    assert [(e.__name__, e.ringkernel_kind) for e in result.entries] == [
        ("a", "kernel"), ("b", "kernel"), ("c", "func"), ("d", "kernel")
    ]


def test_aliases_of_known_objects():
    module = build(HEADER + textwrap.dedent("""\
        K = rk.kernel
        Vec = Array[f32]
        root = math.sqrt
        gid = rk.global_id
        Real = rk.f32

        @K
        def k(x: Vec):
            x[gid(0)] = root(Real(2.0))
        """), "k")
    assert str(module.kernels[0].params[0].type) == "array<f32, global>"
    assert "sqrt" in str(module)


def test_nested_definitions_are_not_found():
    result = scan("""\
        import ringkernel as rk

        def factory():
            @rk.kernel
            def inner(): pass
            return inner

        class Holder:
            @rk.kernel
            def method(): pass
        """)
    assert result.entries == []


def test_outer_decorators_are_ignored_inner_ones_are_errors():
    result = scan("""\
        import ringkernel as rk
        from registry import register

        @register(grid=4)
        @rk.kernel
        def fine(): pass

        @rk.kernel
        @register
        def wrapped(): pass
        """)
    assert [e.__name__ for e in result.entries] == ["fine", "wrapped"]
    (error,) = result.errors
    assert (error.line, error.col) == (9, 2)
    assert "ringc cannot apply 'register' without running the file" in error.message


def test_decorator_on_the_wrong_kind_of_definition():
    result = scan("""\
        import ringkernel as rk

        @rk.kernel
        class NotAFunction:
            pass

        @rk.func
        async def not_sync(): pass
        """)
    messages = [e.message for e in result.errors]
    assert messages == [
        "@rk.kernel applies to functions, not classes",
        "async functions cannot be @rk.func functions",
    ]


def test_later_definition_wins():
    result = scan("""\
        import ringkernel as rk

        @rk.kernel
        def k(): pass

        @rk.kernel
        def k(): x = 1
        """)
    assert len(result.entries) == 1 and result.entries[0].line == 7


# --- constants ---------------------------------------------------------------------------------


def constant(expr: str, scope: dict | None = None):
    evaluator = ConstantEvaluator({"math": math, "np": np, **(scope or {})})
    return evaluator.evaluate(ast.parse(expr, mode="eval").body)


@pytest.mark.parametrize(
    "expr, value",
    [
        ("256", 256),
        ("2.0 * N", 512.0),
        ("(N + 63) // 64", 4),
        ("-N % 10", 4),
        ("1 << 10 | 3", 1027),
        ("~0 ^ 5", -6),
        ("2 ** 31 - 1", 2**31 - 1),
        ("N / 3", 256 / 3),
        ("math.pi * 2", math.pi * 2),
        ("np.float32(0.5)", np.float32(0.5)),
        ("int(2.9) + float(1)", 3.0),
        ("not 0", True),
        ("True", True),
    ],
)
def test_constant_expressions(expr, value):
    got = constant(expr, {"N": 256})
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    "expr, reason",
    [
        ("compute()", "the result of the call 'compute()'"),
        ("os.getpid()", "the result of the call"),
        ("'text'", "which is not a number"),
        ("[1, 2]", "not a constant expression"),
        ("1 / 0", "which fails: division by zero"),
        ("10 ** 10 ** 10", "too large"),
        ("1 << 100000", "too large"),
        ("UNKNOWN + 1", "uses 'UNKNOWN', itself not a known constant"),
        ("N if N else 2", "not a constant expression"),
        ("math", "not a number"),
        ("np.zeros(4)", "the result of the call"),
        ("float('nan', 2)", "the result of the call"),
        ("x.y", "not a constant expression"),
    ],
)
def test_non_constants_are_refused_without_evaluation(expr, reason):
    with pytest.raises(NotConstant) as info:
        constant(expr, {"N": 3})
    assert reason in info.value.reason


def test_module_constants_become_kernel_constants():
    module = build(HEADER + textwrap.dedent("""\
        N = 256
        N += 1
        SCALE: float = 0.5 * N
        HALF = np.float32(SCALE)
        TAU = 2 * math.pi

        @rk.kernel
        def k(x: Array[f32]):
            x[0] = SCALE + HALF + TAU
        """), "k")
    text = str(module)
    assert "const 128.5" in text and "const 6.283185" in text


# --- runtime-only names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "binding, why",
    [
        ("LIMIT = compute()", "line 5 sets it to the result of the call 'compute()'"),
        ("from config import LIMIT", "it is imported from 'config' (line 5)"),
        ("LIMIT, OTHER = 1, 2", "it is unpacked or set indirectly at line 5"),
        ("if True:\n    LIMIT = 3", "it is bound inside the 'if' statement at line 5"),
        ("for LIMIT in range(3):\n    pass", "it is bound inside the 'for' statement at line 5"),
        ("try:\n    from fast import LIMIT\nexcept ImportError:\n    LIMIT = 1", "the 'try' statement"),
        ("with open('f') as LIMIT:\n    pass", "inside the 'with' statement"),
        ("class LIMIT:\n    pass", "it is a class (line 5)"),
        ("@cache\ndef LIMIT():\n    return 1", "it is decorated with 'cache' (line 6)"),
        ("LIMIT = 2\nLIMIT = compute()", "line 6 sets it"),
    ],
)
def test_runtime_only_name_is_reported_at_its_first_use(binding, why):
    source = HEADER + binding + textwrap.dedent("""

        @rk.kernel
        def k(x: Array[f32], n: i32):
            i = rk.global_id(0)
            if i < n:
                x[i] = x[i] * 2.0 + LIMIT
        """)
    error = error_of(source, "k")
    assert error.message.startswith("ringc cannot know the value of 'LIMIT' without running the file: ")
    assert why in error.message
    last = source.splitlines()[-1]
    assert (error.line, error.col, error.end_col) == (len(source.splitlines()), last.index("LIMIT") + 1,
                                                       last.index("LIMIT") + 6)
    assert error.source_line == last
    assert "^^^^^" in str(error)


def test_plain_function_called_from_a_kernel():
    error = error_of(HEADER + textwrap.dedent("""\
        def helper(v):
            return v

        @rk.kernel
        def k(x: Array[f32]):
            x[0] = helper(1.0)
        """), "k")
    assert error.message == (
        "'helper' is a plain Python function (line 5); kernels can only call @rk.func device functions"
    )
    assert (error.line, error.col) == (10, 12)


def test_runtime_only_annotation():
    error = error_of("""\
        import ringkernel as rk
        from mytypes import Vec

        @rk.kernel
        def k(v: Vec):
            pass
        """, "k")
    assert (error.line, error.col) == (5, 10)
    assert "imported from 'mytypes'" in error.message


def test_later_constant_binding_wins_like_a_lazy_decorator():
    module = build(HEADER + textwrap.dedent("""\
        N = compute()
        N = 64

        @rk.kernel
        def k(x: Array[i32]):
            x[0] = N
        """), "k")
    assert "const 64" in str(module)


def test_locals_shadowing_runtime_names_are_fine():
    build(HEADER + textwrap.dedent("""\
        value = compute()

        @rk.kernel
        def k(x: Array[f32]):
            value = 1.0
            x[0] = value
        """), "k")


def test_unsupported_builtins_get_a_specific_message():
    error = error_of(HEADER + textwrap.dedent("""\
        @rk.kernel
        def k(x: Array[f32]):
            x[0] = sum(x)
        """), "k")
    assert error.message == "the Python builtin 'sum' is not available in kernels"
    assert (error.line, error.col) == (7, 12)


def test_safe_builtins_and_intrinsics_by_identity():
    module = build(HEADER + textwrap.dedent("""\
        from math import sqrt
        from ringkernel.frontends.dsl import atomic_add as add

        @rk.kernel
        def k(x: Array[f32], c: Array[i32], n: i32):
            for j in range(n):
                x[j] = abs(min(x[j], 1.0)) + sqrt(max(float(j), 2.0)) + np.exp(x[j])
                add(c, 0, int(x[j]))
        """), "k")
    text = str(module)
    assert "sqrt" in text and "exp" in text and "atomic_add" in text


def test_device_function_calls_resolve_to_stand_ins():
    module = build(HEADER + textwrap.dedent("""\
        @rk.func
        def helper(v: f32) -> f32:
            return v + 1.0

        @rk.kernel
        def k(x: Array[f32]):
            x[0] = helper(x[0])
        """), "k")
    assert [f.name for f in module.functions] == ["helper", "k"]


def test_calling_a_kernel_from_a_kernel_is_rejected():
    error = error_of(HEADER + textwrap.dedent("""\
        @rk.kernel
        def other(x: Array[f32]):
            pass

        @rk.kernel
        def k(x: Array[f32]):
            other(x)
        """), "k")
    assert "cannot be called from device code" in error.message


def test_columns_count_characters_not_bytes():
    error = error_of(HEADER + textwrap.dedent("""\
        @rk.kernel
        def k(x: Array[f32]):
            x[0] = 1.0; ünïcödé = 2.0; y = ÄÖÜ
        """), "k")
    assert error.line == 7
    assert error.col == error.source_line.index("ÄÖÜ") + 1


def test_split_lines_matches_ast_line_numbers():
    text = "a = 1\r\nb = 2\rc = 3\x0cd\n\u2028e = 4\n"
    assert split_lines(text) == ("a = 1\r\n", "b = 2\r", "c = 3\x0cd\n", "\u2028e = 4\n")


def test_syntax_errors_are_located():
    with pytest.raises(CompileError) as info:
        scan("import ringkernel as rk\nx = (1,\n")
    assert info.value.filename == "k.py" and info.value.line == 2
    assert info.value.message.startswith("invalid Python syntax")


def test_scanning_never_executes_anything(tmp_path):
    marker = tmp_path / "ran"
    result = scan(f"""\
        import ringkernel as rk
        open({str(marker)!r}, "w")
        X = open({str(marker)!r}, "w")
        Y = __import__("os").system("touch {marker}")

        @rk.kernel
        @open({str(marker)!r}, "w")
        def k(): pass

        @__import__("os").system
        def j(): pass
        """)
    assert not marker.exists()
    assert isinstance(result.scope["X"], RuntimeOnly) and isinstance(result.scope["Y"], RuntimeOnly)
    assert len(result.errors) == 1


def test_intrinsic_identity_is_preserved():
    result = scan("from ringkernel import global_id as gid\nimport ringkernel.frontends.dsl as d\n")
    assert result.scope["gid"] is dsl.global_id is result.scope["d"].global_id


# --- messages and actors ------------------------------------------------------------------------


def test_message_classes_are_real_message_classes_built_statically():
    from ringkernel.frontends.actors import message_info

    result = scan("""\
        import ringkernel as rk
        from ringkernel import f32, u32
        SIZE = 3

        @rk.message
        class Reading:
            value: "f32"
            count: u32 = SIZE * 2
            print("never runs")
        """)
    (entry,) = result.messages
    cls = result.scope["Reading"]
    info = message_info(cls)
    assert entry.ringkernel_kind == "message" and info.name == "Reading"
    assert [(f.name, str(f.type)) for f in info.layout.fields] == [("value", "f32"), ("count", "u32")]
    assert cls(value=1.5) == cls(value=1.5, count=6)


@pytest.mark.parametrize(
    "field, message, col",
    [
        ("value: Unknown", "ringc cannot tell the type of field 'value' statically", 12),
        ("value: f32 = compute()", "the default of 'value' must be a number", 18),
        ("value: str", "message 'M': field 'value' has unsupported type", 5),
    ],
)
def test_bad_message_fields(field, message, col):
    result = scan(f"import ringkernel as rk\nfrom ringkernel import f32\n@rk.message\nclass M:\n    {field}")
    (error,) = result.errors
    assert message in error.message
    assert (error.line, error.col) == (5 if col != 5 else 4, col if col != 5 else 1)


def test_actor_uses_messages_defined_later_and_reads_no_live_class():
    result = scan("""\
        import ringkernel as rk
        from ringkernel import f32

        @rk.actor
        class Echo:
            def on(self, msg: "Ping") -> "Ping":
                return Ping(value=msg.value + OFFSET)

        OFFSET = 0.5

        @rk.message
        class Ping:
            value: f32
        """)
    actor = result.get("Echo")
    assert actor.ringkernel_kind == "actor"
    text = str(actor.module("persistent"))
    assert "kernel @Echo(" in text and "func @Echo__on_Ping(" in text and "const 0.5" in text


def test_actor_name_in_a_kernel_is_rejected_at_the_use():
    error = error_of("""\
        import ringkernel as rk
        from ringkernel import f32, Array

        @rk.message
        class Ping:
            value: f32

        @rk.actor
        class Echo:
            def on(self, msg: Ping) -> None:
                pass

        @rk.kernel
        def k(x: Array[f32]):
            x[0] = Echo
        """, "k")
    assert error.message == "actor 'Echo' cannot be used in kernels"
    assert (error.line, error.col) == (15, 12)
