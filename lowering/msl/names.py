"""Identifier mangling for MSL: user names become safe, unique C++ identifiers.

Every user string (function, parameter, local, value and struct names) goes
through :class:`Namer` before it reaches a template, so it can neither inject
code nor collide with a keyword, a Metal library name, a macro, or a name the
emitter generates (those all start with ``rk_``).
"""

from __future__ import annotations

import re

GENERATED_PREFIX = "rk_"

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

_INVALID = re.compile(r"[^A-Za-z0-9_]")
_UNDERSCORES = re.compile(r"__+")
_MACRO_LIKE = re.compile(r"^[A-Z][A-Z0-9]*_[A-Z0-9_]*$")


def sanitize(name: str) -> str:
    """A valid, non-reserved C++ identifier derived from ``name`` (not yet unique)."""
    ident = _UNDERSCORES.sub("_", _INVALID.sub("_", name))
    if not ident or ident[0] == "_" or ident[0].isdigit():
        ident = "u" + ident
    if ident.lower().startswith(GENERATED_PREFIX):
        ident = "u" + ident
    if ident in RESERVED or _MACRO_LIKE.match(ident):
        ident = ident + "_u"
    return ident


class Namer:
    """Hands out unique identifiers within one scope (a parent's names stay taken)."""

    def __init__(self, parent: Namer | None = None) -> None:
        self._taken: set[str] = set(parent._taken) if parent else set()
        self._given: dict[tuple[str, str], str] = {}

    def name(self, kind: str, original: str) -> str:
        """The identifier for ``original`` of ``kind`` (same answer on every call)."""
        key = (kind, original)
        ident = self._given.get(key)
        if ident is None:
            base = sanitize(original)
            ident, n = base, 0
            while ident in self._taken:
                n += 1
                ident = f"{base}_{n}"
            self._taken.add(ident)
            self._given[key] = ident
        return ident


def value_name(original: str) -> str:
    """The pre-mangling spelling of an SSA value: ``%0`` reads as ``v0``."""
    return f"v{original}" if original[:1].isdigit() else f"v_{original}"
