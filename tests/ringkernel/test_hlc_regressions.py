"""Fuzzer findings in the hybrid logical clock, each with its reproducer (see docs/fuzzing.md)."""

from __future__ import annotations

import pytest

from ringkernel.runtime.hlc import MAX_TIMESTAMP, Hlc


def test_a_clock_can_receive_every_timestamp_a_clock_can_issue() -> None:
    # fuzz/hlc: tick() issued 2**64 - 1, and receive() of it raised
    # "ValueError: HLC timestamp out of range: 18446744073709551615".
    sender = Hlc(lambda: 0, start=MAX_TIMESTAMP - 1)
    sent = sender.tick()
    assert sent == MAX_TIMESTAMP
    receiver = Hlc(lambda: 0)
    with pytest.raises(OverflowError, match="exhausted"):
        receiver.receive(sent)  # the documented error: nothing is left after 2**64 - 1


@pytest.mark.parametrize("remote", [-1, MAX_TIMESTAMP + 1])
def test_timestamps_outside_64_bits_are_rejected(remote: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        Hlc(lambda: 0).receive(remote)
