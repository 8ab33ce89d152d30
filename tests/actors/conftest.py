"""The ``actor_backend`` fixture: every end-to-end actor test runs on each actor backend.

``cpu-batch`` is not a user backend: it is the re-dispatch pump of wgpu and
Metal (``RedispatchRuntime``) driving the batch loop on the cpu JIT, so the
protocol the Metal host shares is exercised on every machine.
"""

from __future__ import annotations

import os

import pytest

import ringkernel.actors as rk_actors
from ringkernel.runtime import backend_status

ACTOR_BACKENDS = ["cpu", "cpu-batch", "wgpu", "cuda", "metal"]


def _cpu_batch_runtime(backend: str, idle_ns: int):
    from ringkernel.runtime.actor_pump import RedispatchRuntime
    from ringkernel.runtime.cpu.actors import CpuBatchDevice

    return RedispatchRuntime(CpuBatchDevice(), idle_ns)


@pytest.fixture(params=ACTOR_BACKENDS)
def actor_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    name = request.param
    if name == "cpu-batch":
        monkeypatch.setattr(rk_actors, "open_runtime", _cpu_batch_runtime)
        return name
    ok, reason = backend_status(name)
    if not ok:
        if os.environ.get("CI") and name in ("cpu", "wgpu"):
            pytest.fail(f"{name} must run in CI: {reason}")
        pytest.skip(reason)
    return name
