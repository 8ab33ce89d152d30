"""Arrays in kernels: N-d indexing, extents, and array names that can be rebound.

RingIR arrays are flat and the IR has no pointer variables (WGSL has none to
storage or workgroup memory), so the frontend resolves everything else here:

- ``a[i, j]`` becomes a load at the row-major offset ``i * extent1 + j``.
- An array's extents are constants when its size is (shared, local and
  constant arrays); a global array's extents are hidden i32 parameters that
  the launch fills in (``<name>.shape<d>``, docs/layout.md).  N-d arrays get
  them always, 1-D arrays only when ``len``/``.shape``/``.size`` asks, so 1-D
  kernels compile exactly as before.
- A name bound to arrays more than once (``a, b = b, a`` in a loop) is an
  i32 *selector* variable over the arrays of its type that such names hold;
  each use branches on it.  Arrays of one type may only be added to that set
  before any of them is read, so every branch knows all candidates.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ringkernel.frontends.semantic import Operand, Semantic
from ringkernel.ringir import (
    I32,
    I64,
    ArrayType,
    FunctionBuilder,
    LocalVar,
    ScalarType,
    Value,
    extent_param_name,
    hidden_extents,
)
from ringkernel.ringir.diagnostics import CompileError

Extent = Value | int


@dataclass(frozen=True)
class ArrayRef:
    """The array an expression denotes: one of ``candidates``, picked by the i32 ``selector``."""

    candidates: tuple[Value, ...]
    selector: Value | None = None

    @property
    def type(self) -> ArrayType:
        ty = self.candidates[0].type
        assert isinstance(ty, ArrayType)
        return ty


@dataclass
class ArrayGroup:
    """Every array that rebindable names of one type may hold; a selector indexes ``members``."""

    members: list[Value] = field(default_factory=list)
    read: bool = False


@dataclass(frozen=True)
class ArraySlot:
    """A rebindable array name: its selector variable and the group it selects from."""

    var: LocalVar
    group: ArrayGroup
    type: ArrayType


def rebindable_names(fn: ast.FunctionDef) -> set[str]:
    """Names assigned more than once, or inside a branch or loop, or parameters assigned at all.

    Bound to an array, such a name may denote different arrays at one use,
    so it needs a selector; any other array name is a plain alias.
    """
    counts: dict[str, int] = {}
    nested: set[str] = set()

    def scan(body: list[ast.stmt], inside: bool) -> None:
        for stmt in body:
            for node in ast.walk(stmt) if not isinstance(stmt, (ast.If, ast.For, ast.While)) else ():
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    counts[node.id] = counts.get(node.id, 0) + 1
                    if inside:
                        nested.add(node.id)
            if isinstance(stmt, (ast.If, ast.For, ast.While)):
                for node in ast.walk(stmt.target) if isinstance(stmt, ast.For) else ():
                    if isinstance(node, ast.Name):
                        counts[node.id] = counts.get(node.id, 0) + 1
                        nested.add(node.id)
                scan(stmt.body, True)
                scan(stmt.orelse, True)

    scan(fn.body, False)
    params = {a.arg for a in fn.args.args}
    return {n for n, c in counts.items() if c > 1 or n in nested or n in params}


class ArrayTranslation:
    """The array half of :class:`~ringkernel.frontends.python.FunctionTranslator` (a mixin)."""

    # provided by the translator
    b: FunctionBuilder
    sem: Semantic
    arrays: dict[str, ArrayRef]
    error: Callable[..., CompileError]
    visit: Callable[[ast.AST], Any]
    temp: Callable[[str, ScalarType], LocalVar]
    static_int: Callable[[ast.expr, str], int]
    mark_assigned: Callable[[str], None]
    element_words: Callable[[Value], int]

    def init_array_state(self, fn: ast.FunctionDef) -> None:
        self.rebindable = rebindable_names(fn)
        self.slots: dict[str, ArraySlot] = {}
        self.groups: dict[ArrayType, ArrayGroup] = {}
        self.extent_params: dict[str, tuple[Value, ...]] = {}
        self.array_param_names: list[str] = []

    # --- parameters and extents ---

    def bind_array_param(self, name: str, value: Value, node: ast.AST) -> None:
        assert isinstance(value.type, ArrayType)
        self.array_param_names.append(value.name)
        if value.type.ndim > 1:
            self.extents_of(value)
        if name in self.rebindable:
            self.bind_array_name(name, ArrayRef((value,)), node)
            self.mark_assigned(name)
        else:
            self.arrays[name] = ArrayRef((value,))

    def extents_of(self, array: Value) -> tuple[Extent, ...]:
        """The extents of ``array``: constants when its size is known, else hidden parameters."""
        ty = array.type
        assert isinstance(ty, ArrayType)
        if ty.size is not None:
            return _constant_shape(ty)
        known = self.extent_params.get(array.name)
        if known is None:
            b = self.b
            known = tuple(b.add_param(extent_param_name(array.name, d), I32) for d in range(ty.ndim))
            self.extent_params[array.name] = known
        return known

    def extent_value(self, extent: Extent) -> Value:
        return extent if isinstance(extent, Value) else self.b.const(extent, I32)

    def ordered_params(self, params: tuple[Value, ...]) -> tuple[Value, ...]:
        """Hidden extents after every declared parameter, by array parameter then dimension."""
        order = {n: i for i, n in enumerate(self.array_param_names)}
        extents = hidden_extents([p.name for p in params], order)
        declared = [p for p, where in zip(params, extents) if where is None]
        hidden = [(where, p) for p, where in zip(params, extents) if where is not None]
        hidden.sort(key=lambda h: (order[h[0][0]], h[0][1]))
        return (*declared, *(p for _, p in hidden))

    # --- names ---

    def bind_array_name(self, name: str, ref: ArrayRef, node: ast.AST) -> None:
        """``name = <array>``: an alias, or a selector store when ``name`` is rebindable."""
        if name not in self.rebindable:
            self.arrays[name] = ref
            return
        slot = self.slots.get(name)
        if slot is None:
            group = self.groups.setdefault(ref.type, ArrayGroup())
            var = self.b.local(f"{name}.array", I32)
            slot = self.slots[name] = ArraySlot(var, group, ref.type)
            self.arrays[name] = ref  # marks the name as an array; reads go through the slot
        if ref.type != slot.type:
            raise self.error(
                f"'{name}' holds {_describe(slot.type)} and cannot be rebound to {_describe(ref.type)}; "
                "array names can only be rebound to arrays of the same type, dimensions and memory",
                node,
            )
        if ref.selector is not None:
            self.b.store_var(slot.var, ref.selector)
        else:
            (array,) = ref.candidates
            if array not in slot.group.members:
                if slot.group.read:
                    raise self.error(
                        f"'{name}' is rebound to an array created after a rebindable name of its type "
                        "was first used; create every array these names refer to before using any of them",
                        node,
                    )
                slot.group.members.append(array)
            index = slot.group.members.index(array)
            self.b.store_var(slot.var, self.b.const(index, I32))

    def array_ref(self, name: str) -> ArrayRef:
        slot = self.slots.get(name)
        if slot is None:
            return self.arrays[name]
        slot.group.read = True
        members = tuple(slot.group.members)
        if len(members) == 1:
            return ArrayRef(members)
        return ArrayRef(members, self.b.load_var(slot.var))

    def array_operand(self, name: str) -> Operand:
        ref = self.array_ref(name)
        return Operand(ref.candidates[0], array=ref)

    # --- uses ---

    def dispatch(
        self, ref: ArrayRef, use: Callable[[Value], Value | None], result: ScalarType | None
    ) -> Value | None:
        """``use(array)`` for the array ``ref`` denotes: a branch per candidate when it is selected."""
        if ref.selector is None:
            return use(ref.candidates[0])
        b = self.b
        tmp = self.temp("array", result) if result is not None else None

        def arm(k: int) -> None:
            value = use(ref.candidates[k])
            if tmp is not None and value is not None:
                b.store_var(tmp, value)

        selector = ref.selector

        def chain(k: int) -> None:
            if k == len(ref.candidates) - 1:
                arm(k)
                return
            cond = b.compare("eq", selector, b.const(k, I32))
            with b.if_(cond):
                arm(k)
            with b.else_():
                chain(k + 1)

        chain(0)
        return b.load_var(tmp) if tmp is not None else None

    def array_indices(self, ref: ArrayRef, node: ast.expr) -> list[Operand]:
        """The index operands of ``a[...]`` (one per dimension), checked against ``ref``'s rank."""
        elts = node.elts if isinstance(node, ast.Tuple) else [node]
        ndim = ref.type.ndim
        if len(elts) != ndim and ndim == 1:
            raise self.error(
                f"this array has 1 dimension and takes 1 index, got {len(elts)}; to index it as "
                f"a[i, j], declare it Array[T, {len(elts)}] (or index the flat data as a[i * width + j])",
                node,
            )
        if len(elts) != ndim:
            example = ", ".join("ijk"[:ndim])
            raise self.error(
                f"this array has {ndim} dimension{'s' if ndim > 1 else ''} and needs {ndim} "
                f"index{'es' if ndim > 1 else ''} (a[{example}]), got {len(elts)}",
                node,
            )
        return [self.sem.promote(self.visit(e)) for e in elts]  # a u8 index is an i32 one

    def flat_index(self, array: Value, indices: list[tuple[Operand, ast.expr]]) -> Value:
        """The row-major offset of ``indices`` in ``array`` (a 1-D index is used as is)."""
        sem = self.sem
        typed = []
        for op, node in indices:
            ty = sem.scalar_type(op, node)
            if not ty.is_int:
                raise self.error(f"array indices must be integers, not {ty}", node)
            typed.append((op, node, ty))
        if len(typed) == 1:
            op, node, ty = typed[0]
            return sem.coerce(op, ty, node, "the index")
        wide = I64 if any(not op.is_literal and ty.bits == 64 for op, _, ty in typed) else I32
        b = self.b
        values = []
        for op, node, ty in typed:
            if op.is_literal:
                values.append(sem.coerce(op, wide, node, "the index"))
            else:
                v = sem.coerce(op, ty, node, "the index")
                values.append(v if ty == wide else b.cast(v, wide))
        extents = self.extents_of(array)
        offset = values[0]
        for value, extent in zip(values[1:], extents[1:]):
            e = self.extent_value(extent)
            if wide != I32:
                e = b.cast(e, wide)
            offset = b.binary("add", b.binary("mul", offset, e), value)
        return offset

    def extent_operand(self, ref: ArrayRef, dim: int | None) -> Operand:
        """``a.shape[dim]`` (``len(a)`` is dim 0) or, with ``dim`` None, ``a.size``: an i32."""
        ty = ref.type
        if ty.size is not None:  # one shape for every candidate
            count = ty.size if dim is None else _constant_shape(ty)[dim]
            if dim in (None, ty.ndim - 1):  # an array of structs counts words there
                count //= self.element_words(ref.candidates[0])
            return Operand(self.b.const(count, I32))

        def use(array: Value) -> Value:
            extents = [self.extent_value(e) for e in self.extents_of(array)]
            if dim is not None:
                total = extents[dim]
            else:
                total = extents[0]
                for e in extents[1:]:
                    total = self.b.binary("mul", total, e)
            words = self.element_words(array)  # an Array[S] is held as its u32 words: its last
            if words == 1 or dim not in (None, len(extents) - 1):  # extent counts words
                return total
            return self.b.binary("div", total, self.b.const(words, I32))

        value = self.dispatch(ref, use, I32)
        assert value is not None
        return Operand(value)

    def array_attribute(self, node: ast.Attribute) -> Operand:
        """``a.size`` (``a.shape`` only as ``a.shape[d]``)."""
        assert isinstance(node.value, ast.Name)
        ref = self.array_ref(node.value.id)
        if node.attr == "size":
            return self.extent_operand(ref, None)
        if node.attr == "shape":
            raise self.error("use a.shape[d] with a constant dimension d", node)
        raise self.error(
            f"arrays have no attribute '{node.attr}' in kernels; they have .shape[d] and .size", node
        )

    def shape_subscript(self, node: ast.Subscript) -> Operand:
        """``a.shape[d]`` with a constant ``d``."""
        attr = node.value
        assert isinstance(attr, ast.Attribute) and isinstance(attr.value, ast.Name)
        ref = self.array_ref(attr.value.id)
        dim = self.static_int(node.slice, "the dimension of a.shape[d]")
        ndim = ref.type.ndim
        if not 0 <= dim < ndim:
            raise self.error(
                f"dimension {dim} is out of range for an array of {ndim} dimension{'s' if ndim > 1 else ''} "
                f"(0 to {ndim - 1})",
                node.slice,
            )
        return self.extent_operand(ref, dim)


