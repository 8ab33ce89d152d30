"""Chaos tests: short settings by default (seconds in CI); ``RINGKERNEL_CHAOS_LONG=1`` runs them longer."""

from __future__ import annotations

import os

import pytest

from ringkernel.runtime import backend_status


@pytest.fixture
def rounds() -> int:
    """How many times each chaos scenario repeats."""
    return 20 if os.environ.get("RINGKERNEL_CHAOS_LONG") == "1" else 1


@pytest.fixture(params=["cpu", "wgpu"])
def chaos_backend(request: pytest.FixtureRequest) -> str:
    ok, reason = backend_status(request.param)
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"{request.param} must run in CI: {reason}")
        pytest.skip(reason)
    return request.param
