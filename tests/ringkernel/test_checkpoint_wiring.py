"""Checkpoints of connected actors and groups (format version 3): the connection graph (connect()
pairs with their K2K messages, port targets in fan-out order) is saved and made again by a
restore in a NEW process, and every queued message is delivered exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ringkernel as rk
from ringkernel import durability

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from wiring_defs import Job, PortStage, Sink, Stage  # noqa: E402

COUNT = 3000
WORK = 3000  # loop iterations per message: messages are still queued at the checkpoint

CHILD = """
import json, sys
sys.path.insert(0, {here!r})
import numpy as np
import ringkernel as rk
from wiring_defs import Job, PortStage, Sink, Stage

def collect(ref, count):
    parts, got = [], 0
    while got < count:
        rows = ref.receive_many(count - got, timeout=60, as_array=True)
        parts.append(rows)
        got += len(rows)
    return np.concatenate(parts)

with rk.ActorSystem({backend!r}) as system:
    restored = system.restore({path!r}, [Stage, Sink, PortStage])
    by_type = {{}}
    for unit in restored:
        by_type.setdefault(unit.type.__name__ + ("[]" if hasattr(unit, "refs") else ""), []).append(unit)
    stage, sink = by_type["Stage"][0], by_type["Sink"][0]
    port_stage, port_sink = by_type["PortStage"][0], by_type["Sink"][1]
    group_sink = by_type["Sink[]"][0]
    out = {{"linked": stage.downstream is sink}}
    for key, ref in (("k2k", sink), ("port", port_sink), ("g0", group_sink[0]), ("g1", group_sink[1])):
        rows = collect(ref, {count})
        out[key] = [rows["n"].tolist(), rows["count"].tolist()]
    print(json.dumps(out))
"""


@pytest.mark.parametrize("backend", ["cpu", "wgpu"])
def test_connected_actors_restore_in_a_new_process_exactly_once(tmp_path, backend):
    from ringkernel.runtime import backend_status

    ok, reason = backend_status(backend)
    if not ok:
        pytest.skip(reason)
    path = tmp_path / "wired.rkc"
    with rk.ActorSystem(backend) as system:
        stage, sink = system.spawn(Stage, queue_capacity=4096), system.spawn(Sink, queue_capacity=4096)
        system.connect(stage, sink)
        port_stage = system.spawn(PortStage, queue_capacity=4096)
        port_sink = system.spawn(Sink, queue_capacity=4096)
        system.connect(port_stage, port_sink, port="out")
        group_stage = system.spawn(PortStage, count=2, queue_capacity=4096)
        group_sink = system.spawn(Sink, count=2, queue_capacity=4096)
        system.connect(group_stage, group_sink, port="out")
        for n in range(COUNT):
            job = Job(sender=0, n=n, work=WORK)
            stage.send(job, timeout=None)
            port_stage.send(job, timeout=None)
        group_stage[0].send_many([Job(sender=0, n=n, work=WORK) for n in range(COUNT)], timeout=None)
        group_stage[1].send_many([Job(sender=0, n=n, work=WORK) for n in range(COUNT)], timeout=None)
        system.checkpoint(path)
        system.shutdown(drain=False)  # nothing is received here: every reply comes from the file
    images, groups, _, wiring = durability.decode_wired(path.read_bytes())
    assert wiring.links == [[stage.name, sink.name]]
    assert [port_stage.name, None, "out", port_sink.name, None] in wiring.ports
    assert [group_stage.name, 1, "out", group_sink.name, 1] in wiring.ports
    queued = sum(len(im.inputs) + len(im.k2k) + len(im.routed) for im in images)
    queued += sum(len(g.inputs) + len(g.routed) for g in groups)
    assert queued > 0, "the checkpoint should hold queued messages (raise WORK)"
    code = CHILD.format(here=str(HERE), backend=backend, path=str(path), count=COUNT)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["linked"]
    for key in ("k2k", "port", "g0", "g1"):
        ns, counts = out[key]
        assert ns == list(range(COUNT)), f"{key}: lost, duplicated or reordered"
        assert counts == list(range(1, COUNT + 1)), f"{key}: a message was handled twice"


def test_a_connect_pair_needs_both_ends_and_a_file_link_is_checked(tmp_path):
    with rk.ActorSystem() as system:
        stage, sink = system.spawn(Stage), system.spawn(Sink)
        system.connect(stage, sink)
        with pytest.raises(ValueError, match="Sink#2 without Stage#1"):
            system.checkpoint(tmp_path / "x.rkc", [sink])
        system.checkpoint(tmp_path / "x.rkc", [stage, sink])
    images, groups, hlc, wiring = durability.read_wired(tmp_path / "x.rkc")
    reversed_link = durability.Wiring([[sink.name, stage.name]])  # Sink's replies are not Jobs
    (tmp_path / "bad.rkc").write_bytes(durability.encode(images, hlc, groups, reversed_link))
    with rk.ActorSystem() as system:
        with pytest.raises(durability.CheckpointError, match="link .* no handler"):
            system.restore(tmp_path / "bad.rkc", [Stage, Sink])
        assert not system.actors  # nothing half-restored


def test_a_periodic_checkpoint_of_a_downstream_keeps_its_k2k_messages(tmp_path):
    # a downstream saved alone (a periodic checkpoint) has K2K messages and no link: a restore
    # delivers them through its input queue rather than dropping them
    with rk.ActorSystem() as system:
        stage, sink = system.spawn(Stage), system.spawn(Sink, queue_capacity=8)
        system.connect(stage, sink)
        for n in range(20):  # the sink's output (8) fills: the rest wait in its K2K queue
            stage.send(Job(sender=0, n=n, work=0), timeout=None)
        deadline = time.monotonic() + 10
        while len(sink.k2k) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        taken = durability.paused(system, sink, lambda: durability.image(sink))
        assert len(taken.k2k) >= 4
        held = len(taken.outputs) + len(taken.k2k)  # (the rest wait in the stage, not in this file)
        durability.write(tmp_path / "sink.rkc", durability.encode([taken], 0))
    with rk.ActorSystem() as system:
        [sink] = system.restore(tmp_path / "sink.rkc", [Sink])
        got = []
        while len(got) < held:
            got += [m.n for m in sink.receive_many(held, timeout=10)]
        assert got == list(range(held))
