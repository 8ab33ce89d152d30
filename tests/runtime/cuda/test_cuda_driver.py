"""The cuda driver layer: adapter choice and the precise reason cuda cannot run (issue 16).

Each reason is simulated through the adapters' loader seams (the binding's
import, the driver calls), since the real answer on this machine is "no
driver library".
"""

from __future__ import annotations

import enum
import importlib.util
from types import SimpleNamespace
from typing import Any

import pytest

import ringkernel as rk
from ringkernel.runtime.cuda import backend as cuda_backend
from ringkernel.runtime.cuda import bindings_adapter, driver, pycuda_adapter


class _Result(enum.IntEnum):
    CUDA_SUCCESS = 0
    CUDA_ERROR_INSUFFICIENT_DRIVER = 35
    CUDA_ERROR_NO_DEVICE = 100


def _fake_bindings(init: Any, version: int = 13000, count: int = 1) -> Any:
    """A stand-in for ``cuda.bindings.driver`` with what probing calls."""
    return SimpleNamespace(
        CUresult=_Result,
        cuInit=init,
        cuDriverGetVersion=lambda: (_Result.CUDA_SUCCESS, version),
        cuDeviceGetCount=lambda: (_Result.CUDA_SUCCESS, count),
    )


def _no_pycuda() -> Any:
    raise driver.BindingMissing("pycuda is not installed (simulated): pip install 'ringkernel[cuda]'")


@pytest.fixture(autouse=True)
def _fresh_probe(monkeypatch: pytest.MonkeyPatch):
    """Every test probes anew, and the remembered answer is restored after it."""
    monkeypatch.delenv(driver.ENV_VAR, raising=False)
    saved = cuda_backend._probed
    yield
    cuda_backend._probed = saved


def _reason() -> str:
    probed = cuda_backend.probe(again=True)
    assert isinstance(probed, str), "cuda must be unavailable in this simulation"
    return probed


def test_no_binding_names_the_package_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> Any:
        raise driver.BindingMissing("cuda-bindings is not installed (simulated)")

    monkeypatch.setattr(bindings_adapter, "_import", missing)
    monkeypatch.setattr(pycuda_adapter, "load", _no_pycuda)
    reason = _reason()
    assert "neither cuda-bindings nor pycuda" in reason
    assert "pip install 'ringkernel[nvidia]'" in reason


def test_no_driver_library_is_told_apart_from_no_binding(monkeypatch: pytest.MonkeyPatch) -> None:
    class DynamicLibNotFoundError(RuntimeError):
        pass

    def init(flags: int) -> Any:
        raise DynamicLibNotFoundError('"cuda" is an NVIDIA driver library, found only via system search')

    monkeypatch.setattr(bindings_adapter, "_import", lambda: _fake_bindings(init))
    reason = _reason()
    assert "libcuda.so.1" in reason and "NVIDIA display driver" in reason


def test_pycuda_linked_to_a_missing_libcuda_is_no_driver_library(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("pycuda"):
            raise ImportError("libcuda.so.1: cannot open shared object file: No such file or directory")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.setenv(driver.ENV_VAR, "pycuda")
    reason = _reason()
    assert "libcuda.so.1" in reason and "not found" in reason


def test_no_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        bindings_adapter, "_import", lambda: _fake_bindings(lambda flags: (_Result.CUDA_ERROR_NO_DEVICE,))
    )
    assert "no CUDA device" in _reason()


def test_a_device_count_of_zero_is_no_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        bindings_adapter, "_import", lambda: _fake_bindings(lambda flags: (_Result.CUDA_SUCCESS,), count=0)
    )
    monkeypatch.setattr(bindings_adapter, "_binding_major", lambda: 13)
    assert "no CUDA device" in _reason()


def test_driver_too_old_for_the_binding(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake_bindings(lambda flags: (_Result.CUDA_SUCCESS,), version=12040)
    monkeypatch.setattr(bindings_adapter, "_import", lambda: fake)
    monkeypatch.setattr(bindings_adapter, "_binding_major", lambda: 13)
    reason = _reason()
    assert "CUDA 12.4" in reason and "CUDA 13.0 or later" in reason and "update the NVIDIA driver" in reason


def test_insufficient_driver_at_init(monkeypatch: pytest.MonkeyPatch) -> None:
    init = lambda flags: (_Result.CUDA_ERROR_INSUFFICIENT_DRIVER,)  # noqa: E731
    monkeypatch.setattr(bindings_adapter, "_import", lambda: _fake_bindings(init))
    assert "too old" in _reason()


def test_the_environment_variable_picks_the_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pycuda_adapter, "load", _no_pycuda)
    monkeypatch.setenv(driver.ENV_VAR, "pycuda")
    assert "pycuda is not installed" in _reason()
    monkeypatch.setenv(driver.ENV_VAR, "cupy")
    reason = _reason()
    assert "RINGKERNEL_CUDA_DRIVER='cupy'" in reason and "cuda-bindings, pycuda" in reason


def test_cuda_bindings_is_preferred(monkeypatch: pytest.MonkeyPatch, fake_driver_class) -> None:
    chosen = []

    def loader(name: str) -> Any:
        def load() -> Any:
            chosen.append(name)
            return fake_driver_class()
        return load

    monkeypatch.setattr(driver, "_loader", loader)
    assert not isinstance(cuda_backend.probe(again=True), str)
    assert chosen == ["cuda-bindings"]


def test_backends_reasons_say_why_cuda_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        bindings_adapter, "_import", lambda: _fake_bindings(lambda flags: (_Result.CUDA_ERROR_NO_DEVICE,))
    )
    cuda_backend.probe(again=True)
    reasons = rk.backends(reasons=True)
    assert set(reasons) == {"cuda", "metal", "wgpu", "cpu"}
    assert reasons["cpu"] == ""
    assert "no CUDA device" in reasons["cuda"]
    assert "cuda" not in rk.backends()


@pytest.mark.skipif(importlib.util.find_spec("cuda.bindings") is None, reason="cuda-bindings not installed")
def test_the_real_answer_here() -> None:
    """With cuda-bindings installed: a GPU machine runs; this one says the driver library is missing."""
    probed = cuda_backend.probe(again=True)
    if not isinstance(probed, str):
        pytest.skip("a CUDA driver and device are present")
    assert "libcuda.so.1" in probed or "no CUDA device" in probed
