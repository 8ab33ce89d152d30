"""Shared test fixtures: the kernel corpus on sys.path and a backend fixture."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

os.environ.setdefault("WGPU_BACKEND_TYPE", "Vulkan")

BACKENDS = ["cpu", "wgpu"]


def _available(name: str) -> tuple[bool, str]:
    from ringkernel.runtime import BackendUnavailable, _backend_class

    try:
        cls = _backend_class(name)
    except BackendUnavailable as exc:
        return False, str(exc)
    if cls.available():
        return True, ""
    reason = getattr(cls, "unavailable_reason", lambda: "")()
    return False, f"backend '{name}' unavailable here: {reason}"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Every end-to-end kernel test runs once per backend that exists on this machine."""
    ok, reason = _available(request.param)
    if not ok:
        if os.environ.get("CI") and request.param in ("cpu", "wgpu"):
            pytest.fail(f"{request.param} must run in CI: {reason}")
        pytest.skip(reason)
    return request.param
