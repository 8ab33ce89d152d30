"""LLVM itself: target machines, parsing, verification and the O3 pipeline.

Host text is produced for a generic CPU of the host triple so that
``compile("llvm")`` is the same on every machine of one architecture; the
cpu runtime asks for the host CPU's features instead (:func:`host_machine`).
"""

from __future__ import annotations

import threading

import llvmlite.binding as llvm
from llvmlite import ir

_init_lock = threading.Lock()
_initialized = False

NVPTX_TRIPLE = "nvptx64-nvidia-cuda"


def init_llvm() -> None:
    """Registers LLVM's targets once per process."""
    global _initialized
    with _init_lock:
        if not _initialized:
            llvm.initialize_all_targets()
            llvm.initialize_all_asmprinters()
            llvm.initialize_native_asmparser()
            _initialized = True


def generic_host_machine() -> llvm.TargetMachine:
    init_llvm()
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(opt=3, codemodel="default")


def host_cpu() -> tuple[str, str]:
    """(name, features) of the CPU running this process: what :func:`host_machine` tunes for."""
    init_llvm()
    return llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()


def host_machine(cpu: str | None = None, features: str | None = None) -> llvm.TargetMachine:
    """A JIT target machine tuned for ``cpu`` with ``features`` (default: this process's CPU)."""
    init_llvm()
    if cpu is None or features is None:
        cpu, features = host_cpu()
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(cpu=cpu, features=features, opt=3, jit=True)


def nvptx_machine(arch: str) -> llvm.TargetMachine:
    init_llvm()
    target = llvm.Target.from_triple(NVPTX_TRIPLE)
    return target.create_target_machine(cpu=arch, opt=3, codemodel="default")


def prepare(llmod: ir.Module, machine: llvm.TargetMachine) -> llvm.ModuleRef:
    """Parses ``llmod`` into LLVM with the machine's triple and data layout, and verifies it."""
    llmod.triple = machine.triple
    llmod.data_layout = str(machine.target_data)
    ref = llvm.parse_assembly(str(llmod))
    ref.verify()
    return ref


# LLVM's command-line options are process-wide: optimizations that set one hold this lock.
_options_lock = threading.Lock()
_UNROLL_UNLIMITED = 2**32 - 1  # LLVM's default -unroll-max-count


def optimize(
    ref: llvm.ModuleRef, machine: llvm.TargetMachine, *, runtime_unroll_max: int | None = None
) -> llvm.ModuleRef:
    """Runs LLVM's default O3 module pipeline in place.

    ``runtime_unroll_max`` caps partial and runtime unrolling (loops whose trip count
    is not a constant; full unrolling of constant loops is unaffected): the GPU
    target passes 4, nvcc's factor, where LLVM's NVPTX default unrolls 16 times and
    grows the code without making it faster.
    """
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    builder = llvm.create_pass_builder(machine, pto)
    with _options_lock:
        if runtime_unroll_max is not None:
            llvm.set_option("ringkernel", f"-unroll-max-count={runtime_unroll_max}")
        try:
            builder.getModulePassManager().run(ref, builder)
        finally:
            if runtime_unroll_max is not None:
                llvm.set_option("ringkernel", f"-unroll-max-count={_UNROLL_UNLIMITED}")
    ref.verify()
    return ref
