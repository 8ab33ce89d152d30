"""A port-connected actor that migrates off a cpu system stays routed: the cpu routes natively
(the workers route after the turns they run), so a pump hosting the migrated actor must route
its sends between rounds (``NativeRouter.route``).  Before the fix its sends waited until it
came back to the cpu."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import ringkernel as rk
from ringkernel.runtime import backend_status

sys.path.insert(0, str(Path(__file__).parent))
from migration_defs import Forward, Recorder, Tick  # noqa: E402

COUNT = 500


@pytest.fixture(autouse=True)
def need_wgpu() -> None:
    ok, reason = backend_status("wgpu")
    if not ok:
        pytest.skip(f"migration between cpu and wgpu needs wgpu: {reason}")


def _received(ref, count: int) -> np.ndarray:
    got = ref.receive_many(count, timeout=20, as_array=True)
    while len(got) < count:
        more = ref.receive_many(count - len(got), timeout=20, as_array=True)
        assert len(more), f"only {len(got)} of {count} messages arrived"
        got = np.concatenate([got, more])
    return got


@pytest.mark.parametrize("moved", ["sender", "receiver", "both"])
def test_port_sends_flow_while_an_actor_lives_on_wgpu(moved: str) -> None:
    with rk.ActorSystem("cpu") as system:
        src, dst = system.spawn(Forward), system.spawn(Recorder)
        system.connect(src, dst, port="out")
        if moved in ("sender", "both"):
            system.migrate(src, "wgpu")
        if moved in ("receiver", "both"):
            system.migrate(dst, "wgpu")
        for n in range(COUNT):
            src.send(Tick(sender=1, n=n), timeout=None)
        got = _received(dst, COUNT)
        assert got["n"].tolist() == list(range(COUNT))
        assert system.metrics()["routing"]["routed"] == COUNT
