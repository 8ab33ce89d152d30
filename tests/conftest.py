"""Shared test fixtures: the kernel corpus on sys.path and a backend fixture."""

from __future__ import annotations

import os
import sys

import pytest

import ringkernel  # noqa: F401  (bound first: tests/ringkernel/ must not shadow the package)

sys.path.insert(0, os.path.dirname(__file__))

os.environ.setdefault("WGPU_BACKEND_TYPE", "Vulkan")

BACKENDS = ["cpu", "wgpu"]


@pytest.fixture(autouse=True, scope="session")
def _private_compile_cache(tmp_path_factory: pytest.TempPathFactory):
    """The suite never reads or fills the user's ~/.cache/ringkernel."""
    saved = os.environ.get("RINGKERNEL_CACHE_DIR")
    os.environ["RINGKERNEL_CACHE_DIR"] = str(tmp_path_factory.mktemp("ringkernel-cache"))
    yield
    if saved is None:
        os.environ.pop("RINGKERNEL_CACHE_DIR", None)
    else:
        os.environ["RINGKERNEL_CACHE_DIR"] = saved


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Every end-to-end kernel test runs once per backend that exists on this machine."""
    from ringkernel.runtime import backend_status

    ok, reason = backend_status(request.param)
    if not ok:
        if os.environ.get("CI") and request.param in ("cpu", "wgpu"):
            pytest.fail(f"{request.param} must run in CI: {reason}")
        pytest.skip(reason)
    return request.param
