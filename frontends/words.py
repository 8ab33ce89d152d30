"""Scalars of any type in an array of 32-bit words (``Array[S]`` elements, actor memory).

RingIR sees struct arrays as ``array<u32>`` so every target can hold them
(WGSL has no byte addressing).  A 4-byte scalar is one word, bitcast; a
64-bit one is two words, low word first; a 1- or 2-byte one (bool is one
byte) sits at a bit ``shift`` inside its word.  Sub-word stores clear and
set their bits with atomic and/or, so two work-items writing different
bytes of one word never undo each other's store (the same rule WGSL's
packed small-type arrays follow); in a local (per-work-item) array a plain
read-modify-write does.
"""

from __future__ import annotations

from collections.abc import Callable

from ringkernel.ringir import U16, U32, U64, AddressSpace, ArrayType, FunctionBuilder, ScalarType, Value
from ringkernel.ringir.types import as_scalar


def _shift(b: FunctionBuilder, shift: int | Value) -> Value:
    return b.const(shift, U32) if isinstance(shift, int) else shift


def load_scalar(b: FunctionBuilder, array: Value, word: Value, shift: int | Value, ty: ScalarType) -> Value:
    """The ``ty`` value stored at bit ``shift`` of ``array[word]`` (and the next word if 64-bit)."""
    bits = 8 if ty.is_bool else ty.bits
    if bits == 64:
        lo = b.load(array, word)
        hi = b.load(array, b.binary("add", word, b.const(1, as_scalar(word.type))))
        wide = b.binary("or", b.cast(lo, U64), b.binary("shl", b.cast(hi, U64), b.const(32, U64)))
        return wide if ty == U64 else b.bitcast(wide, ty)
    value = b.load(array, word)
    if bits == 32:
        return value if ty == U32 else b.bitcast(value, ty)
    if not (isinstance(shift, int) and shift == 0):
        value = b.binary("shr", value, _shift(b, shift))
    value = b.binary("and", value, b.const((1 << bits) - 1, U32))
    if ty.is_bool:
        return b.compare("ne", value, b.const(0, U32))
    if ty.is_float:  # f16: its bits, then reinterpreted
        return b.bitcast(b.cast(value, U16), ty)
    return b.cast(value, ty)


def store_scalar(
    b: FunctionBuilder, array: Value, at: Callable[[], tuple[Value, int | Value]], value: Value
) -> None:
    """Stores ``value`` at the word and bit shift ``at()`` gives, leaving the word's other bytes alone.

    ``at`` is called after ``value`` is converted to its bits, so a 4-byte
    store emits its bitcast first, as it always has (output digests stay put).
    """
    ty = value.type
    assert isinstance(ty, ScalarType)
    bits = 8 if ty.is_bool else ty.bits
    if bits == 64:
        wide = value if ty == U64 else b.bitcast(value, U64)
        lo = b.cast(b.binary("and", wide, b.const(0xFFFFFFFF, U64)), U32)
        hi = b.cast(b.binary("shr", wide, b.const(32, U64)), U32)
        word, _ = at()
        b.store(array, word, lo)
        b.store(array, b.binary("add", word, b.const(1, as_scalar(word.type))), hi)
        return
    if bits == 32:
        raw = value if ty == U32 else b.bitcast(value, U32)
        b.store(array, at()[0], raw)
        return
    mask = (1 << bits) - 1
    raw = b.cast(b.bitcast(value, U16), U32) if ty.is_float else b.cast(value, U32)
    raw = b.binary("and", raw, b.const(mask, U32))
    word, shift = at()
    shifted = _shift(b, shift)
    if isinstance(shift, int):
        keep = b.const(~(mask << shift) & 0xFFFFFFFF, U32)
    else:
        keep = b.binary("xor", b.binary("shl", b.const(mask, U32), shifted), b.const(0xFFFFFFFF, U32))
    if not (isinstance(shift, int) and shift == 0):
        raw = b.binary("shl", raw, shifted)
    assert isinstance(array.type, ArrayType)
    if array.type.space == AddressSpace.LOCAL:  # one work-item's own memory: a plain read-modify-write
        b.store(array, word, b.binary("or", b.binary("and", b.load(array, word), keep), raw))
        return
    b.atomic("and", array, word, keep)
    b.atomic("or", array, word, raw)


__all__ = ["load_scalar", "store_scalar"]
