"""Traces show actor groups' queues: one queue-depth counter track per group (all instances)."""

from __future__ import annotations

import json

import ringkernel as rk
from tests.ringkernel import observe_fixtures
from tests.ringkernel.observe_defs import Echo, Ping

observe_backend = observe_fixtures.observe_backend  # cpu, and wgpu where it runs


def test_a_groups_queue_depth_is_a_counter_track(observe_backend: str, tmp_path) -> None:
    path = tmp_path / "groups.json"
    with rk.ActorSystem(backend=observe_backend) as system:
        group = system.spawn(Echo, count=4, queue_capacity=16)
        with system.trace(path) as tracer:
            system._pause([group])  # messages wait: the tap sees them queued
            for i in range(4):
                for _ in range(3):
                    group[i].send(Ping(value=1.0))
            tracer.poll()
            system._launch(group)
            for i in range(4):
                for _ in range(3):
                    group[i].receive(timeout=20)
            tracer.poll()
    events = json.loads(path.read_text())["traceEvents"]
    track = f"{group.name} queue depth"
    depths = [e["args"]["depth"] for e in events if e["ph"] == "C" and e["name"] == track]
    assert 12 in depths and depths[-1] == 0  # all instances' queued messages, then drained
