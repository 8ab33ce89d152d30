"""The wgpu runtime: RingKernel kernels as WGSL compute shaders through wgpu-py."""

from ringkernel.runtime.wgpu.backend import WgpuBackend

__all__ = ["WgpuBackend"]
