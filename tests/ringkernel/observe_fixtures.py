"""The ``observe_backend`` fixture: cpu always, wgpu (lavapipe) where an adapter exists."""

from __future__ import annotations

import pytest

from ringkernel.runtime import backend_status


@pytest.fixture(params=["cpu", "wgpu"])
def observe_backend(request: pytest.FixtureRequest) -> str:
    ok, reason = backend_status(request.param)
    if not ok:
        pytest.skip(reason)
    return request.param
