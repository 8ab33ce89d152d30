"""The cuda runtime: kernels and persistent actors on NVIDIA GPUs through one small driver interface.

``driver.py`` is the interface and picks an adapter (``cuda-bindings``, else
pycuda); ``backend.py`` launches kernels, ``memory.py`` holds device arrays,
``interop.py`` speaks ``__cuda_array_interface__``, ``actors.py`` hosts the
persistent actor loops.
"""

from ringkernel.runtime.cuda.backend import CudaBackend

__all__ = ["CudaBackend"]
