"""A checkpoint on a pump backend (wgpu) reads the K2K slots that only the device holds: the
messages waiting between two connected actors are saved as they are, not as zeroed slots."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import durability
from ringkernel.ringir import layout as L

sys.path.insert(0, str(Path(__file__).parent))
from wiring_defs import Job, Sink, Stage  # noqa: E402

N = 200


def test_waiting_k2k_messages_on_wgpu_are_saved_and_restored_once(tmp_path):
    from ringkernel.runtime import backend_status

    ok, reason = backend_status("wgpu")
    if not ok:
        pytest.skip(reason)
    path = tmp_path / "k2k.rkc"
    with rk.ActorSystem("wgpu") as system:
        stage = system.spawn(Stage, queue_capacity=256)
        sink = system.spawn(Sink, queue_capacity=16)  # its replies fill: the K2K queue fills too
        system.connect(stage, sink)
        stage.send_many([Job(sender=0, n=n, work=10) for n in range(N)], timeout=None)
        deadline = time.monotonic() + 60
        while int(stage.ctrl[L.C["processed"]]) < 32 and time.monotonic() < deadline:
            time.sleep(0.01)
        system.checkpoint(path)
        system.shutdown(drain=False)
    images, _ = durability.read(path)
    held = {im.name: im for im in images}[sink.name].k2k
    assert len(held) > 0  # messages waited between the two
    assert (held[:, L.ENV_TYPE_ID] != 0).all()  # read from the device, not the zeroed host slots
    with rk.ActorSystem("wgpu") as system:
        stage, sink = system.restore(path, [Stage, Sink])
        got = sink.receive_many(N, timeout=60, as_array=True)
        while len(got) < N:
            got = np.concatenate([got, sink.receive_many(N - len(got), timeout=60, as_array=True)])
        assert got["n"].tolist() == list(range(N))
