"""Checkpoint and restore (issue 20): the file round-trips an actor, in a new process too,
and a bad or incompatible file is a clear error that changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import durability
from ringkernel.runtime import backend_status

sys.path.insert(0, os.path.dirname(__file__))

from durable_defs import Add, Counter, CounterV2, Reordered, Sink, Total  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
N = 200


def _backend(name: str) -> str:
    ok, reason = backend_status(name)
    if not ok:
        pytest.skip(reason)
    return name


def _checkpoint_mid_stream(system: rk.ActorSystem, path: Path, work: int = 20_000) -> rk.ActorRef:
    """Sends N slow messages, checkpoints while some are still queued, receives nothing."""
    ref = system.spawn(Counter, queue_capacity=256)
    for i in range(1, N + 1):
        ref.send(Add(n=i, work=work))
    ref.checkpoint(path)
    return ref


@pytest.mark.parametrize("backend", ["cpu", "wgpu"])
def test_restore_in_a_new_process_delivers_queued_messages_exactly_once(backend, tmp_path):
    _backend(backend)
    path = tmp_path / "counter.rkc"
    work = 20_000 if backend == "cpu" else 2_000  # lavapipe stops shader loops at 65,535 iterations
    with rk.ActorSystem(backend=backend) as system:
        _checkpoint_mid_stream(system, path, work)
    [image], _ = durability.read(path)
    assert len(image.inputs) + image.ctrl["processed"] == N  # every message is queued or handled
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import ringkernel as rk
        from durable_defs import Counter
        with rk.ActorSystem(backend={backend!r}) as system:
            [ref] = system.restore({str(path)!r})
            replies = [ref.receive(timeout=30) for _ in range({N})]
            time.sleep(0.2)
            in_order = [r.count for r in replies] == list(range(1, {N} + 1))
            print(in_order, ref.pending(), ref.state, ref.stats["processed"])
        """
    )
    env = {**os.environ, "WGPU_BACKEND_TYPE": "Vulkan"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=240, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "True",
        "0",
        "{'count':",
        f"{N},",
        "'sum':",
        f"{N * (N + 1) // 2}}}",
        str(N),
    ]


def test_restore_keeps_state_counters_clock_and_send_sequence(tmp_path):
    path = tmp_path / "c.rkc"
    with rk.ActorSystem() as system:
        ref = system.spawn(Counter)
        asked = [ref.ask(Add(n=i, work=0)) for i in range(5)]
        ref.send(Add(n=100, work=0))  # its reply stays unreceived: the checkpoint holds it
        assert ref.receive(timeout=5) == Total(count=6, sum=110)
        ref.send(Add(n=1, work=0))  # maybe still queued at the checkpoint: handled once either way
        ref.checkpoint(path)
        clock = system.hlc.last
        assert ref.receive(timeout=5) == Total(count=7, sum=111)
        after = (ref.state, ref.stats["processed"], ref.sequence)
    [image], _ = durability.read(path)
    saved_hlc = image.ctrl["hlc_lo"] | image.ctrl["hlc_hi"] << 32
    assert asked[-1] == Total(count=5, sum=10)
    with rk.ActorSystem() as system:
        [copy] = system.restore(path)
        assert copy.receive(timeout=5) == Total(count=7, sum=111)
        assert copy.pending() == 0
        assert (copy.state, copy.stats["processed"], copy.sequence) == after
        assert copy.stats["hlc"] >= saved_hlc  # its clock goes on from the checkpoint's
        assert system.hlc.last > clock  # the host clock never runs behind the checkpoint's
        assert copy.ask(Add(n=9, work=0), timeout=5) == Total(count=8, sum=120)
        assert copy.stats["hlc"] > saved_hlc


def test_system_checkpoint_holds_every_actor_in_order(tmp_path):
    path = tmp_path / "all.rkc"
    with rk.ActorSystem() as system:
        refs = [system.spawn(Counter) for _ in range(3)]
        for k, ref in enumerate(refs):
            ref.ask(Add(n=k + 1, work=0))
        system.checkpoint(path)
    with rk.ActorSystem() as system:
        restored = system.restore(path)
        assert [r.state["sum"] for r in restored] == [1, 2, 3]


def test_a_compatible_class_change_restores_and_a_changed_layout_is_refused(tmp_path):
    path = tmp_path / "c.rkc"
    with rk.ActorSystem() as system:
        system.spawn(Counter).ask(Add(n=4, work=0))
        system.checkpoint(path)
    with rk.ActorSystem() as system:
        [ref] = system.restore(path, types={"Counter": CounterV2})
        assert ref.ask(Add(n=1, work=0), timeout=5) == Total(count=2, sum=5)
        with pytest.raises(
            durability.CheckpointError, match="changed its state layout.*same fields and types"
        ):
            system.restore(path, types={"Counter": Reordered})
        assert len(system.actors) == 1  # nothing half-restored


def _bad_files(good: bytes) -> dict[str, bytes]:
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x40
    return {
        "empty": b"",
        "foreign": b"PK\x03\x04 a zip file, not a checkpoint" * 4,
        "truncated": good[: len(good) - 7],
        "flipped": bytes(flipped),
        "newer": good[:8] + (99).to_bytes(4, "little") + good[12:],
    }


