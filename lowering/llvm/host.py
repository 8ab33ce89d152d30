"""The ``host`` target: one kernel's launch wrapper as O3 LLVM IR text, ready to JIT.

The cpu runtime asks the compiler driver for this target (it is not one of
the public ``compile()`` targets) and only parses and JITs the text.  Unlike
``compile("llvm")``, which is the same on every machine of one
architecture, the text is tuned for the CPU named in the options (the cpu
runtime passes its own), and holds ``rk_launch_<kernel>``
(:mod:`ringkernel.lowering.llvm.host_entry`): the kernel's block strategy
(:func:`~ringkernel.ringir.passes.workitem_loops.plan_block`) decides how its
work-items run.
"""

from __future__ import annotations

from dataclasses import replace

from llvmlite import binding, ir

from ringkernel.lowering.common.capabilities import element, type_uses
from ringkernel.lowering.llvm import host_kernel_symbol
from ringkernel.lowering.llvm.bounds import BoundsSite
from ringkernel.lowering.llvm.codegen import host_cpu, host_machine, optimize, prepare
from ringkernel.lowering.llvm.host_coroutines import make_coroutine
from ringkernel.lowering.llvm.host_entry import add_launch_wrapper
from ringkernel.lowering.llvm.host_noalias import mark_noalias, noalias_name, noalias_variant, wants_variant
from ringkernel.lowering.llvm.host_privatize import private_variant, privatizable_arrays
from ringkernel.lowering.llvm.lower import build_ir_module, func_symbol
from ringkernel.lowering.llvm.targets import HOST_INDEX_PARAMS, HostTarget
from ringkernel.ringir import Module
from ringkernel.ringir.diagnostics import CompileError
from ringkernel.ringir.passes.workitem_loops import (
    COROUTINES,
    GRID,
    LOOPS,
    PLAIN,
    THREADS,
    plan_block,
    region_functions,
)
from ringkernel.ringir.types import F16, AddressSpace, ArrayType


def lower_module_to_host(
    module: Module,
    *,
    kernel: str = "",
    workitem_loops: bool = True,
    checked: bool = False,
    cpu: str | None = None,
    features: str | None = None,
    block: tuple[int, int, int] | None = None,
    noalias: bool = False,
) -> str:
    """Optimized LLVM IR text of ``kernel`` and its launch wrapper, for ``cpu`` with ``features``.

    ``workitem_loops=False`` keeps one thread per work-item for kernels with
    barriers; ``checked=True`` bounds-checks every array access.  ``block``
    specializes a work-item-loop kernel for that block shape (its loops get
    constant trip counts; the text then runs only blocks of that shape); other
    modes ignore it.  ``noalias`` adds the kernel's noalias variant, chosen per
    launch (:mod:`~ringkernel.lowering.llvm.host_noalias`): the caller's
    ``argv`` must hold the lengths table (the cpu backend's launches do).
    """
    if not kernel:
        raise CompileError("target 'host' compiles one kernel: pass kernel=<name>")
    if cpu is None or features is None:
        cpu, features = host_cpu()
    _check_half_conversions(module, features)
    llmod, _ = build_host_module(module, kernel, workitem_loops, checked, block, noalias)
    machine = host_machine(cpu, features)
    return str(optimize(prepare(llmod, machine), machine))


def _check_half_conversions(module: Module, features: str) -> None:
    """f16 on an x86 host needs F16C: without it LLVM calls a conversion routine the JIT cannot
    resolve, and the launch would crash instead of failing."""
    x86 = binding.get_default_triple().startswith(("x86_64", "i386", "i686"))
    if not x86 or "+f16c" in features.split(","):
        return
    for use in type_uses(module, structs=False):
        if element(use.ty) == F16:
            raise CompileError.at(
                use.loc,
                "f16 on the cpu backend needs a CPU with the F16C instructions (x86 since "
                "2012), which this one lacks; use f32 here, or another backend",
            )


def build_host_module(
    module: Module, kernel: str, workitem_loops: bool, checked: bool,
    block: tuple[int, int, int] | None = None, noalias: bool = False,
) -> tuple[ir.Module, tuple[BoundsSite, ...]]:
    """The unoptimized LLVM module of the host target, and its bounds-check sites in order
    (``block``: see :func:`lower_module_to_host`)."""
    plan = plan_block(module, kernel, workitem_loops)
    lowered, fn = plan.module, plan.module.get(kernel)
    private = privatizable_arrays(fn) if plan.mode == PLAIN else {}
    if private:
        lowered = replace(lowered, functions=(*lowered.functions, private_variant(fn, private)))
    noalias = noalias and wants_variant(fn, plan.mode in (PLAIN, LOOPS) and not private)
    if noalias:
        lowered = replace(lowered, functions=(*lowered.functions, noalias_variant(fn)))
    target = HostTarget(bounds_checks=checked, blocks_on_one_thread=plan.mode not in (THREADS, GRID),
                        block=block if plan.mode == LOOPS else None)
    if noalias:
        target.site_twins[noalias_name(kernel)] = kernel
    llmod = build_ir_module(lowered, target, name=f"ringkernel.{kernel}")
    if plan.mode == LOOPS:
        _shared_params_noalias(llmod, lowered, kernel)
    if noalias:
        mark_noalias(llmod, fn)
    if plan.mode == COROUTINES:
        barrier_slot = len(fn.params) + 3 * len(HOST_INDEX_PARAMS) + 1  # after the indices, shared
        make_coroutine(llmod, llmod.globals[host_kernel_symbol(kernel)], barrier_slot)
    add_launch_wrapper(llmod, fn, plan.mode, checked, private, noalias)
    return llmod, tuple(target.bounds_sites)


def _shared_params_noalias(llmod: ir.Module, module: Module, kernel: str) -> None:
    """Marks the shared-array parameters of the work-item loop region funcs ``noalias``.

    Sound: each shared array is its own part of the block's shared area (its
    own allocation in CUDA terms), the area is the wrapper's ``malloc``, never
    a user's buffer, and a region func gets every array once.  Without it
    LLVM checks at run time, per work-item loop, that the per-work-item
    arrays do not overlap the tiles the loop reads.
    """
    for name in region_functions(module, kernel):
        fn = module.get(name)
        llfn = llmod.globals[func_symbol(name)]
        for arg, param in zip(llfn.args, fn.params):
            if isinstance(param.type, ArrayType) and param.type.space == AddressSpace.SHARED:
                arg.add_attribute("noalias")


def host_bounds_sites(module: Module, kernel: str, workitem_loops: bool,
                      noalias: bool = False) -> tuple[BoundsSite, ...]:
    """The checked build's sites (what a violation record's site number means), without LLVM.

    ``module`` is what the driver lowered (the optimized module); lowering is
    deterministic, so these are the sites of the text the runtime runs.
    """
    return build_host_module(module, kernel, workitem_loops, True, noalias=noalias)[1]
