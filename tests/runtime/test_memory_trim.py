"""Pooled device-array memory goes back to the device: ``rk.trim_memory`` and out-of-memory retries."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import ringkernel as rk
from ringkernel.runtime import get_backend


def _pool_some(backend: str) -> None:
    arrays = [rk.device_array(n, np.float32, backend) for n in (100, 5000, 300_000)]
    del arrays
    gc.collect()


def test_trim_gives_pooled_memory_back(backend: str) -> None:
    rk.trim_memory(backend)
    kept = rk.to_device(np.arange(64, dtype=np.float32), backend)
    _pool_some(backend)
    pooled = rk.memory_info(backend)["pooled"]
    assert pooled >= 4 * 300_000
    assert rk.trim_memory(backend) == pooled
    info = rk.memory_info(backend)
    assert info["pooled"] == 0 and info["in_use"] >= 256
    assert np.array_equal(kept.numpy(), np.arange(64, dtype=np.float32))  # arrays in use are untouched
    made = info["allocations"]
    rk.device_array(100, np.float32, backend)
    assert rk.memory_info(backend)["allocations"] == made + 1  # the pool was empty: a new allocation


def test_trim_without_a_backend_trims_every_backend_in_use(backend: str) -> None:
    _pool_some(backend)
    assert rk.trim_memory() > 0
    assert rk.memory_info(backend)["pooled"] == 0


def test_out_of_memory_trims_the_pool_and_tries_again(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    memory = get_backend(backend).memory
    _pool_some(backend)
    assert memory.info()["pooled"] > 0
    pool = memory._pool
    real_fresh = type(pool).fresh
    failures = []

    def failing_once(self, size, make, destroy):
        def make_or_fail():
            if not failures:
                failures.append(self.pooled)
                raise MemoryError("simulated: the device is full")
            return make()
        return real_fresh(self, size, make_or_fail, destroy)

    monkeypatch.setattr(type(pool), "fresh", failing_once)
    a = rk.to_device(np.arange(3_000_000, dtype=np.float32), backend)  # a size class the pool lacks
    assert failures and failures[0] > 0
    assert memory.info()["pooled"] == 0
    assert np.array_equal(a.numpy()[-3:], np.arange(2_999_997, 3_000_000, dtype=np.float32))


def test_out_of_memory_with_nothing_pooled_is_the_callers_error(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rk.trim_memory(backend)
    pool = get_backend(backend).memory._pool

    real_fresh = type(pool).fresh

    def always_fail(self, size, make, destroy):
        def fail():
            raise MemoryError("simulated: the device is full")
        return real_fresh(self, size, fail, destroy)

    monkeypatch.setattr(type(pool), "fresh", always_fail)
    before = rk.memory_info(backend)
    with pytest.raises(MemoryError, match="device is full"):
        rk.device_array(7_000_000, np.float32, backend)
    assert rk.memory_info(backend) == before  # the failed allocation is not counted as in use
