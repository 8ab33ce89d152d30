"""The cuda group launch, tested without a GPU: G = min(N, resident) persistent blocks."""

from __future__ import annotations

import pytest

from ringkernel.runtime.cuda.actors import CudaActorRuntime, group_launch_config


def test_a_group_launch_never_asks_for_more_blocks_than_are_resident():
    assert group_launch_config(32, 10_000, 80) == {"block": (32, 1, 1), "grid": (80, 1, 1)}
    assert group_launch_config(1, 3, 80)["grid"] == (3, 1, 1)
    assert group_launch_config(1, 3, 0)["grid"] == (1, 1, 1)
    with pytest.raises(ValueError, match="at least one instance"):
        group_launch_config(1, 0, 80)


class _Driver:
    def __init__(self, sms):
        self.sms = sms

    def compute_capability(self):
        return 8, 0

    def multiprocessor_count(self):
        return self.sms


def test_resident_blocks_come_from_the_driver_when_it_knows():
    assert CudaActorRuntime(driver=_Driver(46)).resident_blocks() == 46
    silent = type("Silent", (), {"compute_capability": lambda self: (8, 0)})()  # no SM count
    assert CudaActorRuntime(driver=silent).resident_blocks() == 1
    assert CudaActorRuntime(driver=_Driver(0)).resident_blocks() == 1
