"""Chaos tests: short settings by default (a few seconds in CI); ``--chaos-long`` runs them longer."""

from __future__ import annotations

import os

import pytest

from ringkernel.runtime import backend_status


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--chaos-long", action="store_true", help="run the chaos tests with long settings")


@pytest.fixture
def rounds(request: pytest.FixtureRequest) -> int:
    """How many times each chaos scenario repeats."""
    return 20 if request.config.getoption("--chaos-long") else 1


@pytest.fixture(params=["cpu", "wgpu"])
def chaos_backend(request: pytest.FixtureRequest) -> str:
    ok, reason = backend_status(request.param)
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"{request.param} must run in CI: {reason}")
        pytest.skip(reason)
    return request.param
