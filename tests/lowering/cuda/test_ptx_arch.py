"""Architecture names are checked, and actors compile for every arch they can run on.

Before these checks an unknown name gave PTX for a made-up target (with LLVM
warnings on stderr), and an actor for sm_60 made LLVM abort the whole process
(nanosleep exists from sm_70 on).
"""

from __future__ import annotations

import os
import sys

import pytest

import ringkernel as rk
from ringkernel import Array, CompileError, f32
from ringkernel.lowering.cuda import KNOWN_ARCHS, check_ptx, find_ptxas

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "actors"))
import actor_defs  # noqa: E402


@rk.kernel
def fill(x: Array[f32]):
    x[rk.global_id(0)] = 1.0


@pytest.mark.parametrize("arch", ["sm_5", "sm_999", "foo", "compute_80", "sm_80x", "sm_70a", ""])
def test_unknown_architectures_are_a_compile_error(arch):
    with pytest.raises(CompileError, match="invalid CUDA architecture .*choose one of: sm_20"):
        fill.compile("ptx", arch=arch)


@pytest.mark.parametrize("arch", ["sm_30", "sm_80", "sm_90a", "sm_120"])
def test_known_architectures_name_the_ptx_target(arch):
    assert f".target {arch}" in fill.compile("ptx", arch=arch)
    assert 120 in KNOWN_ARCHS


def _ptxas_or_skip() -> None:
    try:
        find_ptxas()
    except CompileError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"ptxas must run in CI: {exc}")
        pytest.skip(str(exc))


def test_actor_for_sm_60_polls_without_nanosleep():
    old = actor_defs.Accumulator.compile("ptx", arch="sm_60")
    new = actor_defs.Accumulator.compile("ptx", arch="sm_80")
    assert "nanosleep" not in old and "nanosleep" in new
    assert ".target sm_60" in old
    _ptxas_or_skip()
    check_ptx(new, "sm_80")  # CUDA 13's ptxas no longer accepts sm_60, so only this one


def test_actor_below_sm_60_is_refused_clearly():
    with pytest.raises(CompileError, match="need sm_60 or newer"):
        actor_defs.Accumulator.compile("ptx", arch="sm_52")
