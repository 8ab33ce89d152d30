"""Launch overhead: a trivial kernel (one work-item, one store) against a one-element numpy add.

This is the fixed cost every launch pays (argument checks, dispatch, the
native call or GPU submission), which dominates small kernels.
"""

from __future__ import annotations

import numpy as np

from bench.kernels import noop
from bench.report import Row, Skipped
from bench.settings import Settings
from bench.timing import measure_pair
from bench.wgpu_cpu import adapter_label

SUITE = "launch overhead"
BASELINE = "numpy add, 1 element"


def run(settings: Settings) -> list[Row]:
    a, b, c = (np.ones(1, np.float32) for _ in range(3))
    x = np.zeros(1, np.float32)
    backends = {"cpu": "cpu"}
    try:
        backends["wgpu"] = f"wgpu [{adapter_label()}]"
    except Skipped:
        pass
    rows = []
    for backend, label in backends.items():
        ours, numpy = measure_pair(
            lambda b=backend: noop.launch(1, 1, (x,), backend=b),
            lambda: np.add(a, b, out=c),
            settings.repeats,
            settings.min_time,
        )
        rows.append(Row(SUITE, f"trivial kernel, {label}", ours.median, BASELINE, numpy.median))
    return rows
