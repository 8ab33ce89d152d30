"""Which module-scope array each array value is, and which arrays are atomic.

WGSL cannot pass storage or workgroup pointers to functions (naga rejects
them), so a ``func`` that takes arrays is *specialized* per call site: one
WGSL function per distinct tuple of module-scope arrays bound to its array
parameters, referring to those arrays directly.  Every array a kernel can
touch is a module-scope variable (a storage buffer for an ``Array``
parameter, a ``var<workgroup>`` for a shared array), so the binding is known
statically.  An array touched by an atomic anywhere (kernel or callee) is
declared ``array<atomic<T>>``; since every specialization names its arrays
directly, this needs no call-graph propagation (unlike MSL's
:func:`~ringkernel.lowering.common.atomic_arrays`).  A kernel parameter aliased to an earlier
one (the launch passes one array for both) *is* the earlier one's variable,
so a write through either is seen through the other, as on CUDA.  An array
of 8- or 16-bit integers (packed four or two to a u32 word) that anything
stores into is atomic too: a store rewrites its element's bits of the word
with atomicAnd/atomicOr, so neighbours stored by other threads survive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ringkernel.lowering.common import Namer, atomic_array
from ringkernel.lowering.wgsl.bindings import PACKED, Aliases, kernel_aliases
from ringkernel.lowering.wgsl.limits import check_const_table
from ringkernel.ringir import (
    ArrayType,
    Call,
    ConstArray,
    Function,
    LocalArray,
    Module,
    SharedArray,
    Store,
    walk,
)


@dataclass
class GlobalArray:
    """A module-scope array variable of the emitted shader."""

    name: str
    elem: str
    space: str  # "storage", "workgroup", "private" (a local array) or "const" (embedded data)
    size: int | None
    binding: int | None = None
    atomic: bool = False
    label: str = ""
    """What a user calls it (a parameter or shared-array name), for error messages."""
    data: tuple[bool | int | float, ...] = ()
    """The values of a ``const`` array."""

    @property
    def packed(self) -> bool:
        """Whether 8/16-bit elements share u32 words: in storage (the host's numpy layout) and
        workgroup memory.  A private or const array is per invocation or read-only, so it
        holds one i32/u32 register value per element and needs no atomic word updates."""
        return self.elem in PACKED and self.space in ("storage", "workgroup")

    @property
    def as_bits(self) -> bool:
        """Whether a const float table holds its values' bits (u32): WGSL constant expressions
        cannot be inf or NaN, nor bitcast to them, so such a table is converted at each load."""
        return self.space == "const" and self.elem in ("f32", "f16") and not all(
            math.isfinite(v) for v in self.data
        )


@dataclass
class Instance:
    """One WGSL function: a kernel, a scalar-only func, or a func specialization."""

    fn: Function
    wgsl_name: str
    arrays: dict[str, str]  # array value name -> GlobalArray name
    kernel: str  # the kernel this instance was reached from (for shared-array names)
    calls: dict[int, str] = field(default_factory=dict)  # id(Call stmt) -> callee wgsl name


@dataclass
class ModulePlan:
    kernels: list[Instance]
    funcs: list[Instance]
    globals: dict[str, GlobalArray]


def plan_module(
    module: Module,
    kernels: tuple[Function, ...],
    namer: Namer,
    kernel_names: dict[str, str],
    aliases: Aliases = (),
) -> ModulePlan:
    """Discovers function instances and global arrays, in program order."""
    plan = ModulePlan([], [], {})
    specializations: dict[tuple[str, tuple[str, ...]], Instance] = {}
    scalar_funcs: dict[str, Instance] = {}
    funcs = {f.name: f for f in module.functions if not f.is_kernel}

    def instantiate(fn: Function, bound: tuple[str, ...], kernel: str) -> Instance:
        if not bound:
            inst = scalar_funcs.get(fn.name)
            if inst is None:
                inst = Instance(fn, namer.fresh(fn.name, "f_"), {}, kernel)
                scalar_funcs[fn.name] = inst
                scan(inst)
            return inst
        key = (fn.name, bound)
        inst = specializations.get(key)
        if inst is None:
            array_params = [p for p in fn.params if isinstance(p.type, ArrayType)]
            arrays = {p.name: g for p, g in zip(array_params, bound)}
            inst = Instance(fn, namer.fresh(fn.name, "f_"), arrays, kernel)
            specializations[key] = inst
            scan(inst)
        return inst

    def scan(inst: Instance) -> None:
        for stmt in walk(inst.fn.body):
            if isinstance(stmt, SharedArray):
                ty = stmt.result.type
                assert isinstance(ty, ArrayType)  # the verifier requires it
                name = namer.fresh(f"{inst.kernel}_{stmt.result.name}", "s_")
                where = getattr(stmt, "loc", None) or inst.fn.loc
                label = f"{ty.elem}[{ty.size}]" + (f" (created at {where})" if where else "")
                plan.globals[name] = GlobalArray(
                    name, ty.elem.name, "workgroup", ty.size, label=label
                )
                inst.arrays[stmt.result.name] = name
            elif isinstance(stmt, (LocalArray, ConstArray)):
                # a private var is per invocation, as a local array is per work-item
                ty = stmt.result.type
                assert isinstance(ty, ArrayType)  # the verifier requires it
                if isinstance(stmt, ConstArray):
                    check_const_table(ty, getattr(stmt, "loc", None) or inst.fn.loc)
                local = isinstance(stmt, LocalArray)
                name = namer.fresh(f"{inst.kernel}_{stmt.result.name}", "l_" if local else "c_")
                where = getattr(stmt, "loc", None) or inst.fn.loc
                kind = "local" if local else "constant"
                label = f"{kind} array {ty.elem}[{ty.size}]" + (f" (created at {where})" if where else "")
                data = () if isinstance(stmt, LocalArray) else stmt.data
                plan.globals[name] = GlobalArray(
                    name, ty.elem.name, "private" if local else "const", ty.size, label=label, data=data
                )
                inst.arrays[stmt.result.name] = name
            elif (array := atomic_array(stmt)) is not None:
                plan.globals[inst.arrays[array.name]].atomic = True
            elif isinstance(stmt, Store) and plan.globals[inst.arrays[stmt.array.name]].packed:
                plan.globals[inst.arrays[stmt.array.name]].atomic = True
            elif isinstance(stmt, Call):
                callee = funcs[stmt.callee]
                bound = tuple(
                    inst.arrays[a.name] for a in stmt.args if isinstance(a.type, ArrayType)
                )
                inst.calls[id(stmt)] = instantiate(callee, bound, inst.kernel).wgsl_name

    for kernel in kernels:
        arrays: dict[str, str] = {}
        shared = kernel_aliases(kernel, aliases)
        binding = 0
        for p in kernel.params:
            if isinstance(p.type, ArrayType):
                if p.name in shared:
                    arrays[p.name] = arrays[shared[p.name]]
                else:
                    name = namer.fresh(f"{kernel.name}_{p.name}", "g_")
                    plan.globals[name] = GlobalArray(
                        name, p.type.elem.name, "storage", None, binding=binding, label=p.name
                    )
                    arrays[p.name] = name
                binding += 1
        inst = Instance(kernel, kernel_names[kernel.name], arrays, kernel.name)
        plan.kernels.append(inst)
        scan(inst)

    reached = list(scalar_funcs.values()) + list(specializations.values())
    if len(kernels) == len(module.kernels):
        # Whole-module output also carries scalar-only funcs no kernel calls.
        for fn in module.functions:
            if not fn.is_kernel and fn.name not in scalar_funcs and not any(
                isinstance(p.type, ArrayType) for p in fn.params
            ):
                reached.append(instantiate(fn, (), fn.name))
    order = {f.name: i for i, f in enumerate(module.functions)}
    seen: set[str] = set()
    for inst in sorted(reached, key=lambda i: order[i.fn.name]):
        if inst.wgsl_name not in seen:
            seen.add(inst.wgsl_name)
            plan.funcs.append(inst)
    return plan
