"""The hook every kernel launch passes: which ``rk.trace`` blocks are open.

Kept apart from :mod:`.trace` so that loading ``ringkernel.kernels`` costs
one tiny module, and an untraced launch one test of an empty list.
"""

from __future__ import annotations

import time
from typing import Any

KERNEL_TRACERS: list[Any] = []  # open rk.trace blocks (KernelTracer); launches check it first


def record_launch(name: str, started: float) -> None:
    """Records a launch that began at ``time.time()`` = ``started`` and has just returned."""
    end = time.time() * 1e6
    for tracer in list(KERNEL_TRACERS):
        tracer.record(name, started * 1e6, end)