def array_shape(
    error: Callable[[str, ast.AST], CompileError], value: object, node: ast.AST, what: str
) -> tuple[int, tuple[int, ...] | None]:
    """The size and shape of ``rk.shared_array(T, n | (r, c))`` / ``rk.local_array``'s second argument."""
    dims = value if isinstance(value, tuple) else (value,)
    if not 1 <= len(dims) <= 3 or any(isinstance(d, bool) or not isinstance(d, int) for d in dims):
        raise error(f"the {what} shape must be a constant integer or a tuple of 1 to 3 of them", node)
    for d in dims:
        if d <= 0:
            raise error(f"the {what} extents must be positive, got {d}", node)
    size = math.prod(dims)
    return size, (tuple(dims) if len(dims) > 1 else None)


def _constant_shape(ty: ArrayType) -> tuple[int, ...]:
    """The extents of a sized array (the verifier guarantees they are constants)."""
    assert ty.size is not None
    if ty.shape is None:
        return (ty.size,)
    return tuple(d for d in ty.shape if d is not None)


def _describe(ty: ArrayType) -> str:
    dims = f"{ty.ndim}-D " if ty.ndim > 1 else ""
    return f"a {dims}{ty.space} array of {ty.elem}" + (f" (size {ty.size})" if ty.size is not None else "")


__all__ = ["ArrayRef", "ArrayTranslation", "array_shape", "rebindable_names"]
