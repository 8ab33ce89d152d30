"""The watchdog over a stand-in actor group (no backend): instances watched together."""

from __future__ import annotations

import time

import numpy as np

from ringkernel.ringir import layout as L
from ringkernel.supervision import GroupFlags, RestartPolicy, Watchdog


class FakeGroup:
    def __init__(self, count: int, busy: list[bool], restart: str = "never", max_restarts: int = 3) -> None:
        self.name, self.count = "fake[3]", count
        self.ctrl = np.zeros(count * L.CONTROL_WORDS, dtype=np.uint32)
        self.supervision = GroupFlags(count, RestartPolicy(restart, max_restarts))
        self._busy = np.array(busy)
        self.restarted: list[int] = []

    def busy_instances(self) -> np.ndarray:
        return self._busy

    def restart_instance(self, index: int, grace: float) -> bool:
        self.restarted.append(index)
        self._busy[index] = False  # its restart got it going again
        return True

    def wake(self) -> None:
        pass


def _watch(group: FakeGroup, seconds: float, done) -> None:
    dog = Watchdog(0.05, tuple, lambda: [group])
    try:
        deadline = time.monotonic() + seconds
        while not done() and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        dog.close()


def test_only_the_stuck_instance_is_restarted():
    group = FakeGroup(3, [False, True, False], restart="on_failure")
    _watch(group, 5, lambda: group.restarted)
    assert group.restarted == [1]
    assert not group.supervision.failed.any() and not group.supervision.hung.any()
    assert group.supervision.policy_state.count == 1


def test_a_handler_that_ignores_its_abort_fails_only_its_instance():
    group = FakeGroup(3, [True, False, False])  # restart="never", and nothing ever aborts
    blocks = group.ctrl.reshape(3, L.CONTROL_WORDS)
    blocks[:, L.C["serial"]] = 7  # the message each instance is on
    _watch(group, 5, lambda: group.supervision.failed.any())
    assert group.supervision.failed.tolist() == [True, False, False]
    assert blocks[:, L.C["abort_at"]].tolist() == [7, 0, 0]  # asked through that instance's own block


def test_idle_instances_are_never_hung():
    group = FakeGroup(3, [False, False, False])
    _watch(group, 0.3, lambda: False)
    assert not group.supervision.hung.any() and not group.supervision.failed.any()
