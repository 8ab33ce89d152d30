"""What the MSL target forbids and supports: its reserved words and capability table.

Every user string (function, parameter, local, value and struct names) is
escaped against this list before it reaches a template, so it can neither
inject code nor collide with a keyword, a Metal library name, a macro, or a
name the emitter generates (those all start with ``rk_``).  Metal has no
``double`` and no portable 64-bit atomics.
"""

from __future__ import annotations

import functools

from ringkernel.lowering.common import Capabilities, NamingRules, TypeUse, escaped_identifier
from ringkernel.lowering.common.capabilities import element

_CXX_KEYWORDS = """
alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t
char16_t char32_t class compl concept const consteval constexpr constinit const_cast
continue co_await co_return co_yield decltype default delete do double dynamic_cast else
enum explicit export extern false float for friend goto if inline int long mutable
namespace new noexcept not not_eq nullptr operator or or_eq private protected public
register reinterpret_cast requires return short signed sizeof static static_assert
static_cast struct switch template this thread_local throw true try typedef typeid
typename union unsigned using virtual void volatile wchar_t while xor xor_eq
main std NULL
"""

_MSL_WORDS = """
kernel vertex fragment device constant threadgroup thread threadgroup_imageblock
ray_data object_data visible stage_in patch half bfloat uint uchar ushort ulong size_t
ptrdiff_t metal precise fast as_type atomic atomic_int atomic_uint atomic_float
atomic_bool atomic_long atomic_ulong memory_order memory_order_relaxed
memory_order_acquire memory_order_release memory_order_acq_rel memory_order_seq_cst
mem_flags mem_none mem_device mem_threadgroup mem_texture threadgroup_barrier
simdgroup_barrier atomic_load_explicit atomic_store_explicit atomic_exchange_explicit
atomic_compare_exchange_weak_explicit atomic_fetch_add_explicit atomic_fetch_sub_explicit
atomic_fetch_min_explicit atomic_fetch_max_explicit atomic_fetch_and_explicit
atomic_fetch_or_explicit atomic_fetch_xor_explicit sqrt rsqrt exp exp2 exp10 log log2
log10 sin cos tan tanh sinh cosh asin acos atan atan2 pow powr floor ceil fabs abs fma
fmin fmax min max clamp select isnan isinf isfinite sign step trunc round rint fract
fmod modf frexp ldexp mix saturate popcount clz ctz texture1d texture2d texture3d
texturecube texture_buffer depth2d sampler buffer array vec packed_float3
packed_float4 packed_int3 packed_uint3 simd_sum simd_shuffle quad_shuffle
INFINITY NAN HUGE_VALF HUGE_VALH MAXFLOAT MAXHALF FLT_MAX FLT_MIN FLT_EPSILON
"""

_VECTOR_BASES = ("bool", "char", "uchar", "short", "ushort", "int", "uint", "long", "ulong",
                 "half", "float", "bfloat")

RESERVED: frozenset[str] = frozenset(
    _CXX_KEYWORDS.split()
    + _MSL_WORDS.split()
    + [f"{b}{n}" for b in _VECTOR_BASES for n in (2, 3, 4)]
    + [f"{b}{r}x{c}" for b in ("half", "float") for r in (2, 3, 4) for c in (2, 3, 4)]
)

NAMES = NamingRules("msl", RESERVED, functools.partial(escaped_identifier, reserved=RESERVED))


def sanitize(name: str) -> str:
    """A valid, non-reserved C++ identifier derived from ``name`` (not yet unique)."""
    return NAMES.sanitize(name)


def value_name(original: str) -> str:
    """The pre-mangling spelling of an SSA value: ``%0`` reads as ``v0``."""
    return f"v{original}" if original[:1].isdigit() else f"v_{original}"


_NO_F64 = "Metal has no 64-bit float (double); use f32"


def _refusal(use: TypeUse) -> str:
    fn = use.owner
    if use.role == "atomic":
        return f"Metal has no portable 64-bit atomics ({element(use.ty)}); use i32, u32 or f32"
    if use.role == "field":
        return f"field '{use.name}' of struct '{use.struct}' has type f64: {_NO_F64}"
    if use.role == "param":
        assert fn is not None
        return f"parameter '{use.name}' of '{fn.name}' is f64: {_NO_F64}"
    if use.role == "return":
        assert fn is not None
        return f"'{fn.name}' returns f64: {_NO_F64}"
    if use.role == "local":
        return f"variable '{use.name}' is f64: {_NO_F64}"
    return f"this expression has type f64: {_NO_F64}"


CAPABILITIES = Capabilities(
    target="msl",
    scalars=frozenset({"bool", "i32", "u32", "i64", "u64", "f32", "i8", "u8", "i16", "u16", "f16"}),
    atomic_elements=frozenset({"bool", "i32", "u32", "f32"}),
    emits_structs=True,
    refusal=_refusal,
)
