"""Random valid RingIR -> WGSL -> its validator; anything but a documented limit is a finding."""

from __future__ import annotations

from fuzz.harness import lower_and_check, probe_profile
from fuzz.ir_generator import WGSL
from ringkernel.lowering.wgsl import check_wgsl

# CompileError messages the WGSL lowering documents for valid modules.
ALLOWED: tuple[str, ...] = (r"cannot lower (Fence|Backoff|Clock) statements",)
SMOKE_RUNS = 150
PROFILE = probe_profile("wgsl", WGSL)


def test_one_input(data: bytes) -> None:
    lower_and_check(data, "wgsl", PROFILE, check_wgsl, ALLOWED)
