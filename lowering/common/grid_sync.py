"""Targets without a grid-wide barrier refuse ``rk.grid_sync()`` before emitting anything.

WebGPU and Metal give no forward-progress guarantee between workgroups and
no cooperative launch, so a grid barrier there could wait forever for
workgroups that never start.  The refusal names the way out: split the
kernel at the barrier into two launches (a launch boundary is a grid-wide
barrier on every backend).
"""

from __future__ import annotations

from ringkernel.ringir import GridSync, Module, walk
from ringkernel.ringir.diagnostics import CompileError


def refuse_grid_sync(module: Module, target: str, api: str) -> None:
    """Raises a located :class:`CompileError` at the first ``grid_sync`` of ``module``."""
    for fn in module.functions:
        for stmt in walk(fn.body):
            if isinstance(stmt, GridSync):
                raise CompileError.at(
                    stmt.loc,
                    f"rk.grid_sync() is not available on {target}: {api} has no grid-wide barrier "
                    "(no cooperative launch); split the kernel at the grid_sync into two kernels "
                    "launched one after the other (each launch boundary syncs the whole grid), "
                    "or run it on the cuda or cpu backend",
                )
