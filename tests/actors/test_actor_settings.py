"""Every ActorSystem/spawn/send/receive/connect/shutdown argument is checked at the call.

A bad value is a TypeError or ValueError naming the argument and its allowed
range, never an OverflowError from a control word later or a raw device error.
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest

import ringkernel as rk
from ringkernel.runtime import backend_status

sys.path.insert(0, os.path.dirname(__file__))
from actor_defs import Accumulator, Add, Doubler, Summer, Total  # noqa: E402
from bounded import within  # noqa: E402


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"idle_ns": -1}, ValueError, r"idle_ns must be an integer in \[0, 100000000\], got -1"),
        ({"idle_ns": 2**40}, ValueError, r"idle_ns must be an integer in \[0, 100000000\]"),
        ({"idle_ns": 1.5}, TypeError, "idle_ns must be an integer"),
        ({"idle_ns": True}, TypeError, "idle_ns must be an integer"),
        ({"batch": 2**40}, ValueError, r"batch must be an integer in \[1, 4294967295\]"),
        ({"batch": 0}, ValueError, r"batch must be an integer in \[1, 4294967295\]"),
        ({"batch": "8"}, TypeError, "batch must be an integer"),
        ({"drain_timeout": -1}, ValueError, "drain_timeout must be a number of seconds >= 0"),
        ({"drain_timeout": math.nan}, ValueError, "drain_timeout must be a number of seconds >= 0"),
        ({"drain_timeout": math.inf}, ValueError, "drain_timeout must be a number of seconds >= 0"),
        ({"drain_timeout": None}, TypeError, "drain_timeout must be a number of seconds"),
        ({"backend": 3}, TypeError, "backend must be a name"),
    ],
)
def test_bad_system_settings_fail_at_the_call(kwargs, error, message):
    with pytest.raises(error, match=message):
        rk.ActorSystem(**kwargs)


def test_numpy_numbers_are_accepted_everywhere(actor_backend):
    with rk.ActorSystem(
        backend=actor_backend, idle_ns=np.int64(20_000), batch=np.uint32(64), drain_timeout=np.float32(5)
    ) as system:
        acc = system.spawn(Accumulator, queue_capacity=np.int64(4), lanes=np.int32(1))
        acc.send(Add(value=1.0), timeout=np.float64(5.0))
        assert within(20, lambda: acc.receive(timeout=np.int64(5))) == Total(total=1.0, count=1)
        assert type(acc.capacity) is int and acc.capacity == 4
    assert system.idle_ns == 20_000 and type(system.batch) is int


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"queue_capacity": 3}, ValueError, "power of two"),
        ({"queue_capacity": 2**25}, ValueError, "at most 2\\*\\*24"),
        ({"queue_capacity": 4.0}, TypeError, "queue_capacity must be an integer power of two"),
        ({"queue_capacity": np.bool_(True)}, TypeError, "queue_capacity must be an integer"),
        ({"policy": "fifo"}, ValueError, "choose one of block, reject, drop_oldest"),
        ({"policy": None}, ValueError, "unknown queue policy None"),
        ({"lanes": 0}, ValueError, r"lanes must be an integer in \[1, 1024\], got 0"),
        ({"lanes": 2**20}, ValueError, r"lanes must be an integer in \[1, 1024\]"),
        ({"lanes": 2.0}, TypeError, "lanes must be an integer"),
    ],
)
def test_bad_spawn_settings_fail_at_the_call(kwargs, error, message):
    with rk.ActorSystem(backend="cpu") as system:
        with pytest.raises(error, match=message):
            system.spawn(Accumulator, **kwargs)
        assert system.actors == []  # nothing half-spawned


@pytest.mark.parametrize(
    "timeout, error, message",
    [
        (-1, ValueError, "timeout must be a number of seconds >= 0 or None"),
        (math.nan, ValueError, "timeout must be a number of seconds >= 0"),
        (math.inf, ValueError, r"or None \(wait without limit\)"),
        ("1", TypeError, "timeout must be a number of seconds or None"),
    ],
)
def test_bad_send_and_receive_timeouts_fail_at_the_call(timeout, error, message):
    with rk.ActorSystem(backend="cpu") as system:
        acc = system.spawn(Accumulator, queue_capacity=4)
        with pytest.raises(error, match=message):
            acc.send(Add(value=1.0), timeout=timeout)
        with pytest.raises(error, match=message):
            acc.receive(timeout=timeout)
        assert acc.stats["input"]["enqueued"] == 0  # the refused send sent nothing


def test_bad_connect_and_shutdown_arguments_fail_at_the_call():
    with rk.ActorSystem(backend="cpu") as other:
        stranger = other.spawn(Summer, queue_capacity=4)
        with rk.ActorSystem(backend="cpu") as system:
            a = system.spawn(Doubler, queue_capacity=4)
            with pytest.raises(TypeError, match="two actors spawned by this system; the second is 'b'"):
                system.connect(a, "b")
            with pytest.raises(TypeError, match="the second is <ActorRef Summer#1>"):
                system.connect(a, stranger)
            with pytest.raises(TypeError, match="drain must be True or False"):
                system.shutdown(drain="yes")
            with pytest.raises(ValueError, match="drain_timeout must be a number of seconds >= 0"):
                system.shutdown(drain_timeout=-1)
            assert not system.closed  # a refused shutdown changed nothing


def _needs(backend: str) -> None:
    ok, reason = backend_status(backend)
    if not ok:
        pytest.skip(reason)


@pytest.mark.parametrize("capacity", [2**22, 2**24])
def test_wgpu_refuses_a_queue_larger_than_a_storage_buffer_at_spawn(capacity):
    _needs("wgpu")
    with rk.ActorSystem(backend="wgpu") as system:
        limit = system.runtime.max_buffer_words * 4
        fits = 2
        while (16 + fits * 2 * 8) * 4 <= limit:
            fits *= 2
        if (16 + capacity * 8) * 4 <= limit:
            pytest.skip(f"this device binds {limit} bytes: capacity {capacity} fits")
        with pytest.raises(
            ValueError, match=f"at most {limit} bytes per buffer; use queue_capacity <= {fits}"
        ):
            system.spawn(Accumulator, queue_capacity=capacity)
        assert system.actors == []


def test_wgpu_runs_the_largest_queue_it_advertises():
    _needs("wgpu")
    with rk.ActorSystem(backend="wgpu") as system:
        limit = system.runtime.max_buffer_words
        capacity = 2
        while 16 + capacity * 2 * 8 <= limit and capacity < 2**24:
            capacity *= 2
        acc = system.spawn(Accumulator, queue_capacity=capacity)
        acc.send(Add(value=2.0))
        assert within(60, lambda: acc.receive(timeout=30)) == Total(total=2.0, count=1)
