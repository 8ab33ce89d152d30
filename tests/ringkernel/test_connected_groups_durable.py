"""Groups joined by connect() (instance-wise K2K queues) migrate and checkpoint as one chain:
the messages waiting in the K2K queues between them are neither lost nor duplicated."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import ringkernel as rk

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from wiring_defs import Job, Sink, Stage  # noqa: E402

COUNT = 4
PER_INSTANCE = 2000


def _wgpu() -> None:
    from ringkernel.runtime import backend_status

    ok, reason = backend_status("wgpu")
    if not ok:
        pytest.skip(reason)


def _collect(ref, count: int) -> np.ndarray:
    parts, got = [], 0
    while got < count:
        rows = ref.receive_many(count - got, timeout=60, as_array=True)
        parts.append(rows)
        got += len(rows)
    return np.concatenate(parts)


def _check_each_exactly_once(sink, per_instance: int) -> None:
    for i in range(len(sink)):
        rows = _collect(sink[i], per_instance)
        assert rows["n"].tolist() == list(range(per_instance))  # all, once, in order
        assert rows["count"].tolist() == list(range(1, per_instance + 1))


def test_connected_groups_migrate_cpu_wgpu_cpu_with_messages_in_flight():
    _wgpu()
    with rk.ActorSystem("cpu") as system:
        stage = system.spawn(Stage, count=COUNT, queue_capacity=4096)
        sink = system.spawn(Sink, count=COUNT, queue_capacity=4096)
        system.connect(stage, sink)

        def feed() -> None:
            for i in range(COUNT):
                stage[i].send_many([Job(sender=i, n=n, work=300) for n in range(PER_INSTANCE)], timeout=None)

        feeder = threading.Thread(target=feed)
        feeder.start()
        moves = [system.migrate(sink, backend="wgpu"), system.migrate(stage, backend="cpu")]
        feeder.join()
        assert [(m.actors, m.target) for m in moves] == [([stage.name, sink.name], "wgpu"),
                                                         ([stage.name, sink.name], "cpu")]  # the chain
        assert stage.runtime is sink.runtime is system.runtime
        _check_each_exactly_once(sink, PER_INSTANCE)


CHILD = """
import json, sys
sys.path.insert(0, {here!r})
import numpy as np
import ringkernel as rk
from wiring_defs import Sink, Stage

with rk.ActorSystem({backend!r}) as system:
    stage, sink = system.restore({path!r}, [Stage, Sink])
    out = {{"linked": stage.downstream is sink and sink.upstream is stage}}
    for i in range(len(sink)):
        parts, got = [], 0
        while got < {count}:
            rows = sink[i].receive_many({count} - got, timeout=60, as_array=True)
            parts.append(rows)
            got += len(rows)
        rows = np.concatenate(parts)
        out[str(i)] = [rows["n"].tolist(), rows["count"].tolist()]
    print(json.dumps(out))
"""


@pytest.mark.parametrize("backend", ["cpu", "wgpu"])
def test_connected_groups_checkpoint_and_restore_in_a_new_process_exactly_once(tmp_path, backend):
    import json
    import subprocess

    from ringkernel import durability

    if backend == "wgpu":
        _wgpu()
    path = tmp_path / "groups.rkc"
    with rk.ActorSystem(backend) as system:
        stage = system.spawn(Stage, count=2, queue_capacity=4096)
        sink = system.spawn(Sink, count=2, queue_capacity=64)  # its replies fill: the K2K queues too
        system.connect(stage, sink)
        for i in range(2):
            stage[i].send_many([Job(sender=i, n=n, work=10) for n in range(1500)], timeout=None)
        deadline = time.monotonic() + 60
        while (stage.processed < 128).any() and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(ValueError, match="without"):
            system.checkpoint(tmp_path / "half.rkc", [sink])  # a connected group needs its peer
        system.checkpoint(path)
        system.shutdown(drain=False)  # nothing is received here: every reply comes from the file
    _, groups, _, wiring = durability.read_wired(path)
    assert wiring.links == [[groups[0].name, groups[1].name]]
    assert (groups[1].k2k_counts > 0).all()  # messages waited between the groups
    code = CHILD.format(here=str(HERE), backend=backend, path=str(path), count=1500)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["linked"]
    for i in ("0", "1"):
        assert out[i] == [list(range(1500)), list(range(1, 1501))]
