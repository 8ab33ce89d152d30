"""WGSL identifiers: every name in emitted WGSL comes from here.

User names (kernels, funcs, parameters, locals) never reach WGSL verbatim.
Each gets a fixed prefix (``k_`` kernels, ``f_`` funcs, ``v_`` parameters
and locals, ``g_``/``s_``/``u_`` module-scope buffers), so no user string can
spell a keyword, a builtin, a generated name (``t<n>``, ``rk_*``) or
anything but an identifier.  Characters outside ``[A-Za-z0-9_]`` are
replaced and a short hash keeps such names distinct.
"""

from __future__ import annotations

import hashlib
import re

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

_IDENT = re.compile(r"[A-Za-z0-9_]+")


def sanitize(name: str) -> str:
    """``name`` as identifier characters; non-ASCII names get a hash suffix."""
    if _IDENT.fullmatch(name):
        return name
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name)
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return f"{cleaned}_h{digest}"


def kernel_entry_name(kernel_name: str) -> str:
    """The WGSL entry-point name of a kernel (what the runtime passes to wgpu)."""
    return "k_" + sanitize(kernel_name)


class Namer:
    """Hands out unique identifiers in one WGSL scope, in a deterministic order."""

    def __init__(self, taken: set[str] | None = None) -> None:
        self.taken: set[str] = set(taken or ())

    def fresh(self, prefix: str, name: str = "") -> str:
        base = prefix + sanitize(name) if name else prefix.rstrip("_")
        candidate = base
        n = 1
        while candidate in self.taken or candidate in WGSL_RESERVED:
            candidate = f"{base}_{n}"
            n += 1
        self.taken.add(candidate)
        return candidate
