"""Actor groups on cpu through the facade: ``spawn(count=N)``, the scheduler, admission.

Fairness and priority are checked on counts, never on times: the test holds a
group's turns (block 0's ``stop`` word, which every turn looks at first) while
it fills the queues, so what the scheduler does next does not race the sender.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np
import pytest

import ringkernel as rk
from ringkernel.ringir import layout as L
from ringkernel.runtime import backend_status

sys.path.insert(0, os.path.dirname(__file__))
from groupsys_defs import Counter, Put, Relay, Spin, Spinner  # noqa: E402

STOP = L.C["stop"]


def threads_now() -> int:
    return len(os.listdir("/proc/self/task"))


def hold(*groups) -> None:
    """Turns do nothing while block 0's stop word is set (nobody joins meanwhile)."""
    for g in groups:
        g.ctrl[STOP] = 1


def release(*groups) -> None:
    """Lets the groups' turns run again, in this order, once every worker sleeps (so no round
    is under way that could see some of them released and not others)."""
    scheduler = groups[0].system.runtime.scheduler()
    deadline = time.monotonic() + 10
    while scheduler.words[L.C["parked"]] != scheduler.workers:
        assert time.monotonic() < deadline, "the workers never went to sleep"
        time.sleep(0.001)
    for g in groups:
        g.ctrl[STOP] = 0
    groups[0].wake()


def test_ten_thousand_instances_receive_a_million_messages_in_order_once_each():
    count, per = 10_000, 100
    with rk.ActorSystem(backend="cpu", workers=2) as system:
        group = system.spawn(Counter, count=count, queue_capacity=128)
        batch = np.zeros(count * per, dtype=Put.dtype)
        batch["value"] = np.arange(count * per)
        group.send_many(np.repeat(np.arange(count), per), batch)  # the bulk API: one call
        indices, replies = [], []
        while sum(map(len, replies)) < count * per:
            i, r = group.receive_many(count * per, timeout=20.0)
            indices.append(i)
            replies.append(r)
        indices = np.concatenate(indices)
        assert (np.bincount(indices, minlength=count) == per).all()
        # row i: instance i's replies, as received
        got = np.concatenate(replies)[np.argsort(indices, kind="stable")].reshape(count, per)
        once_in_order = np.tile(np.arange(1, per + 1), (count, 1))
        np.testing.assert_array_equal(got["count"], once_in_order)
        np.testing.assert_array_equal(got["value"], np.arange(count * per).reshape(count, per))
        state = group.state
        np.testing.assert_array_equal(state["count"], per)
        assert int(group.processed.sum()) == count * per
        assert system.metrics()["groups"][group.name]["processed"] == count * per


def test_a_hundred_thousand_instances_run_on_the_workers_threads_only():
    before, py_before = threads_now(), threading.active_count()
    with rk.ActorSystem(backend="cpu", workers=2) as system:
        group = system.spawn(Counter, count=100_000, queue_capacity=2)
        group.broadcast(Put(value=3))
        for i in (0, 1, 50_000, 99_999):
            assert group[i].receive(timeout=10.0).value == 3
        deadline = time.monotonic() + 20
        while int(group.processed.sum()) < 100_000:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert threads_now() - before <= 2  # the scheduler's workers, nothing per instance
        assert threading.active_count() == py_before
        assert system.runtime.threads == 2
        np.testing.assert_array_equal(group.state["total"], 3)
    assert threads_now() <= before


def _stamps(ref, n=None) -> list[int]:
    """The HLC stamps of ``ref``'s replies: ``n`` of them, or (the system stopped) all it left."""
    out = []
    while n is None or len(out) < n:
        try:
            out += [m.envelope.hlc for m in ref.receive_many(1024, timeout=60.0)]
        except rk.ActorSystemStopped:
            break
        except rk.HandlerAborted:  # the stop aborted the handler under way: no reply for that one
            continue
    return out


def _flood(quantum: int) -> tuple[int, int]:
    """Instance 0 of a group gets 400 slow messages, the 63 others one light message each,
    all queued before the first turn (one worker); returns how many of the flood were handled
    before the last of the others, and the flood.

    "Before" is read from the replies' stamps: one worker handles every turn, and each
    reply is stamped with its instance's clock (the host's reaction time plays no part)."""
    flood = 400
    with rk.ActorSystem(backend="cpu", workers=1, quantum=quantum) as system:
        group = system.spawn(Spinner, count=64, queue_capacity=512)
        hold(group)
        group[0].send_many([Spin(rounds=100_000)] * flood)
        for i in range(1, 64):
            group[i].send(Spin(rounds=1))
        release(group)
        last_other = max(_stamps(group[i], 1)[0] for i in range(1, 64))
        system.shutdown(drain=False)  # the rest of the flood is not waited for
    return sum(stamp < last_other for stamp in _stamps(group[0])), flood


def test_a_flooded_instance_does_not_starve_the_others():
    done, flood = _flood(quantum=4)
    assert done <= 4  # the others were all served in the first round: <= quantum of the flood before


