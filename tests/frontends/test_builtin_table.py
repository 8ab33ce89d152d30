"""The builtin table: one entry per builtin, the stubs, the dispatch and the docs all come from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

import ringkernel as rk
from ringkernel import Array, i32
from ringkernel.frontends import builtins as table
from ringkernel.frontends import dsl
from ringkernel.frontends.python import FunctionTranslator
from ringkernel.ringir import MATH_FUNCS

ROOT = Path(__file__).resolve().parents[2]


def test_every_stub_is_a_table_entry_and_back():
    assert set(dsl.INTRINSICS) == {b.name for b in table.BUILTINS if b.stub}
    for name, stub in dsl.INTRINSICS.items():
        assert stub.__doc__ == table.BY_NAME[name].doc
        assert getattr(rk, name) is stub


def test_every_rule_has_a_translator_handler():
    missing = [b.name for b in table.BUILTINS if not hasattr(FunctionTranslator, f"call_{b.rule}")]
    assert not missing


def test_math_entries_match_the_ir_math_functions():
    math_entries = {b.op: b.arity for b in table.BUILTINS if b.rule == "math" or b.rule == "abs"}
    assert math_entries == MATH_FUNCS


def test_docs_list_every_builtin_with_its_doc_line():
    text = (ROOT / "docs" / "dsl.md").read_text(encoding="utf-8")
    assert table.docs_table() in text, "docs/dsl.md is stale: run python tools/gen_builtin_docs.py"
    for b in table.BUILTINS:
        assert f"`{b.spelling}`" in text and b.doc.replace("|", "\\|") in text, b.name


def test_the_generator_check_passes():
    run = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_builtin_docs.py"), "--check"],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr


def test_np_abs_evaluates_its_argument_once():
    """np.abs went through the math path, which visited the argument, then abs, which visited it again:
    np.abs(rk.atomic_add(...)) did the atomic twice."""

    @rk.kernel
    def k(a: Array[i32], out: Array[i32]):
        out[0] = np.abs(rk.atomic_add(a, 0, 1))

    from ringkernel.frontends.module import build_module

    text = str(build_module([k]))
    assert text.count("atomic_add") == 1, text
