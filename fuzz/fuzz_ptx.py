"""Random valid RingIR -> PTX -> its validator; anything but a documented limit is a finding."""

from __future__ import annotations

from fuzz.harness import lower_and_check, probe_profile
from fuzz.ir_generator import FULL
from ringkernel.lowering.cuda import check_ptx

# CompileError messages the PTX lowering documents for valid modules.
ALLOWED: tuple[str, ...] = ()
SMOKE_RUNS = 150
PROFILE = probe_profile("ptx", FULL)


def test_one_input(data: bytes) -> None:
    lower_and_check(data, "ptx", PROFILE, check_ptx, ALLOWED)
