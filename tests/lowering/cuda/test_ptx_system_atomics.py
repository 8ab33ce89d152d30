"""Actor kernels' atomics are ``atom.sys`` (the host polls their queues); others stay GPU scope."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import kernel_corpus
import pytest

from ringkernel.lowering.cuda import check_ptx, find_libdevice, find_ptxas, lower_module_to_ptx
from ringkernel.ringir import ArrayType, FunctionBuilder, Module
from ringkernel.ringir.diagnostics import CompileError
from ringkernel.ringir.types import F32, F64, I32, I64, U32, U64, ScalarType

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "actors"))
import actor_defs  # noqa: E402

ACTORS = [
    getattr(actor_defs, name) for name in sorted(vars(actor_defs))
    if type(getattr(actor_defs, name)).__name__ == "ActorType"
]
ATOM = re.compile(r"^\s*atom\.(\S+)", re.MULTILINE)


def _atoms(ptx: str) -> list[str]:
    return ATOM.findall(ptx)


@pytest.fixture(scope="module")
def ptxas() -> None:
    for tool, what in ((find_ptxas(), "ptxas"), (find_libdevice(), "libdevice")):
        if tool is None:
            if os.environ.get("CI"):
                pytest.fail(f"{what} must exist in CI (the test extra installs it)")
            pytest.skip(f"{what} not installed")


def test_the_actor_definitions_are_found() -> None:
    assert len(ACTORS) >= 5


@pytest.mark.parametrize("actor", ACTORS, ids=lambda a: a.info.name)
def test_actor_queue_atomics_have_system_scope(actor: object, ptxas: None) -> None:
    ptx = actor.compile("ptx")
    atoms = _atoms(ptx)
    assert atoms and all(a.startswith("sys.") for a in atoms), atoms
    assert {"sys.or.b32", "sys.exch.b32"} <= set(atoms)  # queue reads and publishes
    assert "atom.global" not in ptx and "atom.add" not in ptx
    assert "fence.sc.sys" in ptx  # the fences still give acquire/release
    assert "llvm.nvvm" not in ptx  # every intrinsic was selected, none became an extern call
    check_ptx(ptx)


def test_actor_ptx_can_opt_out_and_is_deterministic() -> None:
    actor = actor_defs.Accumulator
    gpu = actor.compile("ptx", system_scope_atomics=False)
    assert all(a.startswith("global.") for a in _atoms(gpu))
    first = lower_module_to_ptx(actor.ir, system_scope_atomics=True)
    assert first == lower_module_to_ptx(actor.ir, system_scope_atomics=True)
    assert first == actor.compile("ptx")


def test_ordinary_kernels_keep_gpu_scope(ptxas: None) -> None:
    case = next(c for c in kernel_corpus.CASES if c.name == "histogram")
    ptx = case.kernel.compile("ptx")
    assert "atom.global.add.u32" in ptx or "atom.global.add.s32" in ptx, _atoms(ptx)
    assert "atom.sys" not in ptx


def _every_atomic(elem: ScalarType) -> Module:
    """One kernel doing each atomic RingIR allows on ``elem``, on one element each."""
    fb = FunctionBuilder(f"atomics_{elem}", "kernel", [("a", ArrayType(elem)), ("v", ArrayType(elem))])
    a, v = fb.params
    zero = fb.const(0, I32)
    x = fb.load(v, zero)
    ops = ("add", "sub", "exchange")
    if not elem.is_float:
        ops += ("min", "max", "and", "or", "xor")
    for i, op in enumerate(ops):
        fb.store(v, fb.const(i + 1, I32), fb.atomic(op, a, fb.const(i, I32), x))
    if not elem.is_float:
        old = fb.atomic_cas(a, fb.const(len(ops), I32), x, fb.load(v, fb.const(1, I32)))
        fb.store(v, fb.const(len(ops) + 1, I32), old)
    return Module((fb.finish(),))


@pytest.mark.parametrize("elem", [I32, U32, I64, U64, F32, F64], ids=str)
def test_every_atomic_has_a_system_scope_form(elem: ScalarType, ptxas: None) -> None:
    ptx = lower_module_to_ptx(_every_atomic(elem), system_scope_atomics=True)
    atoms = _atoms(ptx)
    assert atoms and all(a.startswith("sys.") for a in atoms), atoms
    assert "llvm.nvvm" not in ptx
    if elem.kind == "uint":  # unsigned min/max: a system-scope CAS loop
        assert any(a.startswith("sys.cas") for a in atoms)
    check_ptx(ptx)


def test_system_scope_needs_sm_60() -> None:
    module = actor_defs.Accumulator.ir
    with pytest.raises(CompileError, match="sm_60"):
        lower_module_to_ptx(module, arch="sm_52", system_scope_atomics=True)
    with pytest.raises(CompileError, match="sm_60"):
        actor_defs.Accumulator.compile("ptx", arch="sm_50")
