"""How a kernel's parameters reach the shader: the contract with the wgpu runtime.

Array parameters become storage buffers at ``@group(0) @binding(i)``, numbered
in parameter order.  An array parameter *aliased* to an earlier one (the
launch passes one array for both) has no binding of its own: it reads and
writes the earlier parameter's buffer, as it would share memory on CUDA.
Scalar parameters are packed, in parameter order, into one uniform struct at
the next binding.  Every WGSL scalar we use is 4 bytes with 4-byte alignment
(bool travels as u32) except f16 (2 and 2, with ``enable f16``), and a
uniform buffer's size is rounded up to 16 bytes as WGSL's uniform layout
rules require.
"""

from __future__ import annotations

from dataclasses import dataclass

from ringkernel.lowering.wgsl.target import SUPPORTED, kernel_entry_name
from ringkernel.ringir import ArrayType, Function, ScalarType
from ringkernel.ringir.diagnostics import CompileError, SourceLoc

# RingIR scalar -> (WGSL type in memory, size, alignment); 64-bit types are absent.
HOST_SHAREABLE = {
    "f32": ("f32", 4, 4),
    "i32": ("i32", 4, 4),
    "u32": ("u32", 4, 4),
    "bool": ("u32", 4, 4),
    "f16": ("f16", 2, 2),
    # emulated small integers: a uniform field is one i32/u32; arrays are packed (PACKED)
    "i8": ("i32", 4, 4),
    "u8": ("u32", 4, 4),
    "i16": ("i32", 4, 4),
    "u16": ("u32", 4, 4),
}
PACKED = {"i8": 8, "u8": 8, "i16": 16, "u16": 16}
"""Bits of the element types WGSL lacks: their arrays are ``array<u32>`` holding 32/bits each."""

UNIFORM_STRUCT_ALIGN = 16


@dataclass(frozen=True)
class ArrayBinding:
    """A storage buffer: parameter ``param`` (index ``index``) at ``binding``."""

    param: str
    index: int
    binding: int
    elem: str
    """RingIR element type; bool elements are stored as one u32 (0 or 1) each."""


@dataclass(frozen=True)
class ScalarField:
    """A scalar parameter's place in the uniform struct."""

    param: str
    index: int
    offset: int
    type: str
    """RingIR type; bool is stored as u32 (0 or 1)."""


@dataclass(frozen=True)
class KernelBindings:
    """Everything the runtime needs to bind one kernel's arguments."""

    kernel: str
    entry_point: str
    arrays: tuple[ArrayBinding, ...]
    scalars: tuple[ScalarField, ...]
    uniform_binding: int | None
    uniform_size: int

    @property
    def binding_count(self) -> int:
        """One more than the highest binding number (aliased arrays leave gaps)."""
        if self.uniform_binding is not None:
            return self.uniform_binding + 1
        return max((a.binding + 1 for a in self.arrays), default=0)


def _round_up(value: int, align: int) -> int:
    return (value + align - 1) // align * align


def storage_type(ty: ScalarType, where: str, loc: SourceLoc | None = None) -> tuple[str, int, int]:
    """``(wgsl_type, size, align)`` of ``ty`` in a buffer; 64-bit types are an error."""
    info = HOST_SHAREABLE.get(ty.name)
    if info is None:
        raise CompileError.at(
            loc,
            f"{where} has type {ty}, which WGSL does not support "
            f"({SUPPORTED})",
        )
    return info


Aliases = tuple[tuple[str, str, str], ...]
"""``(kernel, param, earlier_param)`` triples: ``param`` uses ``earlier_param``'s buffer."""


def kernel_aliases(fn: Function, aliases: Aliases = ()) -> dict[str, str]:
    """``param -> representative`` for kernel ``fn``; checks each alias names two arrays."""
    arrays = {p.name: (i, p.type) for i, p in enumerate(fn.params) if isinstance(p.type, ArrayType)}
    result: dict[str, str] = {}
    for kernel, param, rep in aliases:
        if kernel != fn.name:
            continue
        if param not in arrays or rep not in arrays or arrays[rep][0] >= arrays[param][0]:
            raise CompileError(
                f"alias {param!r} -> {rep!r} of kernel '{fn.name}' must name two array "
                "parameters, the representative first"
            )
        if arrays[param][1].elem != arrays[rep][1].elem:
            raise CompileError(
                f"array parameters '{param}' and '{rep}' of kernel '{fn.name}' have different "
                "element types and cannot share one buffer"
            )
        result[param] = result.get(rep, rep)
    return result


def plan_kernel_bindings(fn: Function, aliases: Aliases = ()) -> KernelBindings:
    """The binding numbers and uniform layout of kernel ``fn``."""
    arrays: list[ArrayBinding] = []
    scalars: list[ScalarField] = []
    offset = 0
    shared = kernel_aliases(fn, aliases)
    array_params = [(i, p.name, p.type) for i, p in enumerate(fn.params) if isinstance(p.type, ArrayType)]
    for binding, (index, name, ty) in enumerate(array_params):
        storage_type(ty.elem, f"parameter '{name}' of kernel '{fn.name}'", fn.loc)
        if name not in shared:
            arrays.append(ArrayBinding(name, index, binding, ty.elem.name))
    for index, p in enumerate(fn.params):
        if isinstance(p.type, ScalarType):
            _, size, align = storage_type(
                p.type, f"parameter '{p.name}' of kernel '{fn.name}'", fn.loc
            )
            offset = _round_up(offset, align)
            scalars.append(ScalarField(p.name, index, offset, p.type.name))
            offset += size
    uniform_binding = len(array_params) if scalars else None
    return KernelBindings(
        kernel=fn.name,
        entry_point=kernel_entry_name(fn.name),
        arrays=tuple(arrays),
        scalars=tuple(scalars),
        uniform_binding=uniform_binding,
        uniform_size=_round_up(offset, UNIFORM_STRUCT_ALIGN) if scalars else 0,
    )
