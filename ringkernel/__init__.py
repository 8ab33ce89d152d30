"""RingKernel: GPU kernels and persistent GPU actors written in Python."""
from ringkernel.diagnostics import CompileError, SourceLoc

__version__ = "0.1.0"