@pytest.mark.parametrize("kind", ["empty", "foreign", "truncated", "flipped", "newer"])
def test_a_bad_file_is_a_clear_error_and_spawns_nothing(kind, tmp_path):
    path = tmp_path / "c.rkc"
    with rk.ActorSystem() as system:
        system.spawn(Counter).send(Add(n=1, work=0))
        system.checkpoint(path)
    path.write_bytes(_bad_files(path.read_bytes())[kind])
    expected = {
        "empty": "not a ringkernel checkpoint",
        "foreign": "not a ringkernel checkpoint",
        "truncated": "checksum mismatch",
        "flipped": "checksum mismatch",
        "newer": "version 99",
    }
    with rk.ActorSystem() as system:
        with pytest.raises(durability.CheckpointError, match=expected[kind]) as info:
            system.restore(path)
        assert str(path) in str(info.value)
        assert system.actors == []


def test_a_valid_checksum_over_a_lying_header_is_still_refused(tmp_path):
    """A crafted file (right checksum) whose sections overrun the body is refused, not read past."""
    image = durability.Image(
        "durable_defs:Counter",
        "Counter#1",
        "x",
        [["count", "i32"], ["sum", "i32"]],
        4,
        "block",
        1,
        0,
        dict.fromkeys(durability.CTRL_WORDS, 0),
        np.zeros(4, np.uint32),
        np.zeros((0, 8), np.uint32),
        np.zeros((0, 8), np.uint32),
    )
    data = durability.encode([image], 0).replace(b'"shape": [4]', b'"shape": [9]')
    import hashlib

    data = data[:-32] + hashlib.sha256(data[:-32]).digest()
    with pytest.raises(durability.CheckpointError, match="runs past the end"):
        durability.decode(data)


def test_a_class_that_is_not_imported_is_named_in_the_error(tmp_path):
    path = tmp_path / "c.rkc"
    with rk.ActorSystem() as system:
        system.spawn(Counter)
        system.checkpoint(path)
    data = path.read_bytes().replace(b"durable_defs:Counter", b"nowhere_mod:Counter0")
    path.write_bytes(data[:-32] + __import__("hashlib").sha256(data[:-32]).digest())
    with rk.ActorSystem() as system:
        with pytest.raises(durability.CheckpointError, match="'nowhere_mod:Counter0', which is not imported"):
            system.restore(path)
        assert system.actors == []


def test_checkpointing_another_systems_actor_is_a_type_error(tmp_path):
    with rk.ActorSystem() as a, rk.ActorSystem() as b:
        ref = a.spawn(Counter)
        with pytest.raises(TypeError, match="actors spawned by this system"):
            b.checkpoint(tmp_path / "x.rkc", [ref])


def test_connected_and_failed_actors_are_refused_and_nothing_is_written(tmp_path):
    with rk.ActorSystem() as system:
        a, b = system.spawn(Counter), system.spawn(Sink)
        system.connect(a, b)
        with pytest.raises(ValueError, match="cannot checkpoint Counter#1 without Sink#2"):
            system.checkpoint(tmp_path / "x.rkc", [a])  # (both together are saved: test_checkpoint_wiring)
        lone = system.spawn(Counter)
        lone.fail()
        with pytest.raises(RuntimeError, match="cannot checkpoint Counter#3: it has failed"):
            lone.checkpoint(tmp_path / "x.rkc")
        assert not (tmp_path / "x.rkc").exists()
        a.send(Add(n=1, work=0))  # the refused checkpoint left the pair running
        assert within_seconds(lambda: b.state["seen"] == 1)


def within_seconds(done, timeout: float = 10.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_restore_that_cannot_spawn_here_spawns_nothing(tmp_path, monkeypatch):
    """A queue the device cannot bind is found before the first actor is spawned."""
    path = tmp_path / "two.rkc"
    with rk.ActorSystem() as system:
        system.spawn(Counter, queue_capacity=4)
        system.spawn(Counter, queue_capacity=1024)
        system.checkpoint(path)
    with rk.ActorSystem() as system:
        monkeypatch.setattr(system.runtime, "max_buffer_words", 2048, raising=False)
        with pytest.raises(ValueError, match="Counter#2 of"):
            system.restore(path)
        assert system.actors == []


def test_bad_restore_arguments_and_unwritable_paths_are_clear_errors(tmp_path):
    with rk.ActorSystem() as system:
        ref = system.spawn(Counter)
        with pytest.raises(FileNotFoundError, match="cannot write checkpoint '.*/missing/c.rkc'"):
            ref.checkpoint(tmp_path / "missing" / "c.rkc")
        assert not list(tmp_path.iterdir())
        ref.checkpoint(tmp_path / "c.rkc")
        with pytest.raises(TypeError, match="restore\\(types=\\) takes @rk.actor classes"):
            system.restore(tmp_path / "c.rkc", types="Counter")
        with pytest.raises(durability.CheckpointError, match="cannot read checkpoint .*nothing.rkc"):
            system.restore(tmp_path / "nothing.rkc")
        assert len(system.actors) == 1
