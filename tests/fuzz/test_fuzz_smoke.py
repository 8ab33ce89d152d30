"""CI smoke run of every atheris fuzz target (docs/fuzzing.md).

Each target runs under libFuzzer for its ``SMOKE_RUNS`` (a few seconds), and
its seed corpus is replayed directly, so a regression in any fuzzed surface
fails the build.  Long campaigns are run by hand: ``python -m fuzz TARGET --runs N``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

atheris = pytest.importorskip("atheris", reason="atheris is installed by the 'fuzz' extra")

from fuzz.run import available_targets, target_module  # noqa: E402

TARGETS = available_targets()


def _skip_reason(target: str) -> str | None:
    if target == "wgsl":
        from ringkernel.lowering.wgsl.naga import WgpuUnavailable, get_device

        try:
            get_device()
        except WgpuUnavailable as exc:
            return f"naga needs a wgpu device: {exc}"
    if target == "ptx":
        from ringkernel.lowering.cuda import find_ptxas

        if find_ptxas() is None:
            return "ptxas is not installed (pip install nvidia-cuda-nvcc)"
    if target == "msl":
        from ringkernel.lowering.msl import find_clang
        from ringkernel.ringir.diagnostics import CompileError

        try:
            find_clang()
        except CompileError as exc:
            return str(exc)
    return None


def test_every_issue_target_exists() -> None:
    assert {"parser", "frontend", "ptx", "wgsl", "msl", "queues", "hlc"} <= set(TARGETS)


@pytest.mark.parametrize("target", TARGETS)
def test_seed_corpus_replays_clean(target: str) -> None:
    reason = _skip_reason(target)
    if reason:
        pytest.skip(reason)
    module = target_module(target)
    seeds = sorted((REPO / "fuzz" / "corpus" / target).glob("*"))
    for seed in seeds:
        module.test_one_input(seed.read_bytes())
    for size in (0, 1, 7, 64):  # the smallest inputs too
        module.test_one_input(bytes(range(size)))


@pytest.mark.parametrize("target", TARGETS)
def test_target_runs_clean_under_libfuzzer(target: str, tmp_path: Path) -> None:
    reason = _skip_reason(target)
    if reason:
        pytest.skip(reason)
    env = dict(os.environ, RINGKERNEL_NO_CACHE="1")
    proc = subprocess.run(
        [sys.executable, "-m", "fuzz", target, "--quiet", "--work", str(tmp_path / "work"),
         "--artifacts", str(tmp_path / "artifacts"), "--", "-seed=1"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-8000:]
    assert "clean" in proc.stdout
