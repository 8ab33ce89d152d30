"""The metal backend: runs the corpus on macOS with a Metal device; elsewhere says why not."""

from __future__ import annotations

import sys

import kernel_corpus
import numpy as np
import pytest

import ringkernel as rk
from ringkernel.runtime import BackendUnavailable, get_backend
from ringkernel.runtime.arguments import LaunchError
from ringkernel.runtime.metal import MetalBackend

AVAILABLE = MetalBackend.available()
REASON = MetalBackend.unavailable_reason()


def test_availability_is_reported_with_a_reason() -> None:
    assert isinstance(AVAILABLE, bool)
    if sys.platform != "darwin":
        assert not AVAILABLE
        assert "macOS" in REASON
    if not AVAILABLE:
        assert REASON
        assert "metal" not in rk.backends()
        with pytest.raises(BackendUnavailable, match="metal"):
            get_backend("metal")
    else:
        assert REASON == ""
        assert "metal" in rk.backends()


@pytest.mark.skipif(not AVAILABLE, reason=f"metal backend unavailable: {REASON}")
@pytest.mark.parametrize("case", kernel_corpus.CASES, ids=[c.name for c in kernel_corpus.CASES])
def test_corpus_kernel_on_metal(case: kernel_corpus.KernelCase) -> None:
    kernel_corpus.run_case(case, "metal")


@pytest.mark.skipif(not AVAILABLE, reason=f"metal backend unavailable: {REASON}")
def test_oversized_block_is_a_launch_error() -> None:
    case = kernel_corpus.CASES[0]
    args = case.make_args(np.random.default_rng(0))
    with pytest.raises(LaunchError):
        case.kernel.launch(1, 100000, args, backend="metal")
