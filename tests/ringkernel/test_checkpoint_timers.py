"""Pending ``self.schedule`` timers in checkpoints (format version 4) and migrations: a timer the
router still holds is saved with its absolute due time, re-armed by a restore (in a NEW process)
and delivered exactly once; a migrated actor's timers still reach it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import ringkernel as rk
from ringkernel import durability

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from timer_defs import Alarm, Arm, WideAlarm  # noqa: E402

DELAY_S = 1.5  # the timers' delay
SLOW_DELAY_S = 4.0  # long enough for lavapipe to run the five Arm handlers first

CHILD = """
import json, sys, time
sys.path.insert(0, {here!r})
import ringkernel as rk
from timer_defs import Alarm

with rk.ActorSystem({backend!r}) as system:
    start = time.time()
    units = system.restore({path!r}, [Alarm])
    out = {{}}
    for unit in units:
        refs = list(unit) if hasattr(unit, "refs") else [unit]
        for k, ref in enumerate(refs):
            got = [ref.receive(timeout=30) for _ in range({each}.get(unit.name, 1))]
            out[unit.name + str(k)] = [[m.tag, m.fired] for m in got]
    out["seconds"] = time.time() - start
    extra = 0
    for unit in units:  # nothing more may come: each timer fires once
        for ref in (list(unit) if hasattr(unit, "refs") else [unit]):
            try:
                ref.receive(timeout=0.3)
                extra += 1
            except rk.ReceiveTimeout:
                pass
    out["extra"] = extra
    out["pending"] = system.routing.router.timers_pending
    print(json.dumps(out))
