"""Hybrid logical clocks: random tick/receive/clock-step sequences stay monotonic and causal.

Several clocks (the actors of one system) read one fake wall clock that the
input steps forward, backward, far ahead or not at all.  The input sends
messages between clocks (``tick`` at the sender, ``receive`` at the
receiver, maybe late and out of order) and reads timestamps.  Checked after
every step:

- monotonic: each clock's timestamps strictly increase, whatever the wall
  clock does;
- causal: a received message's timestamp is less than the receiver's
  timestamp for the receive, hence less than everything the receiver issues
  later (happened-before implies a smaller timestamp);
- bounded drift: a timestamp's physical part is never behind the wall clock
  (within the 48-bit range) and is ahead of the largest wall-clock reading
  seen only by the logical counter's carries;
- ``pack``/``unpack`` round-trip, and a remote timestamp out of range raises
  ``ValueError`` (the documented error), an exhausted clock ``OverflowError``
  (only when it really has no timestamp left: a merged remote near 2**64).
"""

from __future__ import annotations

from fuzz.harness import Finding
from ringkernel.ringir.layout import HLC_EPOCH_US, HLC_LOGICAL_BITS, HLC_PHYSICAL_MASK
from ringkernel.runtime.hlc import MAX_TIMESTAMP, Hlc, pack, physical_now, unpack

SMOKE_RUNS = 3000


def test_one_input(data: bytes) -> None:
    import atheris

    fdp = atheris.FuzzedDataProvider(data)
    now = [HLC_EPOCH_US + fdp.ConsumeIntInRange(0, 1 << 40)]
    clock = lambda: now[0]  # noqa: E731 (the clock the Hlcs read)
    clocks = [Hlc(clock) for _ in range(fdp.ConsumeIntInRange(1, 4))]
    last = [0] * len(clocks)
    in_flight: list[tuple[int, int]] = []  # (receiver, timestamp)
    max_wall = physical_now(clock)

    def issued(i: int, ts: int, what: str) -> None:
        nonlocal max_wall
        if ts <= last[i]:
            raise Finding(f"clock {i} went from {last[i]:#x} to {ts:#x} on {what}")
        last[i] = ts
        wall = physical_now(clock)
        max_wall = max(max_wall, wall)
        if ts < wall:
            raise Finding(f"{what}: timestamp {ts:#x} behind the wall clock {wall:#x}")
        if unpack(ts).packed != ts or pack(*unpack(ts)) != ts:
            raise Finding(f"pack/unpack do not round-trip {ts:#x}")

    for _ in range(fdp.ConsumeIntInRange(0, 300)):
        op = fdp.ConsumeIntInRange(0, 6)
        i = fdp.ConsumeIntInRange(0, len(clocks) - 1)
        if op == 0:  # the wall clock moves: forward, back, a jump, or stays
            step = fdp.ConsumeIntInRange(-(1 << 20), 1 << 20)
            if fdp.ConsumeIntInRange(0, 15) == 0:
                step = fdp.ConsumeIntInRange(-(1 << 49), 1 << 49)
            now[0] = max(0, now[0] + step)
        elif op in (1, 2):  # local event / send
            try:
                ts = clocks[i].tick()
            except OverflowError:
                if last[i] + 1 <= MAX_TIMESTAMP:
                    raise Finding(f"tick overflowed at {last[i]:#x} with room left") from None
                return  # exhausted (a remote near 2**64 got merged), as documented
            issued(i, ts, "tick")
            if op == 2:
                in_flight.append((fdp.ConsumeIntInRange(0, len(clocks) - 1), ts))
        elif op == 3 and in_flight:  # deliver some message, maybe out of order
            receiver, sent = in_flight.pop(fdp.ConsumeIntInRange(0, len(in_flight) - 1))
            try:
                ts = clocks[receiver].receive(sent)
            except OverflowError:
                if max(last[receiver], sent) + 1 <= MAX_TIMESTAMP:
                    raise Finding(f"receive({sent:#x}) overflowed with room left") from None
                return
            issued(receiver, ts, "receive")
            if not sent < ts:
                raise Finding(f"receive of {sent:#x} gave {ts:#x}: not after the send")
        elif op == 4:  # a remote timestamp from anywhere (another machine, garbage)
            remote = fdp.ConsumeIntInRange(-1, MAX_TIMESTAMP + 1)
            try:
                ts = clocks[i].receive(remote)
            except ValueError:
                if 0 <= remote <= MAX_TIMESTAMP:
                    raise Finding(f"receive({remote:#x}) raised ValueError for a valid timestamp") from None
                continue
            except OverflowError:
                if max(last[i], remote) + 1 <= MAX_TIMESTAMP:
                    raise Finding(f"receive({remote:#x}) overflowed with room left") from None
                return  # the clock is exhausted, as documented; nothing more to check
            if not 0 <= remote <= MAX_TIMESTAMP:
                raise Finding(f"receive accepted the out-of-range timestamp {remote}")
            issued(i, ts, "receive")
            if not remote < ts:
                raise Finding(f"receive of {remote:#x} gave {ts:#x}: not after it")
        elif op == 5:
            if clocks[i].last != last[i]:
                raise Finding(f"clock {i}.last = {clocks[i].last:#x}, issued {last[i]:#x}")
        else:
            physical = fdp.ConsumeIntInRange(-1, HLC_PHYSICAL_MASK + 1)
            logical = fdp.ConsumeIntInRange(-1, (1 << HLC_LOGICAL_BITS))
            valid = 0 <= physical <= HLC_PHYSICAL_MASK and 0 <= logical < (1 << HLC_LOGICAL_BITS)
            try:
                packed = pack(physical, logical)
            except ValueError:
                if valid:
                    raise Finding(f"pack({physical}, {logical}) rejected valid parts") from None
                continue
            if not valid or tuple(unpack(packed)) != (physical, logical):
                raise Finding(f"pack({physical}, {logical}) = {packed:#x} does not round-trip")