def test_without_deficit_round_robin_the_flood_goes_first():
    done, flood = _flood(quantum=2**32 - 1)  # "DRR off": one turn takes a whole queue
    assert done == flood


def test_higher_priority_groups_are_served_first():
    """A low-priority group is visited only in rounds where the high class made no progress:
    no low message is handled before high's last (read from the replies' stamps)."""
    with rk.ActorSystem(backend="cpu", workers=1, quantum=2) as system:
        low = system.spawn(Spinner, count=4, queue_capacity=64)
        high = system.spawn(Spinner, count=4, queue_capacity=64, priority=3)
        hold(low, high)
        for i in range(4):
            low[i].send_many([Spin(rounds=1000)] * 8)
            high[i].send_many([Spin(rounds=1000)] * 40)
        release(high, low)  # high first: a worker woken in between finds high's work
        last_high = max(max(_stamps(high[i], 40)) for i in range(4))
        low_stamps = [s for i in range(4) for s in _stamps(low[i], 8)]
        assert len(low_stamps) == 32  # then low is served, all of it
        assert sum(s < last_high for s in low_stamps) == 0


def test_admission_error_spawns_nothing_and_the_system_stays_usable():
    with rk.ActorSystem(backend="cpu", workers=2, max_actors=1000) as system:
        small = system.spawn(Counter, count=600, queue_capacity=4)
        threads = threads_now()
        with pytest.raises(rk.AdmissionError, match=r"max_actors=1000\) has 400 left"):
            system.spawn(Counter, count=500, queue_capacity=4)
        assert system.groups == [small] and system.admitted_actors == 600 and threads_now() == threads
        single = system.spawn(Counter)  # a single actor counts as one
        rest = system.spawn(Counter, count=399, queue_capacity=4)
        assert rest[398].ask(Put(value=5), timeout=5.0).value == 5
        assert small[599].ask(Put(value=6), timeout=5.0).value == 6
        assert single.ask(Put(value=7), timeout=5.0).value == 7
        assert system.admitted_actors == 1000
        with pytest.raises(rk.AdmissionError, match="max_actors"):
            system.spawn(Counter)


def test_max_memory_counts_the_bytes_of_queues_and_state():
    with rk.ActorSystem(backend="cpu", workers=1, max_memory=4_000_000) as system:
        with pytest.raises(rk.AdmissionError, match="max_memory"):
            system.spawn(Counter, count=10_000, queue_capacity=64)
        assert system.admitted_bytes == 0 and system.groups == [] and system.runtime.threads == 0
        group = system.spawn(Counter, count=100, queue_capacity=64)
        assert 0 < system.admitted_bytes <= 4_000_000
        assert group[7].ask(Put(value=1), timeout=5.0).count == 1


def test_broadcast_reaches_every_instance_once_also_those_already_addressed():
    with rk.ActorSystem(backend="cpu", workers=2) as system:
        group = system.spawn(Counter, count=500, queue_capacity=4)
        assert group[10].ask(Put(value=1), timeout=5.0).count == 1  # instance 10 has a ref now
        assert group.broadcast(Put(value=9)) == 500
        replies = [group[i].receive(timeout=10.0) for i in range(500)]
        assert [r.value for r in replies] == [9] * 500
        assert [r.count for r in replies] == [2 if i == 10 else 1 for i in range(500)]
        assert [r.envelope.source for r in replies] == [group.first_id + i for i in range(500)]
        np.testing.assert_array_equal(group.state["total"], [10 if i == 10 else 9 for i in range(500)])


def test_state_is_a_structured_array_one_row_per_instance():
    with rk.ActorSystem(backend="cpu") as system:
        group = system.spawn(Counter, count=50, queue_capacity=8)
        state = group.state
        assert state.shape == (50,) and state.dtype.names == ("count", "total")
        for i in range(0, 50, 7):
            group[i].send(Put(value=i + 1))
        for i in range(0, 50, 7):
            group[i].receive(timeout=5.0)
        state = group.state
        expected = np.zeros(50, np.uint32)
        expected[::7] = np.arange(0, 50, 7) + 1
        np.testing.assert_array_equal(state["total"], expected)
        np.testing.assert_array_equal(state["count"], expected > 0)
        assert group[14].state == {"count": 1, "total": 15}


def test_groups_of_equal_size_connect_instance_by_instance():
    with rk.ActorSystem(backend="cpu", workers=2) as system:
        counters = system.spawn(Counter, count=64, queue_capacity=8)
        relays = system.spawn(Relay, count=64, queue_capacity=8)
        system.connect(counters, relays)
        for i in range(64):
            counters[i].send(Put(value=i))
        for i in range(64):
            reply = relays[i].receive(timeout=10.0)
            assert reply.value == i + 1_000_000
            assert reply.envelope.source == relays.first_id + i
        np.testing.assert_array_equal(relays.state["seen"], 1)