"""


def _backend(backend: str) -> None:
    from ringkernel.runtime import backend_status

    ok, reason = backend_status(backend)
    if not ok:
        pytest.skip(reason)


def _restore_in_child(path: Path, backend: str, each: dict[str, int]) -> dict:
    code = CHILD.format(here=str(HERE), backend=backend, path=str(path), each=each)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", ["cpu", "wgpu"])
def test_pending_timers_restore_in_a_new_process_exactly_once(tmp_path, backend):
    _backend(backend)
    path = tmp_path / "timers.rkc"
    with rk.ActorSystem(backend) as system:
        alarm = system.spawn(Alarm)
        group = system.spawn(Alarm, count=3)
        alarm.send(Arm(tag=7, delay_us=int(SLOW_DELAY_S * 1e6)))
        alarm.send(Arm(tag=8, delay_us=int(SLOW_DELAY_S * 1e6) + 1000))
        for i in range(3):
            group[i].send(Arm(tag=100 + i, delay_us=int(SLOW_DELAY_S * 1e6)))
        deadline = time.monotonic() + 10
        while system.routing.router.timers_pending < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert system.routing.router.timers_pending == 5
        system.checkpoint(tmp_path / "timers.rkc")
        system.shutdown(drain=False)  # the timers die with this system: only the file has them
    images, groups, _ = durability.read_all(path)
    due = durability._due_us(images[0].timer_due)
    assert due == sorted(due) and due[1] - due[0] >= 1000  # due order, µs apart as scheduled
    assert images[0].timers[:, 6].tolist() == [7, 8]  # the Ring payload (tag), in due order
    assert groups[0].timer_counts.tolist() == [1, 1, 1]
    out = _restore_in_child(path, backend, {images[0].name: 2})
    assert out[f"{images[0].name}0"] == [[7, 1], [8, 2]]
    assert out[f"{groups[0].name}0"] == [[100, 1]]
    assert out[f"{groups[0].name}2"] == [[102, 1]]
    assert out["pending"] == 0 and out["extra"] == 0
    assert out["seconds"] < SLOW_DELAY_S + 10  # the absolute due time was kept: it did not start over late


def test_a_restore_fires_both_timers_of_one_actor_in_due_order(tmp_path):
    path = tmp_path / "two.rkc"
    with rk.ActorSystem("cpu") as system:
        alarm = system.spawn(Alarm)
        alarm.send(Arm(tag=1, delay_us=int(DELAY_S * 1e6)))
        alarm.send(Arm(tag=2, delay_us=int(DELAY_S * 1e6) + 1000))
        deadline = time.monotonic() + 10
        while system.routing.router.timers_pending < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        system.checkpoint(path)
        system.shutdown(drain=False)
    with rk.ActorSystem("cpu") as system:
        (alarm,) = system.restore(path, [Alarm])
        got = [alarm.receive(timeout=30) for _ in range(2)]
        assert [(m.tag, m.fired) for m in got] == [(1, 1), (2, 2)]
        with pytest.raises(rk.ReceiveTimeout):
            alarm.receive(timeout=0.3)


def test_a_timer_already_due_fires_at_once_after_a_late_restore(tmp_path):
    path = tmp_path / "late.rkc"
    with rk.ActorSystem("cpu") as system:
        alarm = system.spawn(Alarm)
        alarm.send(Arm(tag=5, delay_us=int(DELAY_S * 1e6)))
        deadline = time.monotonic() + 10
        while system.routing.router.timers_pending < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        system.checkpoint(path)
        system.shutdown(drain=False)
    time.sleep(DELAY_S + 0.2)  # the file's timer is overdue now
    with rk.ActorSystem("cpu") as system:
        start = time.monotonic()
        (alarm,) = system.restore(path, [Alarm])
        msg = alarm.receive(timeout=10)
        assert (msg.tag, msg.fired) == (5, 1)
        assert time.monotonic() - start < DELAY_S  # not re-delayed by a full delay


@pytest.mark.parametrize("route", [("cpu", "wgpu"), ("wgpu", "cpu")])
def test_a_pending_timer_survives_a_migration(route):
    first, second = route
    _backend("wgpu")
    with rk.ActorSystem(first) as system:
        alarm = system.spawn(Alarm)
        alarm.send(Arm(tag=9, delay_us=int(DELAY_S * 1e6)))
        deadline = time.monotonic() + 10
        while system.routing.router.timers_pending < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert system.routing.router.timers_pending == 1  # held by the router while it moves
        system.migrate(alarm, backend=second)
        msg = alarm.receive(timeout=30)
        assert (msg.tag, msg.fired) == (9, 1)
        assert system.routing.router.timers_pending == 0


def test_a_version_3_file_still_restores_without_timers(tmp_path):
    with rk.ActorSystem("cpu") as system:
        system.spawn(Alarm)
        system.checkpoint(tmp_path / "v4.rkc")
        (image,) = durability.read(tmp_path / "v4.rkc")[0]
    data = bytearray((tmp_path / "v4.rkc").read_bytes()[: -durability.DIGEST_BYTES])
    data[8:12] = (3).to_bytes(4, "little")  # a version 3 reader ignores the timer sections
    import hashlib

    v3 = bytes(data) + hashlib.sha256(bytes(data)).digest()
    images, _ = durability.decode(v3)
    assert len(images[0].timers) == 0 and images[0].timer_due.shape == (0, 2)
    assert np.array_equal(images[0].state, image.state)


def test_a_timer_section_that_does_not_match_is_a_clear_error():
    rows = np.zeros((2, 8), np.uint32)
    image = durability.Image("m:A", "A#1", "f", [], 2, "block", 1, 0, dict.fromkeys(durability.CTRL_WORDS, 0),
                             np.zeros(1, np.uint32), np.zeros((0, 8), np.uint32), np.zeros((0, 8), np.uint32),
                             timers=rows, timer_due=np.zeros((1, 2), np.uint32))
    with pytest.raises(durability.CheckpointError, match="timer_due section"):
        durability.decode(durability.encode([image], 0))


@pytest.mark.parametrize("backend", ["cpu", "wgpu"])
def test_timers_of_different_widths_due_together_all_fire(backend):
    """Held rows of two widths due in one round (a restore re-arms both at once)."""
    from timer_defs import Ring, WideRing

    from ringkernel.actors import message_info

    _backend(backend)
    with rk.ActorSystem(backend) as system:
        alarm, wide = system.spawn(Alarm), system.spawn(WideAlarm)
        routing = system.routing
        now_us = routing.now_us()
        for ref, msg, tag in ((alarm, Ring, 1), (wide, WideRing, 2), (alarm, Ring, 3)):
            info = message_info(msg)
            row = np.zeros(info.slot_words, np.uint32)
            row[0], row[6] = info.type_id, tag
            routing.router.add_timer(routing.member(ref).base, now_us - 1, row)
        routing.wake()
        got = [(m.tag, m.fired) for m in [alarm.receive(timeout=30), alarm.receive(timeout=30)]]
        assert got == [(1, 1), (3, 2)]
        assert (wide.receive(timeout=30).tag, routing.router.stats()["timers_fired"]) == (2, 3)


def test_a_timer_set_after_a_wider_talker_joined_fires_on_cpu():
    """The cpu router re-makes its timer inbox wider when such a talker is spawned; its timer
    thread, asleep on the old inbox's bell with nothing due, must still see the next timer."""
    with rk.ActorSystem("cpu") as system:
        alarm = system.spawn(Alarm)
        time.sleep(0.2)  # the timer thread parks with nothing due (no timeout)
        system.spawn(WideAlarm)
        alarm.send(Arm(tag=4, delay_us=1000))
        msg = alarm.receive(timeout=10)
        assert (msg.tag, msg.fired) == (4, 1)
