"""The ``actor_backend`` fixture: every end-to-end actor test runs on each actor backend.

``cpu-batch`` is not a user backend: it is the re-dispatch pump of wgpu and
Metal (``RedispatchRuntime``) driving the batch loop on the cpu JIT, so the
protocol the Metal host shares is exercised on every machine.
"""

from __future__ import annotations

import os

import pytest

import ringkernel as rk
import ringkernel.actors as rk_actors

ACTOR_BACKENDS = ["cpu", "cpu-batch", "wgpu", "cuda", "metal"]


def _cpu_batch_runtime(backend: str, idle_ns: int):
    from ringkernel.runtime.cpu.actors import CpuBatchDevice
    from ringkernel.runtime.wgpu.actors import RedispatchRuntime

    return RedispatchRuntime(CpuBatchDevice(), idle_ns)


@pytest.fixture(params=ACTOR_BACKENDS)
def actor_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    name = request.param
    if name == "cpu-batch":
        monkeypatch.setattr(rk_actors, "open_runtime", _cpu_batch_runtime)
        return name
    if name not in rk.backends():
        from ringkernel.runtime import BackendUnavailable, _backend_class

        try:
            reason = _backend_class(name).unavailable_reason()
        except BackendUnavailable as exc:
            reason = str(exc)
        if os.environ.get("CI") and name in ("cpu", "wgpu"):
            pytest.fail(f"{name} must run in CI: {reason}")
        pytest.skip(f"backend '{name}' unavailable here: {reason}")
    return name
