"""Every kernel of the shared corpus round-trips through the text form and the passes."""

from __future__ import annotations

import kernel_corpus
import pytest

from ringkernel.ringir import parse, verify
from ringkernel.ringir.passes import eliminate_dead_code, fold_constants, run_default_pipeline


@pytest.mark.parametrize("case", kernel_corpus.CASES, ids=lambda c: c.name)
def test_corpus_kernel_round_trips(case):
    module = case.kernel.ir
    text = str(module)
    assert text.startswith("ringir 1\n")
    parsed = parse(text, f"{case.name}.rir")
    assert parsed == module
    assert str(parsed) == text
    optimized = run_default_pipeline(module)
    assert parse(str(optimized)) == optimized
    verify(fold_constants(module))
    assert eliminate_dead_code(optimized) == optimized
