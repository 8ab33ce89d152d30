"""What the WGSL target forbids and supports: its reserved words and capability table.

User names reach WGSL with a fixed prefix (``k_`` kernels, ``f_`` funcs,
``v_`` parameters and locals, ``g_``/``s_``/``u_`` module-scope buffers,
``P_`` uniform structs), so they never spell a keyword, a builtin or a
generated name (``t<n>``, ``rk_*``); characters outside ``[A-Za-z0-9_]`` are
replaced and a short hash keeps such names distinct.
"""

from __future__ import annotations

from dataclasses import replace

from ringkernel.lowering.common import Capabilities, NamingRules, TypeUse, hashed_identifier
from ringkernel.ringir import Cast, Const, SharedArray

# WGSL keywords and reserved words (WGSL spec sections 15.2-15.3); the prefixes
# above already keep user names clear of them, this list guards generated ones.
WGSL_RESERVED = frozenset(
    """
    alias break case const const_assert continue continuing default diagnostic discard
    else enable false fn for if let loop override requires return struct switch true
    var while NULL Self abstract active alignas alignof as asm asm_fragment async
    attribute auto await become binding_array cast catch class co_await co_return
    co_yield coherent column_major common compile compile_fragment concept const_cast
    consteval constexpr constinit crate debugger decltype delete demote
    demote_to_helper do dynamic_cast enum explicit export extends extern external
    fallthrough filter final finally friend from fxgroup get goto groupshared highp
    impl implements import inline instanceof interface layout lowp macro macro_rules
    match mediump meta mod module move mut mutable namespace new nil noexcept
    noinline nointerpolation noperspective null nullptr of operator package
    packoffset partition pass patch pixelfragment precise precision premerge priv
    protected pub public readonly ref regardless register reinterpret_cast require
    resource restrict self set shared sizeof smooth snorm static static_assert
    static_cast std subroutine super target template this thread_local throw trait
    try type typedef typeid typename typeof union unless unorm unsafe unsized use
    using varying virtual volatile wgsl where with writeonly yield
    """.split()
)

NAMES = NamingRules("wgsl", WGSL_RESERVED, hashed_identifier)

SCALARS = frozenset({"f32", "i32", "u32", "bool", "i8", "u8", "i16", "u16"})
"""i8..u16 are emulated: i32/u32 registers, arrays packed into u32 words (see the emitter)."""
F16_SCALARS = SCALARS | {"f16"}
"""With ``enable f16;`` (the adapter's ``shader-f16`` feature): f16 values and arrays, no atomics."""
F16_FEATURE = "shader-f16"


def kernel_entry_name(kernel_name: str) -> str:
    """The WGSL entry-point name of a kernel (what the runtime passes to wgpu)."""
    return "k_" + NAMES.sanitize(kernel_name)


SUPPORTED = (
    "the wgsl target has f32, i32, u32, bool, the emulated i8 u8 i16 u16, and f16 with the "
    "shader-f16 feature"
)
"""What every refusal of a type lists, so the messages agree."""


def _refusal(use: TypeUse) -> str:
    if _element_name(use) == "f16" and use.role != "atomic":
        return (
            f"{describe(use)} has type f16, which WGSL has only with the '{F16_FEATURE}' feature: "
            "the wgpu backend enables it when its adapter has the feature; compile with "
            "compile('wgsl', f16=True) to emit 'enable f16;'"
        )
    return f"{describe(use)} has type {_element_name(use)}, which WGSL does not support ({SUPPORTED})"


def describe(use: TypeUse) -> str:
    """How a WGSL error names a type use."""
    fn = use.owner
    if use.role == "param":
        assert fn is not None
        return f"parameter '{use.name}' of {'kernel' if fn.is_kernel else 'func'} '{fn.name}'"
    if use.role == "return":
        assert fn is not None
        return f"the return value of func '{fn.name}'"
    if use.role == "local":
        return f"variable '{use.name}'"
    if isinstance(use.stmt, Const):
        return f"the constant {use.stmt.value!r}"
    if isinstance(use.stmt, Cast):
        return "the result of this cast"
    if isinstance(use.stmt, SharedArray):
        return "this shared array's element"
    return f"the value '%{use.name}' computed here"


def _element_name(use: TypeUse) -> str:
    ty = use.ty
    return str(getattr(ty, "elem", ty))


CAPABILITIES = Capabilities(
    target="wgsl",
    scalars=SCALARS,
    atomic_elements=frozenset({"f32", "i32", "u32", "bool"}),
    emits_structs=False,
    refusal=_refusal,
    notes=("cast to a 32-bit type, or compile for another target",),
)
F16_CAPABILITIES = replace(CAPABILITIES, scalars=F16_SCALARS)
"""The table when ``enable f16;`` is emitted."""
