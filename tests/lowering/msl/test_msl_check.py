"""check_msl can fail: deliberately broken MSL is rejected with clang's message and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import jinja2
import kernel_corpus
import pytest

from ringkernel.lowering.common import templates
from ringkernel.lowering.msl import check_msl, emitter, lower_module_to_msl
from ringkernel.ringir.diagnostics import CompileError


def _rejected(text: str) -> CompileError:
    with pytest.raises(CompileError) as err:
        check_msl(text)
    return err.value


def test_valid_saxpy_is_accepted() -> None:
    check_msl(lower_module_to_msl(kernel_corpus.saxpy.ir))


def test_wrong_buffer_type_is_rejected_with_line() -> None:
    text = lower_module_to_msl(kernel_corpus.saxpy.ir)
    broken = text.replace("device float* x [[buffer(1)]]", "device int* x [[buffer(1)]]")
    assert broken != text
    err = _rejected(broken)
    assert err.filename == "<msl>" and err.line is not None
    assert err.source_line == broken.splitlines()[err.line - 1]
    assert "x[" in err.source_line
    assert "clang rejected the MSL" in str(err) and "float" in str(err)


def test_plain_int_where_an_atomic_is_needed_is_rejected() -> None:
    text = lower_module_to_msl(kernel_corpus.histogram.ir)
    broken = text.replace("device atomic_int* bins", "device int* bins")
    assert broken != text
    err = _rejected(broken)
    assert "atomic_fetch_add_explicit" in err.source_line


def test_plain_store_to_an_atomic_array_is_rejected() -> None:
    text = lower_module_to_msl(kernel_corpus.atomic_family.ir)
    line = next(ln for ln in text.splitlines() if "atomic_store_explicit(&old[" in ln)
    index = line.split("&old[")[1].split("]")[0]
    value = line.split("], ")[1].split(",")[0]
    broken = text.replace(line, f"    old[{index}] = {value};")
    _rejected(broken)


def test_threadgroup_memory_cannot_pass_as_device_memory() -> None:
    text = lower_module_to_msl(kernel_corpus.device_functions.ir)
    broken = text.replace(
        "add_into(out,", "threadgroup float rk_tmp[4];\n        add_into(rk_tmp,"
    )
    assert broken != text
    err = _rejected(broken)
    assert "add_into" in err.source_line


def test_int_argument_to_float_math_is_rejected() -> None:
    text = lower_module_to_msl(kernel_corpus.math_functions.ir)
    line = next(ln for ln in text.splitlines() if "metal::precise::sqrt(" in ln)
    broken = text.replace(line, line.split("=")[0] + "= metal::precise::sqrt(1);")
    err = _rejected(broken)
    assert "deleted" in err.message or "sqrt" in err.message


def test_broken_template_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong type in a template (thread index as uint instead of int) fails the check."""
    source = Path(emitter.__file__).parent / "templates"
    patched = tmp_path / "templates"
    shutil.copytree(source, patched)
    expressions = patched / "expressions.j2"
    original = expressions.read_text()
    wrong = original.replace("int({{ builtin }}.", "uint({{ builtin }}.")
    assert wrong != original
    expressions.write_text(wrong)
    env = templates.make_environment(jinja2.FileSystemLoader(str(patched)))
    monkeypatch.setattr(templates, "environment", lambda package: env)
    text = lower_module_to_msl(kernel_corpus.saxpy.ir)
    assert "= uint(rk_gid.x);" in text
    err = _rejected(text)
    assert "rk_gid" in err.source_line


def test_missing_clang_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RINGKERNEL_CLANG", "no-such-clang-binary")
    with pytest.raises(CompileError, match="RINGKERNEL_CLANG"):
        check_msl("kernel void k() {}\n")
    monkeypatch.delenv("RINGKERNEL_CLANG")
    monkeypatch.setenv("PATH", "")
    with pytest.raises(CompileError, match="needs clang"):
        check_msl("kernel void k() {}\n")
