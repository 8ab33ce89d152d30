"""Hybrid logical clock: monotonic, causal, robust to clock steps and logical overflow."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ringkernel.ringir.layout import HLC_EPOCH_US
from ringkernel.runtime.hlc import Hlc, pack, physical_now, unpack

BASE = HLC_EPOCH_US + 10**12


class SteppingClock:
    """A wall clock that returns the given readings in turn (it may step back)."""

    def __init__(self, readings: list[int]) -> None:
        self.readings = readings
        self.i = 0

    def __call__(self) -> int:
        value = self.readings[min(self.i, len(self.readings) - 1)]
        self.i += 1
        return value


events = st.lists(
    st.tuples(st.booleans(), st.integers(0, 2**20), st.integers(-(2**20), 2**20)), min_size=1, max_size=60
)


@settings(max_examples=200, deadline=None)
@given(events)
def test_timestamps_strictly_increase_even_when_the_clock_steps_back(script):
    clock = SteppingClock([BASE + offset for _, _, offset in script] * 2)
    hlc = Hlc(clock)
    last = 0
    for is_receive, remote_us, _ in script:
        if is_receive:
            remote = pack(remote_us + 10**12, 7)
            ts = hlc.receive(remote)
            assert ts > remote  # causality: after what it heard of
        else:
            ts = hlc.tick()
        assert ts > last
        last = ts
        assert hlc.last == ts


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 2**40), st.integers(0, 2**40))
def test_a_new_physical_time_resets_the_logical_counter(t0, dt):
    hlc = Hlc(lambda: HLC_EPOCH_US + t0)
    hlc.tick()
    first = unpack(hlc.tick())
    assert first == (t0, 1)
    hlc._clock = lambda: HLC_EPOCH_US + t0 + dt + 1
    assert unpack(hlc.tick()) == (t0 + dt + 1, 0)


def test_frozen_clock_counts_logically_and_overflow_carries_into_physical():
    hlc = Hlc(lambda: BASE, start=pack(BASE - HLC_EPOCH_US, 0xFFFE))
    assert unpack(hlc.tick()) == (BASE - HLC_EPOCH_US, 0xFFFF)
    assert unpack(hlc.tick()) == (BASE - HLC_EPOCH_US + 1, 0)  # no wrap, no repeat


def test_receive_takes_the_max_of_both_counters():
    hlc = Hlc(lambda: BASE, start=pack(BASE - HLC_EPOCH_US, 5))
    remote = pack(BASE - HLC_EPOCH_US, 9)
    assert unpack(hlc.receive(remote)) == (BASE - HLC_EPOCH_US, 10)
    ahead = pack(BASE - HLC_EPOCH_US + 50, 3)
    assert unpack(hlc.receive(ahead)) == (BASE - HLC_EPOCH_US + 50, 4)


@given(st.integers(0, 2**48 - 1), st.integers(0, 2**16 - 1))
def test_pack_unpack_round_trip(physical, logical):
    assert unpack(pack(physical, logical)) == (physical, logical)


def test_physical_now_is_microseconds_since_the_epoch():
    assert unpack(physical_now(lambda: HLC_EPOCH_US + 123)) == (123, 0)
    assert physical_now(lambda: 0) == 0  # before the epoch clamps


def test_max_drift_refuses_far_future_stamps_and_keeps_the_clock():
    import pytest

    from ringkernel.ringir.layout import HLC_EPOCH_US
    from ringkernel.runtime.hlc import MAX_TIMESTAMP, Hlc, HlcDriftError, physical_now

    now_us = [HLC_EPOCH_US + 10**12]
    clock = Hlc(clock=lambda: now_us[0], max_drift_us=1_000_000)
    before = clock.tick()
    with pytest.raises(HlcDriftError, match="ahead of the wall clock"):
        clock.receive(MAX_TIMESTAMP)
    assert clock.last == before
    near = physical_now(lambda: now_us[0] + 500_000)
    assert clock.receive(near) == near + 1  # within the bound: merged as usual
    unbounded = Hlc(clock=lambda: now_us[0])
    with pytest.raises(OverflowError):
        unbounded.receive(MAX_TIMESTAMP)
