"""Issue 18 with Vec fields (structs2): a cooperative 256-bin histogram over a 64-value
``Vec[u32, 64]`` message on 64 lanes into ``bins: Vec[u32, 256]`` state, against numpy on
cpu and wgpu; and DESIGN.md's ``Histogrammer`` example as written there."""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest

import ringkernel as rk
from ringkernel.runtime import backend_status

sys.path.insert(0, os.path.dirname(__file__))
from vec_hist_defs import Histogrammer, Samples, Values, VecHistogram  # noqa: E402

BACKENDS = ["cpu", "wgpu"]


def system_on(backend: str, **settings) -> rk.ActorSystem:
    ok, reason = backend_status(backend)
    if not ok:
        pytest.skip(f"{backend} unavailable here: {reason}")
    return rk.ActorSystem(backend=backend, **settings)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_cooperative_vec_histogram_matches_numpy(backend):
    n, per = 6, 3
    rng = np.random.default_rng(18)
    data = rng.integers(0, 1 << 20, size=(n, per, 64), dtype=np.uint32)
    with system_on(backend) as system:
        group = system.spawn(VecHistogram, count=n, queue_capacity=4)
        targets = np.repeat(np.arange(n), per)
        batch = np.zeros(n * per, dtype=Values.dtype)
        batch["values"] = data.reshape(n * per, 64)
        group.send_many(targets, batch, timeout=30.0)
        got = 0
        while got < n * per:
            got += len(group.receive_many(n * per, timeout=60.0)[0])
        state = group.state
    for i in range(n):
        expected = np.bincount((data[i].ravel() % 256), minlength=256)
        np.testing.assert_array_equal(state["bins"][i], expected)
    np.testing.assert_array_equal(state["messages"], per)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_design_histogrammer_example_runs_as_written(backend):
    assert Histogrammer.budget == 1_000_000 and Histogrammer.info.threads == 128
    with system_on(backend, workers=2, quantum=64) if backend == "cpu" else system_on(backend) as system:
        group = system.spawn(Histogrammer, count=100, queue_capacity=256)
        group[7].send(Samples(values=np.arange(16, dtype=np.float32)))
        group.broadcast(Samples(values=np.full(16, 300.0, dtype=np.float32)))
        deadline = time.monotonic() + 60
        while int(group.processed.sum()) < 101:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        bins = group.state["bins"]
    expected = np.zeros((100, 256), dtype=np.int64)
    expected[:, 300 % 256] = 16
    expected[7, :16] += 1
    np.testing.assert_array_equal(bins, expected)
