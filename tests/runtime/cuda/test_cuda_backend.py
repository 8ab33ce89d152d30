"""The cuda backend runs only where pycuda, a driver and a device exist; elsewhere it
says why and is left out of ``rk.backends()``."""

from __future__ import annotations

import kernel_corpus
import pytest

import ringkernel as rk
from ringkernel.runtime import BackendUnavailable, get_backend
from ringkernel.runtime.cuda import CudaBackend


def test_unavailable_backend_explains_itself() -> None:
    if CudaBackend.available():
        pytest.skip("a CUDA device is present")
    reason = CudaBackend.unavailable_reason()
    assert reason
    assert "cuda" not in rk.backends()
    with pytest.raises(BackendUnavailable, match="cuda"):
        get_backend("cuda")


@pytest.mark.parametrize("case", kernel_corpus.CASES, ids=lambda c: c.name)
def test_corpus_on_cuda(case: kernel_corpus.KernelCase) -> None:
    if not CudaBackend.available():
        pytest.skip(f"cuda backend unavailable: {CudaBackend.unavailable_reason()}")
    kernel_corpus.run_case(case, "cuda")