def test_other_pairings_with_groups_say_what_works():
    with rk.ActorSystem(backend="cpu", workers=1) as system:
        a = system.spawn(Counter, count=4, queue_capacity=4)
        b = system.spawn(Relay, count=5, queue_capacity=4)
        single = system.spawn(Relay)
        with pytest.raises(ValueError, match="same size"):
            system.connect(a, b)
        with pytest.raises(ValueError, match="issue 23"):
            system.connect(a, single)
        with pytest.raises(ValueError, match="issue 23"):
            system.connect(a[0], single)
        assert a[1].ask(Put(value=2), timeout=5.0).value == 2  # nothing was changed


def test_shutdown_drains_every_instance_and_replies_stay_receivable():
    with rk.ActorSystem(backend="cpu", workers=2) as system:
        group = system.spawn(Counter, count=300, queue_capacity=16)
        for i in range(300):
            group[i].send_many([Put(value=i)] * 5)
    assert int(group.processed.sum()) == 1500
    assert [m.count for m in group[299].receive_many(10)] == [1, 2, 3, 4, 5]
    with pytest.raises(rk.ActorSystemStopped):
        group[3].send(Put(value=1))


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"workers": 0}, "workers must be an integer in \\[1, 256\\]"),
        ({"quantum": 0}, "quantum must be an integer in \\[1, 4294967295\\]"),
        ({"max_actors": 0}, "max_actors must be an integer >= 1"),
        ({"max_memory": -5}, "max_memory must be an integer >= 1"),
    ],
)
def test_system_settings_are_checked_with_their_range(settings, error):
    with pytest.raises(ValueError, match=error):
        rk.ActorSystem(backend="cpu", **settings)


def test_spawn_settings_of_groups_are_checked():
    with rk.ActorSystem(backend="cpu", workers=1) as system:
        with pytest.raises(ValueError, match="count must be an integer in"):
            system.spawn(Counter, count=0)
        with pytest.raises(ValueError, match="priority=2 orders actor groups"):
            system.spawn(Counter, priority=2)
        with pytest.raises(ValueError, match="unknown restart policy 'sometimes'"):
            system.spawn(Counter, count=2, restart="sometimes")  # groups take restart= (issue 19)
        group = system.spawn(Counter, count=3, queue_capacity=4)
        with pytest.raises(IndexError, match="instances 0 to 2"):
            group[3]
        assert group[-1] is group[2] and len(group) == 3 and len(list(group)) == 3
        assert isinstance(group, rk.ActorGroup)


def test_a_group_instance_reply_wait_wakes_on_the_reply():
    """A receive parked on an instance's reply bell is woken by the turn that replies."""
    with rk.ActorSystem(backend="cpu", workers=1) as system:
        group = system.spawn(Counter, count=8, queue_capacity=4)
        got = []
        waiter = threading.Thread(target=lambda: got.append(group[5].receive(timeout=10.0)))
        waiter.start()
        time.sleep(0.05)
        group[5].send(Put(value=4))
        waiter.join(10.0)
        assert got and got[0].value == 4


def test_the_single_actor_path_is_unchanged_next_to_groups():
    with rk.ActorSystem(backend="cpu", workers=1) as system:
        group = system.spawn(Counter, count=10, queue_capacity=4)
        single = system.spawn(Counter)
        assert single.ask(Put(value=1), timeout=5.0).count == 1
        assert group[9].ask(Put(value=2), timeout=5.0).count == 1
        assert single.id not in range(group.first_id, group.first_id + 10)


def test_a_group_larger_than_a_device_buffer_is_an_admission_error():
    ok, reason = backend_status("wgpu")
    if not ok:
        pytest.skip(reason)
    with rk.ActorSystem(backend="wgpu") as system:
        with pytest.raises(rk.AdmissionError, match="in one buffer, but this device allows at most"):
            system.spawn(Counter, count=1 << 20, queue_capacity=64)
        assert system.groups == [] and system.admitted_actors == 0
        with pytest.raises(ValueError, match="no priority classes"):
            system.spawn(Counter, count=4, priority=1)
        group = system.spawn(Counter, count=4, queue_capacity=4)
        assert group[3].ask(Put(value=8), timeout=30.0).value == 8


def test_a_system_checkpoint_does_not_leave_groups_out_silently(tmp_path):
    with rk.ActorSystem(backend="cpu", workers=1) as system:
        single = system.spawn(Counter)
        group = system.spawn(Counter, count=3, queue_capacity=4)
        system.checkpoint(tmp_path / "all.ckpt")  # groups are in it now (test_actor_groups2_durable)
        _, groups, _ = rk.actors.durability.read_all(tmp_path / "all.ckpt")
        assert [g.name for g in groups] == [group.name]
        with pytest.raises(ValueError, match="checkpoint its whole group"):
            system.checkpoint(tmp_path / "one.ckpt", [group[1]])
        system.checkpoint(tmp_path / "single.ckpt", [single])  # single actors still work
        assert (tmp_path / "single.ckpt").exists()
