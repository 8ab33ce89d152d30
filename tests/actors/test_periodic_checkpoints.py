"""Periodic checkpoints (issue 20): the last K kept, settings checked with their range, a
restart starts from the latest checkpoint, and a crash mid-checkpoint keeps the previous one."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import ringkernel as rk
from ringkernel import durability

sys.path.insert(0, os.path.dirname(__file__))

from durable_defs import Add, Counter  # noqa: E402
from supervision_defs import Spin, Unbounded  # noqa: E402


def _until(done, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(0.01)
    return bool(done())


def test_periodic_checkpoints_keep_the_last_k_and_restore(tmp_path):
    with rk.ActorSystem() as system:
        ref = system.spawn(Counter, checkpoint_every=0.02, checkpoint_dir=tmp_path, checkpoint_keep=2)
        ref.ask(Add(n=5, work=0))
        assert _until(lambda: len(durability.checkpoints(tmp_path, ref.name)) == 2)
        first = durability.checkpoints(tmp_path, ref.name)[0]
        assert _until(lambda: not first.exists())  # older ones go
    files = durability.checkpoints(tmp_path, "Counter#1")
    assert len(files) == 2 and not list(tmp_path.glob(".*tmp*"))
    with rk.ActorSystem() as system:
        [copy] = system.restore(files[-1])
        assert copy.state == {"count": 1, "sum": 5}


@pytest.mark.parametrize(
    ("settings", "error", "text"),
    [
        (
            {"checkpoint_every": 0.001, "checkpoint_dir": "."},
            ValueError,
            r"checkpoint_every .* in \[0.01, 86400",
        ),
        ({"checkpoint_every": "1", "checkpoint_dir": "."}, TypeError, "checkpoint_every must be a number"),
        ({"checkpoint_every": 1.0}, ValueError, "checkpoint_every needs checkpoint_dir"),
        ({"checkpoint_dir": "."}, ValueError, "checkpoint_dir needs checkpoint_every"),
        (
            {"checkpoint_every": 1.0, "checkpoint_dir": "/nonexistent/x"},
            ValueError,
            "not an existing directory",
        ),
        (
            {"checkpoint_every": 1.0, "checkpoint_dir": ".", "checkpoint_keep": 0},
            ValueError,
            r"in \[1, 10000\]",
        ),
    ],
)
def test_checkpoint_settings_are_checked_with_their_range(settings, error, text):
    with rk.ActorSystem() as system:
        with pytest.raises(error, match=text):
            system.spawn(Counter, **settings)
        assert system.actors == []


def test_a_restart_starts_from_the_latest_checkpoint(tmp_path):
    with rk.ActorSystem(backend="cpu", watchdog_timeout=0.2) as system:
        ref = system.spawn(
            Unbounded, queue_capacity=8, restart="on_failure", checkpoint_every=0.05, checkpoint_dir=tmp_path
        )
        assert ref.ask(Spin(n=7), timeout=10).total == 7
        assert _until(lambda: len(durability.checkpoints(tmp_path, ref.name)) >= 1)
        ref.send(Spin(n=-1))
        ref.send(Spin(n=2))
        with pytest.raises(rk.HandlerAborted, match="watchdog"):
            ref.receive(timeout=10)
        after = ref.receive(timeout=10)
        assert (after.total, after.calls) == (9, 2)  # the checkpointed state (7, 1), then that message
        assert ref.stats["restarts"] == 1


def test_a_crash_between_write_and_rename_leaves_the_previous_checkpoint_valid(tmp_path):
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import ringkernel as rk
        from ringkernel import durability
        from durable_defs import Add, Counter
        system = rk.ActorSystem()
        ref = system.spawn(Counter)
        ref.ask(Add(n=3, work=0))
        ref.checkpoint({str(tmp_path / "c.rkc")!r})
        ref.ask(Add(n=4, work=0))
        durability.after_write = lambda tmp: os._exit(17)
        ref.checkpoint({str(tmp_path / "c.rkc")!r})
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 17, done.stderr
    assert len(list(tmp_path.glob(".c.rkc.tmp-*"))) == 1  # the crash left its temp file behind
    with rk.ActorSystem() as system:
        [copy] = system.restore(tmp_path / "c.rkc")
        assert copy.state == {"count": 1, "sum": 3}


def test_a_restart_after_an_explicit_checkpoint_starts_from_it(tmp_path):
    with rk.ActorSystem(backend="cpu", watchdog_timeout=0.2) as system:
        ref = system.spawn(Unbounded, queue_capacity=8, restart="on_failure")
        assert ref.ask(Spin(n=5), timeout=10).total == 5
        ref.checkpoint(tmp_path / "u.rkc")
        ref.send(Spin(n=-1))
        ref.send(Spin(n=1))
        with pytest.raises(rk.HandlerAborted, match="watchdog"):
            ref.receive(timeout=10)
        after = ref.receive(timeout=10)
        assert (after.total, after.calls) == (6, 2)


@pytest.mark.parametrize("backend", ["cpu", "wgpu"])
def test_checkpoints_under_a_steady_stream_lose_and_duplicate_nothing(backend, tmp_path):
    from ringkernel.runtime import backend_status

    ok, reason = backend_status(backend)
    if not ok:
        pytest.skip(reason)
    n, batch = 20_000, 500
    with rk.ActorSystem(backend=backend) as system:
        ref = system.spawn(Counter, queue_capacity=1024, checkpoint_every=0.01, checkpoint_dir=tmp_path)
        counts: list[int] = []
        for start in range(0, n, batch):
            ref.send_many([Add(n=1, work=0) for _ in range(batch)], timeout=30)
            counts += [r.count for r in ref.receive_many(batch, timeout=30)]
            while len(counts) < start + batch:
                counts += [r.count for r in ref.receive_many(batch, timeout=30)]
            time.sleep(0.002)  # the stream spans several checkpoint periods even on a fast machine
        assert counts == list(range(1, n + 1))
        assert ref.state == {"count": n, "sum": n}
    files = durability.checkpoints(tmp_path, ref.name)  # the checkpoint thread has stopped
    assert files, "no checkpoint was taken during the stream"
    for path in files:
        [image], _ = durability.read(path)
        handled = image.ctrl["processed"]
        assert image.state[0] == handled  # the state is that of a message boundary
        assert handled + len(image.inputs) <= n
