"""Refactors change no output: every corpus kernel and actor, on every target, byte for byte.

The stored digests (``tests/data/output_digests.json``) are sha256 of each
target's text.  A change that is *meant* to alter output regenerates them
with ``RINGKERNEL_UPDATE_DIGESTS=1 python -m pytest tests/test_output_digests.py``
and says why in its commit.  LLVM and PTX text depend on llvmlite's LLVM, so
those digests are compared only under the llvmlite version they were made
with.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import llvmlite
import pytest
from kernel_corpus import CASES

import ringkernel as rk

sys.path.insert(0, str(Path(__file__).parent / "actors"))
import actor_defs  # noqa: E402

DIGESTS = Path(__file__).parent / "data" / "output_digests.json"
TARGETS = ("rir", "llvm", "ptx", "wgsl", "msl")
LLVM_DEPENDENT = ("llvm", "ptx")


def _subjects() -> dict[str, object]:
    subjects: dict[str, object] = {f"kernel:{case.name}": case.kernel for case in CASES}
    for name in dir(actor_defs):
        value = getattr(actor_defs, name)
        if isinstance(value, rk.ActorType):
            subjects[f"actor:{name}"] = value
    return subjects


def _digest(subject: object, target: str) -> str | None:
    try:
        text = subject.compile(target)  # type: ignore[attr-defined]
    except rk.CompileError as exc:  # a target that lacks a type: the refusal is the output
        text = f"CompileError: {exc.message}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _current() -> dict[str, str]:
    return {
        f"{key}@{target}": _digest(subject, target)  # type: ignore[misc]
        for key, subject in sorted(_subjects().items())
        for target in TARGETS
    }


def test_outputs_match_stored_digests() -> None:
    current = _current()
    if os.environ.get("RINGKERNEL_UPDATE_DIGESTS"):
        DIGESTS.parent.mkdir(exist_ok=True)
        stored = {"llvmlite": llvmlite.__version__, "digests": current}
        DIGESTS.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
        pytest.skip("digests regenerated")
    stored = json.loads(DIGESTS.read_text())
    same_llvm = stored["llvmlite"] == llvmlite.__version__
    changed = [
        key
        for key, digest in current.items()
        if (same_llvm or key.rsplit("@", 1)[1] not in LLVM_DEPENDENT) and stored["digests"].get(key) != digest
    ]
    missing = sorted(set(stored["digests"]) - set(current))
    assert not changed and not missing, f"output changed: {changed}; no longer compiled: {missing}"
