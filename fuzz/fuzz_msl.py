"""Random valid RingIR -> MSL -> its validator; anything but a documented limit is a finding."""

from __future__ import annotations

from fuzz.harness import lower_and_check, probe_profile
from fuzz.ir_generator import MSL
from ringkernel.lowering.msl import check_msl

# CompileError messages the MSL lowering documents for valid modules.
ALLOWED: tuple[str, ...] = (
    r"Metal has no portable 64-bit atomics",
    r"cannot lower (Fence|Backoff|Clock) statements",
)
SMOKE_RUNS = 150
PROFILE = probe_profile("msl", MSL)


def test_one_input(data: bytes) -> None:
    lower_and_check(data, "msl", PROFILE, check_msl, ALLOWED)
