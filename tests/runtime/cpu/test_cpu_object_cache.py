"""The cpu JIT keeps machine code in the facade's disk cache, so a new process skips LLVM's code
generation, and the actor queue kernels come through the compile cache."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

import ringkernel as rk
from ringkernel import Array, f32
from ringkernel.compiler import compile_module, use_caches_in_runtime
from ringkernel.lowering.llvm.codegen import host_cpu
from ringkernel.runtime import native_queue
from ringkernel.runtime.backend import KernelBuild
from ringkernel.runtime.cpu import jit


@rk.kernel
def triple(x: Array[f32]):
    i = rk.global_id(0)
    x[i] = x[i] * 3.0


class MemoryStore:
    def __init__(self) -> None:
        self.entries: dict[str, bytes] = {}
        self.loads: list[str] = []

    def load(self, key: str) -> bytes | None:
        self.loads.append(key)
        return self.entries.get(key)

    def store(self, key: str, data: bytes) -> None:
        self.entries[key] = data


def _fresh_build(marker: str) -> KernelBuild:
    """A host build of ``triple`` whose text no other test JITs (the in-process JIT cache
    is keyed by text, so a fresh text reaches the object store)."""
    from ringkernel.runtime import get_backend

    device = get_backend("cpu")
    x = np.zeros(4, np.float32)
    options = device.compile_options(triple.ir, "triple", (1, 1, 1), (4, 1, 1), [x], checked=False)
    text = compile_module(triple.ir, "host", **options) + f"\n; {marker}\n"
    return KernelBuild(triple.ir, "triple", "host", options, text)


def _run(compiled: jit.CompiledKernel) -> np.ndarray:
    import ctypes

    x = np.arange(4, dtype=np.float32)
    argv = (ctypes.c_void_p * 1)(x.ctypes.data)
    dims = (ctypes.c_int32 * 6)(1, 1, 1, 4, 1, 1)
    assert compiled.launch(argv, dims, 0, 1) == 0
    return x


def test_machine_code_goes_to_the_store_and_comes_back(monkeypatch) -> None:
    store = MemoryStore()
    monkeypatch.setattr(jit, "_object_store", store)
    first = jit.jit_kernel(_fresh_build("object cache test"))
    assert len(store.entries) == 1
    (key, data), = store.entries.items()
    assert data[:4] == b"\x7fELF" or len(data) > 100
    monkeypatch.setattr(jit, "_cache", {})  # as a new process: only the store remembers
    second = jit.jit_kernel(_fresh_build("object cache test"))
    assert store.loads.count(key) == 2 and len(store.entries) == 1  # loaded, not compiled again
    assert second is not first
    np.testing.assert_array_equal(_run(second), np.arange(4, dtype=np.float32) * 3)


def test_a_failing_store_is_only_a_miss(monkeypatch) -> None:
    class Broken:
        def load(self, key: str) -> bytes | None:
            raise OSError("disk on fire")

        def store(self, key: str, data: bytes) -> None:
            raise OSError("disk on fire")

    monkeypatch.setattr(jit, "_object_store", Broken())
    monkeypatch.setattr(jit, "_cache", {})
    np.testing.assert_array_equal(
        _run(jit.jit_kernel(_fresh_build("broken store test"))), np.arange(4, dtype=np.float32) * 3
    )


def test_queue_kernels_compile_through_the_facade_to_the_same_text() -> None:
    use_caches_in_runtime()
    cpu, features = host_cpu()
    options = {
        "kernel": "rk_queue_pop", "workitem_loops": True, "checked": False, "cpu": cpu, "features": features
    }
    direct = native_queue._lower(native_queue.module(), dict(options))
    assert native_queue._host_compiler(native_queue.module(), dict(options)) == direct
    assert native_queue._host_compiler is not native_queue._lower


def test_a_second_process_reads_machine_code_from_disk(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import numpy as np, sys
        sys.path.insert(0, sys.argv[1])
        from test_cpu_object_cache import triple
        from ringkernel.runtime.cpu import jit
        import llvmlite.binding as llvm
        compiled = []
        real = llvm.ExecutionEngine.set_object_cache
        def spy(self, notify, getbuffer):
            def counting_notify(module, data):
                compiled.append(len(data))
                notify(module, data)
            real(self, counting_notify, getbuffer)
        llvm.ExecutionEngine.set_object_cache = spy
        x = np.arange(8, dtype=np.float32)
        triple[2, 4](x)
        assert (x == np.arange(8) * 3).all(), x
        print("generated", len(compiled))
        """
    )
    env = {**os.environ, "RINGKERNEL_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("RINGKERNEL_NO_CACHE", None)
    here = str(Path(__file__).parent)
    runs = [
        subprocess.run(
            [sys.executable, "-c", script, here], env=env, capture_output=True, text=True, timeout=300
        )
        for _ in range(2)
    ]
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
    assert "generated 1" in runs[0].stdout  # the first process generated the kernel's code
    assert "generated 0" in runs[1].stdout  # the second found it on disk
