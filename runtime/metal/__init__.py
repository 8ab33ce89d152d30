"""The metal runtime: RingKernel kernels as MSL compute pipelines through pyobjc (macOS)."""

from ringkernel.runtime.metal.backend import MetalBackend

__all__ = ["MetalBackend"]
