"""Property tests: random valid modules verify, round-trip through text and survive passes."""

from __future__ import annotations

import os
import sys

from hypothesis import HealthCheck, given, settings

sys.path.insert(0, os.path.dirname(__file__))

from ir_strategies import modules  # noqa: E402

from ringkernel.ringir import parse, verify  # noqa: E402
from ringkernel.ringir.passes import (  # noqa: E402
    eliminate_dead_code,
    fold_constants,
    run_default_pipeline,
)

SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@SETTINGS
@given(modules())
def test_random_modules_round_trip_through_text(module):
    verify(module)
    text = str(module)
    assert text.startswith("ringir 1\n")
    parsed = parse(text)
    assert parsed == module
    assert str(parsed) == text


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(modules())
def test_passes_keep_random_modules_valid(module):
    folded = verify(fold_constants(module))
    cleaned = verify(eliminate_dead_code(module))
    assert eliminate_dead_code(cleaned) == cleaned  # already at its fixed point
    result = run_default_pipeline(module)
    assert parse(str(result)) == result
    assert fold_constants(folded) == folded
