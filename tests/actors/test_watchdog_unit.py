"""The watchdog and restart policy alone, on stand-in actors (no backend)."""

from __future__ import annotations

import time

import numpy as np

from ringkernel.ringir import layout as L
from ringkernel.supervision import RestartPolicy, Watchdog


class FakeActor:
    def __init__(self, busy: bool = True, broken: bool = False) -> None:
        self.name = "fake"
        self.ctrl = np.zeros(L.CONTROL_WORDS, dtype=np.uint32)
        self.policy_state = RestartPolicy()
        self.hung = self.failed = self.restarting = False
        self._busy, self.broken, self.failures = busy, broken, 0

    def busy(self) -> bool:
        if self.broken:
            raise RuntimeError("the actor pump failed")
        return self._busy

    def restart_from_initial(self, grace: float) -> bool:
        return True

    def fail(self) -> None:
        self.failed = True

    def wake(self) -> None:
        pass


def test_a_broken_actor_fails_and_the_watchdog_watches_on():
    broken, stuck = FakeActor(broken=True), FakeActor()
    dog = Watchdog(0.05, lambda: [broken, stuck])
    try:
        deadline = time.monotonic() + 5
        while not (broken.failed and stuck.failed) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        dog.close()
    assert broken.failed  # its runtime raised: marked failed, not a dead watchdog thread
    assert stuck.failed  # a hang with restart="never" that nothing aborts fails it, later
    assert not dog.thread.is_alive()


def test_an_idle_actor_is_never_hung():
    idle = FakeActor(busy=False)
    dog = Watchdog(0.02, lambda: [idle])
    time.sleep(0.2)
    dog.close()
    assert not (idle.hung or idle.failed)


def test_the_restart_window_forgets_old_restarts():
    policy = RestartPolicy("on_failure", max_restarts=2, window=10.0)
    assert policy.allows(0.0) and policy.allows(1.0)
    assert not policy.allows(2.0)  # a third within 10 s: a storm
    assert policy.allows(11.5)  # the first two are out of the window
    assert policy.count == 3
    assert not RestartPolicy("never").allows(0.0)
