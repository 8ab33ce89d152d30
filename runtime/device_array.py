"""Device arrays: memory that stays on a backend between launches.

A launch with numpy arguments copies every array to the device and back; a
:class:`DeviceArray` lives on its backend (cpu: host memory the JIT uses
directly; wgpu: a storage buffer), so launches that take one copy nothing.
Each backend that supports them has a ``memory`` attribute following
:class:`DeviceMemory`: a per-backend pool, so a loop of launches does not
allocate, and an allocation returns to the pool when the last array (or view)
using it goes.  Launches whose array arguments are all device arrays may run
asynchronously; :meth:`DeviceArray.numpy` and :func:`synchronize` wait.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from ringkernel.runtime.arguments import LaunchError

# numpy dtypes a kernel Array parameter can have (ringir's scalar types).
_DTYPES = {
    np.dtype(t)
    for t in ("float32", "float64", "int32", "int64", "uint32", "uint64", "bool",
              "int8", "uint8", "int16", "uint16", "float16")
}
_DLPACK_CPU = 1  # DLDeviceType kDLCPU


class DeviceMemory(Protocol):
    """What a backend provides for device arrays (its ``memory`` attribute)."""

    name: str

    def itemsize(self, dtype: np.dtype) -> int:
        """Bytes one element of ``dtype`` takes on the device."""

    def allocate(self, nbytes: int) -> Any:
        """A buffer of at least ``nbytes`` (from the pool when one fits)."""

    def release(self, buffer: Any) -> None:
        """Returns ``buffer`` to the pool (its last user is gone)."""

    def forget(self, buffer: Any) -> None:
        """``buffer`` leaves the pool's books for good (exported memory)."""

    def upload(self, buffer: Any, offset: int, host: np.ndarray) -> None:
        """Copies the C-contiguous ``host`` into ``buffer`` at byte ``offset``."""

    def download(self, buffer: Any, offset: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A new host array with the elements at byte ``offset``, after every earlier launch."""

    def synchronize(self) -> None:
        """Returns once every launch submitted so far has finished."""

    def info(self) -> dict[str, int]:
        """``in_use``, ``pooled`` (bytes) and ``allocations`` (device allocations made)."""

    def trim(self) -> int:
        """Gives every pooled (free) buffer back to the device; returns the bytes freed."""


class _Allocation:
    """One device buffer shared by an array and its views; back to the pool when all are gone."""

    __slots__ = ("memory", "buffer", "nbytes", "owner", "_finalizer", "__weakref__")

    def __init__(self, memory: DeviceMemory, nbytes: int, buffer: Any = None, owner: Any = None) -> None:
        self.memory = memory
        self.nbytes = nbytes
        self.owner = owner  # the foreign object whose memory ``buffer`` is, kept alive with it
        self._finalizer: weakref.finalize | None = None
        if buffer is None:
            self.buffer = memory.allocate(nbytes)
            self._finalizer = weakref.finalize(self, memory.release, self.buffer)
        else:
            self.buffer = buffer

    def export(self) -> None:
        """Others may hold the memory now (DLPack): it never returns to the pool."""
        if self._finalizer is not None and self._finalizer.detach() is not None:
            self.memory.forget(self.buffer)


class DeviceArray:
    """An array on one backend: ``.shape``, ``.dtype``, ``.backend``, ``.numpy()``.

    Indexing the leading dimension (``a[i]``, ``a[i:j]``) gives a view of the
    same memory, without a copy.
    """

    def __init__(
        self, allocation: _Allocation, shape: tuple[int, ...], dtype: np.dtype, offset: int = 0
    ) -> None:
        self._allocation = allocation
        self._offset = offset
        self.shape = shape
        self.dtype = dtype
        self._host: np.ndarray | None = None  # the cpu backend's view, made at the first launch
        self._words: dict[Any, DeviceArray] | None = None  # a struct array's words, made at its first launch

    @property
    def backend(self) -> str:
        return self._allocation.memory.name

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        """Bytes on the device (a bool takes a 32-bit word on wgpu)."""
        return self.size * self._allocation.memory.itemsize(self.dtype)

    @property
    def buffer(self) -> Any:
        """The backend's buffer this array lives in (at :attr:`offset`)."""
        return self._allocation.buffer

    @property
    def offset(self) -> int:
        """Byte offset of the first element in :attr:`buffer`."""
        return self._offset

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d device array")
        return self.shape[0]

    def __repr__(self) -> str:
        return f"DeviceArray(shape={self.shape}, dtype={self.dtype}, backend='{self.backend}')"

    def __getitem__(self, key: Any) -> DeviceArray:
        if not self.shape:
            raise IndexError("a 0-d device array cannot be indexed")
        n = self.shape[0]
        row = self.nbytes // n if n else 0
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            i = int(key) + n if key < 0 else int(key)
            if not 0 <= i < n:
                raise IndexError(f"index {int(key)} is out of range for a leading dimension of {n}")
            return DeviceArray(self._allocation, self.shape[1:], self.dtype, self._offset + i * row)
        if isinstance(key, slice):
            start, stop, step = key.indices(n)
            if step != 1:
                raise IndexError("device arrays slice only contiguous ranges (step 1); copy with .numpy()")
            count = max(stop - start, 0)
            return DeviceArray(
                self._allocation, (count, *self.shape[1:]), self.dtype, self._offset + start * row
            )
        raise IndexError(
            f"device arrays index only their leading dimension with an int or a slice, got {key!r}"
        )

    def struct_words(self, dtype: np.dtype, ndim: int) -> DeviceArray:
        """This array of struct (or, with a subarray ``dtype``, Vec) elements as the uint32 words an
        ``Array[S, ndim]`` parameter sees: the leading extents kept, the last counting words.
        Shares the memory; arrays of other dtypes or ranks come back unchanged for the caller's check."""
        vec = dtype.subdtype is not None
        if self.ndim != ndim + vec or (vec and self.shape[-1:] != dtype.subdtype[1]):  # type: ignore[index]
            return self
        key = (dtype, ndim)
        cached = self._words.get(key) if self._words is not None else None
        if cached is None:
            lead = self.shape[: ndim - 1]
            last = self.shape[ndim - 1] * dtype.itemsize // 4
            cached = DeviceArray(self._allocation, (*lead, last), np.dtype(np.uint32), self._offset)
            self._words = {key: cached}
        return cached

    def numpy(self) -> np.ndarray:
        """A new numpy array with the contents, after every launch that writes them."""
        return self._allocation.memory.download(self.buffer, self._offset, self.shape, self.dtype)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """``np.asarray(a)``: always a copy (``np.from_dlpack`` shares a cpu array's memory)."""
        if copy is False:
            raise ValueError("a device array becomes a numpy array only by a copy (np.from_dlpack on cpu)")
        out = self.numpy()
        return out if dtype is None else out.astype(dtype)

    # --- __cuda_array_interface__ (cuda backend) ---

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        """Version 3, for CuPy, PyTorch and Numba (cuda backend only; elsewhere there is none)."""
        export = getattr(self._allocation.memory, "cuda_array_interface", None)
        if export is None:
            raise AttributeError(
                f"a device array on '{self.backend}' has no __cuda_array_interface__ (cuda only)"
            )
        return export(self.buffer, self._offset, self.shape, self.dtype)

    # --- DLPack (cpu backend) ---

    def host_view(self) -> np.ndarray:
        """The cpu backend's memory as a numpy array (no copy); other backends: an error."""
        if self.backend != "cpu":
            raise TypeError(f"a device array on '{self.backend}' has no host view; use .numpy()")
        if self._host is None:  # made once: a warm launch would otherwise spend microseconds on it
            self._host = self._allocation.memory.view(self.buffer, self._offset, self.shape, self.dtype)  # type: ignore[attr-defined]
        return self._host

    def __dlpack__(
        self, *, stream: Any = None, max_version: Any = None, dl_device: Any = None, copy: Any = None
    ) -> Any:
        """Exports the memory (cpu backend, zero copy); it never returns to the pool after."""
        if self.backend != "cpu":
            raise BufferError(f"DLPack export is implemented for the cpu backend only, not '{self.backend}'")
        self._allocation.export()
        view = self.host_view()
        kwargs: dict[str, Any] = {}
        if max_version is not None:
            kwargs["max_version"] = max_version
        if copy is not None:
            kwargs["copy"] = copy
        return view.__dlpack__(stream=stream, **kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        if self.backend != "cpu":
            raise BufferError(f"DLPack export is implemented for the cpu backend only, not '{self.backend}'")
        return (_DLPACK_CPU, 0)


# --- the public functions ---


def _memory(backend: str | None) -> DeviceMemory:
    from ringkernel.runtime import get_backend

    device = get_backend(backend)
    memory = getattr(device, "memory", None)
    if memory is None:
        raise LaunchError(
            f"device arrays are not implemented on the '{device.name}' backend yet; "
            "pass numpy arrays (copied in and out at each launch) or use cpu or wgpu"
        )
    return memory


def _check_dtype(dtype: Any) -> np.dtype:
    dt = np.dtype(dtype)
    if dt.names is not None:
        return _check_struct_dtype(dt)
    if dt not in _DTYPES:
        allowed = ", ".join(sorted(str(d) for d in _DTYPES))
        raise TypeError(f"device arrays hold {allowed} or structured dtypes of them (S.dtype); "
                        f"got dtype {dt}")
    return dt


def _check_struct_dtype(dt: np.dtype) -> np.dtype:
    """A structured dtype (an ``@rk.struct``'s ``S.dtype``): scalar, subarray and nested fields,
    a whole number of 32-bit words per element, as ``Array[S]`` parameters take them."""
    def leaves(d: np.dtype) -> list[np.dtype]:
        if d.names is not None:
            return [t for name in d.names for t in leaves(d.fields[name][0])]  # type: ignore[index]
        return [d.base]

    bad = [d for d in leaves(dt) if d.names is None and d not in _DTYPES]
    if bad:
        raise TypeError(f"a structured device array's fields must be numeric or bool; {dt} has {bad[0]}")
    if dt.itemsize % 4:
        raise TypeError(f"a structured device array's elements must be whole 32-bit words; "
                        f"{dt} is {dt.itemsize} bytes (pad the struct)")
    return dt


def _shape(shape: int | Sequence[int]) -> tuple[int, ...]:
    dims = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if not all(isinstance(d, (int, np.integer)) and d >= 0 for d in dims):
        raise ValueError(f"a shape is non-negative ints, got {shape!r}")
    return tuple(int(d) for d in dims)


def device_array(
    shape: int | Sequence[int], dtype: Any = np.float32, backend: str | None = None
) -> DeviceArray:
    """An uninitialised array of ``shape`` and ``dtype`` on ``backend`` (default: the default backend)."""
    memory = _memory(backend)
    dt, dims = _check_dtype(dtype), _shape(shape)
    nbytes = int(np.prod(dims, dtype=np.int64)) * memory.itemsize(dt)
    return DeviceArray(_Allocation(memory, nbytes), dims, dt)


def to_device(array: Any, backend: str | None = None) -> DeviceArray:
    """A copy of ``array`` (anything ``np.asarray`` takes, or CUDA memory) on ``backend``.

    CUDA memory (a cuda device array, or anything with ``__cuda_array_interface__``:
    CuPy, CUDA torch tensors) is copied device to device onto cuda, and
    through the host onto any other backend.
    """
    if not isinstance(array, np.ndarray) and hasattr(array, "__cuda_array_interface__"):
        return _copy_cuda_memory(array, backend)
    host = np.ascontiguousarray(array)
    out = device_array(host.shape, host.dtype, backend)
    if host.size:
        out._allocation.memory.upload(out.buffer, 0, host)
    return out


def _copy_cuda_memory(array: Any, backend: str | None) -> DeviceArray:
    source = array if isinstance(array, DeviceArray) else from_cuda_array_interface(array)
    out = device_array(source.shape, source.dtype, backend)
    if out.backend != source.backend:
        if source.size:
            out._allocation.memory.upload(out.buffer, 0, source.numpy())
        return out
    if source.size:
        out._allocation.memory.copy(out.buffer, 0, source.buffer, source.offset, source.nbytes)  # type: ignore[attr-defined]
    return out


def device_array_like(a: Any, backend: str | None = None) -> DeviceArray:
    """An uninitialised array with ``a``'s shape and dtype, on ``a``'s backend (or ``backend``)."""
    if backend is None and isinstance(a, DeviceArray):
        backend = a.backend
    return device_array(a.shape, a.dtype, backend)


def from_dlpack(obj: Any) -> DeviceArray:
    """A cpu device array sharing ``obj``'s memory (a numpy array, a torch CPU tensor, ...)."""
    device = obj.__dlpack_device__() if hasattr(obj, "__dlpack_device__") else None
    if device is not None and int(device[0]) != _DLPACK_CPU:
        hint = (
            "; for CUDA memory use rk.from_cuda_array_interface(obj)"
            if hasattr(obj, "__cuda_array_interface__") else ""
        )
        raise BufferError(
            f"from_dlpack takes host (CPU) memory for the cpu backend; this object lives on "
            f"DLPack device {tuple(device)}{hint}"
        )
    host = np.from_dlpack(obj)
    if not host.flags.c_contiguous:
        raise BufferError("from_dlpack needs C-contiguous memory (make the tensor contiguous first)")
    dt = _check_dtype(host.dtype)
    memory = _memory("cpu")
    shared = _Allocation(memory, host.nbytes, buffer=host.reshape(-1).view(np.uint8))
    return DeviceArray(shared, host.shape, dt)


def from_cuda_array_interface(obj: Any) -> DeviceArray:
    """A cuda device array sharing the memory of ``obj`` (a CuPy array, a CUDA torch tensor, a
    Numba device array: anything with ``__cuda_array_interface__``), without a copy.

    ``obj`` stays alive as long as the device array does; work its producer
    still has queued on the interface's ``stream`` is waited for first.
    """
    from ringkernel.runtime.cuda.interop import parse_interface

    foreign = parse_interface(obj, _DTYPES)
    memory = _memory("cuda")
    buffer = memory.adopt(foreign)  # type: ignore[attr-defined]
    shared = _Allocation(memory, buffer.size, buffer=buffer, owner=obj)
    return DeviceArray(shared, foreign.shape, foreign.dtype)


def synchronize(backend: str | None = None) -> None:
    """Waits until every launch on ``backend`` (default: every backend in use) has finished."""
    from ringkernel.runtime import _instances

    names = [backend] if backend is not None else list(_instances)
    for name in names:
        memory = getattr(_instances.get(name), "memory", None)
        if memory is not None:
            memory.synchronize()


def memory_info(backend: str | None = None) -> dict[str, int]:
    """Device-array memory of ``backend``: ``in_use`` and ``pooled`` bytes, ``allocations`` made."""
    return _memory(backend).info()


def trim_memory(backend: str | None = None) -> int:
    """Frees the pooled (unused) device buffers of ``backend`` (default: every backend in use).

    Returns the bytes given back.  Arrays in use are untouched; the next
    allocations come from the device again.  An allocation that fails for
    lack of memory trims its own pool and tries once more by itself.
    """
    from ringkernel.runtime import _instances

    if backend is not None:
        return _memory(backend).trim()
    memories = [getattr(device, "memory", None) for device in list(_instances.values())]
    return sum(memory.trim() for memory in memories if memory is not None)


def bucket(nbytes: int) -> int:
    """The pool size class of an allocation: powers of two up to 1 MiB, then whole MiB."""
    if nbytes <= 256:
        return 256
    if nbytes <= 1 << 20:
        return 1 << (nbytes - 1).bit_length()
    return (nbytes + (1 << 20) - 1) >> 20 << 20


class Pool:
    """Free buffers by size class, and the counts :func:`memory_info` reports."""

    def __init__(self) -> None:
        self.free: dict[int, list[Any]] = {}
        self.in_use = 0
        self.pooled = 0
        self.allocations = 0

    def take(self, size: int) -> Any | None:
        free = self.free.get(size)
        self.in_use += size
        if free:
            self.pooled -= size
            return free.pop()
        self.allocations += 1
        return None

    def give(self, size: int, buffer: Any) -> None:
        self.in_use -= size
        self.pooled += size
        self.free.setdefault(size, []).append(buffer)

    def forget(self, size: int) -> None:
        """A buffer in use that will never come back (exported through DLPack)."""
        self.in_use -= size

    def info(self) -> dict[str, int]:
        return {"in_use": self.in_use, "pooled": self.pooled, "allocations": self.allocations}

    def trim(self) -> list[Any]:
        """Empties the pool: the free buffers, for the backend to give back to its device."""
        buffers = [b for free in self.free.values() for b in free]
        self.free.clear()
        self.pooled = 0
        return buffers

    def fresh(self, size: int, make: Callable[[], Any], destroy: Callable[[Any], None]) -> Any:
        """A new buffer of ``size`` (booked by :meth:`take`) from ``make()``.

        Out of memory, the free buffers of other size classes may be what
        stands in the way: the pool is trimmed and ``make`` tried once more.
        If that fails too the booking is undone, so ``memory_info`` does not
        count memory that was never allocated.
        """
        try:
            try:
                return make()
            except MemoryError:
                if not self.pooled:
                    raise
                for buffer in self.trim():
                    destroy(buffer)
                return make()
        except BaseException:
            self.in_use -= size
            self.allocations -= 1
            raise
