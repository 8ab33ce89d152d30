"""Translating struct, ``Vec`` and tuple values (see :mod:`ringkernel.frontends.valuetypes`).

A value of such a type is an :class:`AggOperand`: the SSA values of its
scalar leaves.  Where one *lives* is a :class:`Place`: one local per leaf (a
variable), the leaves of a temporary (read-only), or the words of an
``Array[S]`` element in memory.  ``p.x``, ``v[i]`` and ``a[i].v[j]`` narrow a
place; loads and stores act on its leaves only, so ``a[i].x = v`` writes one
word.  A dynamic ``Vec`` index reads 0 and writes nothing when out of range
(never outside the Vec).

A local ``Vec`` of more than :data:`MAX_VEC_LEN` elements is *memory-backed*:
its place is a per-work-item array of its element type (``typed``), defined
at the top of the function, so ``v[i]`` is one load or store instead of a
test per element.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from ringkernel.frontends.arrays import ArrayRef
from ringkernel.frontends.semantic import Operand
from ringkernel.frontends.valuetypes import (
    MAX_VEC_LEN,
    MAX_VEC_MEMORY,
    WORD_BYTES,
    StructArray,
    StructDef,
    TupleDef,
    VecType,
    array_element_problem,
    element_slice,
    is_aggregate,
    leaf_names,
    leaf_offsets,
    leaves,
    scalar_bytes,
    struct_words,
)
from ringkernel.frontends.words import load_scalar, store_scalar
from ringkernel.ringir import I32, U32, ArrayType, LocalVar, ScalarType, TupleType, Type, Value
from ringkernel.ringir.diagnostics import CompileError
from ringkernel.ringir.types import MAX_TUPLE_ELEMS

if TYPE_CHECKING:
    from ringkernel.frontends.python import FunctionTranslator


@dataclass(frozen=True)
class AggOperand(Operand):
    """A struct, Vec or tuple value: ``parts`` are its leaves; ``value`` only carries the type."""

    parts: tuple[Value, ...] = ()


def agg_operand(ty: Any, parts: tuple[Value, ...] | list[Value]) -> AggOperand:
    return AggOperand(Value("aggregate", ty), parts=tuple(parts))


@dataclass(frozen=True)
class Place:
    """Where a value of ``type`` lives: ``vars`` (locals), ``values`` (a temporary) or memory.

    In memory, the value starts ``offset`` bytes after the first byte of the
    word ``array[word]``, and its leaves lie at :func:`leaf_offsets` from there.
    ``dynamic`` makes the place element ``dynamic`` (a runtime index) of the
    Vec at it.
    """

    type: Any
    vars: tuple[LocalVar, ...] | None = None
    values: tuple[Value, ...] | None = None
    array: Value | None = None
    word: Value | None = None
    offset: int = 0
    dynamic: Value | None = None
    count: int = 0  # with ``dynamic``: the Vec's length
    typed: bool = False  # ``array`` holds the Vec's elements themselves; ``offset`` counts elements

    def narrow(self, start: int, ty: Any, byte: int) -> Place:
        """The part of type ``ty`` at leaf ``start`` (in locals) or ``byte`` bytes on (in memory)."""
        count = len(leaves(ty))
        if self.vars is not None:
            return Place(ty, vars=self.vars[start:start + count])
        if self.values is not None:
            return Place(ty, values=self.values[start:start + count])
        if self.typed:
            return Place(ty, array=self.array, word=self.word, offset=self.offset + start, typed=True)
        return Place(ty, array=self.array, word=self.word, offset=self.offset + byte)


# --- signatures --------------------------------------------------------------------------


def ir_type(ty: Any) -> Type:
    """The RingIR type a parameter or return type becomes (aggregates: a tuple of leaves)."""
    if is_aggregate(ty):
        return TupleType(leaves(ty))
    if isinstance(ty, StructArray):
        shape = None if ty.ndim == 1 else (None,) * ty.ndim
        return ArrayType(U32, ty.space, shape=shape)
    return ty


def ir_params(params: list[tuple[str, Any]]) -> list[tuple[str, Type]]:
    """Parameters with each aggregate flattened into one scalar parameter per leaf (``b.x``, ``v.0``)."""
    flat: list[tuple[str, Type]] = []
    for name, ty in params:
        if is_aggregate(ty):
            flat += [(f"{name}.{path}", leaf) for path, leaf in zip(leaf_names(ty), leaves(ty))]
        else:
            flat.append((name, ir_type(ty)))
    return flat


def type_problem(ty: Any) -> str | None:
    """Why an annotation's value type cannot be used, or None (Vec lengths, tuple sizes)."""
    if isinstance(ty, VecType) and ty.problem() is not None:
        return ty.problem()
    if isinstance(ty, TupleDef):
        if not ty.elems:
            return "a tuple type needs at least one element, e.g. tuple[f32, f32]"
        for elem in ty.elems:
            problem = type_problem(elem)
            if problem is not None:
                return problem
    if is_aggregate(ty) and len(leaves(ty)) > MAX_TUPLE_ELEMS:
        return (f"{ty} holds {len(leaves(ty))} scalars; a value passed or returned holds at most "
                f"{MAX_TUPLE_ELEMS} (pass a longer Vec's elements in an array)")
    return None


def launch_layout(params: list[tuple[str, Any]]) -> tuple[tuple[str, Any, int], ...]:
    """Per kernel parameter: (name, numpy dtype of a struct parameter or element, the
    dimensions of an array of them or 0).

    The dtype is None for parameters passed as they are; the runtime flattens
    the others (:func:`ringkernel.runtime.arguments.flatten_struct_arguments`).
    """
    out: list[tuple[str, Any, int]] = []
    for name, ty in params:
        if isinstance(ty, StructArray):
            out.append((name, ty.dtype, ty.ndim))
        elif isinstance(ty, StructDef):
            out.append((name, ty.dtype, 0))
        else:
            out.append((name, None, 0))
    return tuple(out)


# --- the translator's rules -------------------------------------------------------------


class AggregateRules:
    """The struct/Vec/tuple half of a :class:`FunctionTranslator` (which calls in here)."""

    def __init__(self, translator: FunctionTranslator) -> None:
        self.t = translator
        self.vars: dict[str, Place] = {}  # aggregate locals (and parameters) by name
        self.views: dict[str, StructDef | VecType] = {}  # IR array value name -> its elements' type

    @property
    def b(self) -> Any:
        return self.t.b

    def error(self, message: str, node: ast.AST) -> CompileError:
        return self.t.error(message, node)

    # --- parameters and locals ---

    def bind_param(self, name: str, ty: Any, values: Iterator[Value], node: ast.AST) -> bool:
        """Takes ``name``'s IR parameter(s) from ``values`` if it is an aggregate or struct array."""
        if isinstance(ty, StructArray):
            value = next(values)
            self.views[value.name] = ty.struct
            self.t.bind_array_param(name, value, node)
            return True
        if not is_aggregate(ty):
            return False
        place = self.declare(name, ty, node)
        assert place.vars is not None
        for var in place.vars:
            self.b.store_var(var, next(values))
        self.t.mark_assigned(name)
        return True

    def declare(self, name: str, ty: Any, node: ast.AST) -> Place:
        """The variable ``name`` of aggregate type ``ty`` (one local per leaf), made on first use."""
        if name in self.t.vars or name in self.t.arrays:
            raise self.error(f"'{name}' already holds a {self.describe_name(name)}, not a {ty}", node)
        place = self.vars.get(name)
        if place is None:
            if isinstance(ty, VecType) and ty.length > MAX_VEC_LEN:  # memory-backed
                array = self.b.local_array(ty.elem, ty.length, hoist=True)
                place = Place(ty, array=array, word=self.b.const(0, I32), typed=True)
                self.vars[name] = place
                return place
            if len(leaves(ty)) > MAX_TUPLE_ELEMS:
                raise self.error(f"'{name}' would hold a {ty} of {len(leaves(ty))} scalars; a local value "
                                 f"holds at most {MAX_TUPLE_ELEMS} (a Vec up to {MAX_VEC_MEMORY}): index "
                                 "its parts where they are instead", node)
            names = leaf_names(ty)
            place = Place(ty, vars=tuple(self.b.local(f"{name}.{p}", t) for p, t in zip(names, leaves(ty))))
            self.vars[name] = place
        elif place.type != ty:
            raise self.error(f"'{name}' already has type {place.type}, not {ty}", node)
        return place

    def describe_name(self, name: str) -> str:
        if name in self.t.arrays:
            return "an array"
        var = self.t.vars.get(name)
        return str(var.type) if var is not None else "value"

    def assign_name(self, target: ast.Name, op: Operand, value_node: ast.AST) -> bool:
        """``name = value`` when either side is an aggregate; False leaves it to the scalar rules."""
        name = target.id
        if not isinstance(op, AggOperand):
            if name in self.vars:
                raise self.error(
                    f"'{name}' holds a {self.vars[name].type}; a {self.t.sem.scalar_type(op, value_node)} "
                    "cannot be assigned to it", value_node)
            return False
        place = self.declare(name, op.type, target)
        self.store(place, op, value_node)
        self.t.mark_assigned(name)
        return True

    # --- places ---

    def is_runtime(self, node: ast.expr) -> bool:
        """Whether ``node`` computes a kernel value (arrays excluded: their attributes are not ours)."""
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        if isinstance(node, ast.Name):
            t = self.t
            if node.id in t.arrays:
                return False
            return node.id in self.vars or node.id in t.scalar_params or node.id in t.assigned_names
        return True

    def place_of(self, node: ast.expr) -> Place | None:
        """The place ``node`` names if it is (part of) an aggregate, else None."""
        if isinstance(node, ast.Name):
            place = self.vars.get(node.id)
            if place is not None:
                example = f"{place.type}.zeros()" if isinstance(place.type, VecType) else f"{place.type}(...)"
                self.t.check_assigned(node, example)
            return place
        if isinstance(node, ast.Attribute):
            inner = node.value
            root = inner.value if isinstance(inner, ast.Subscript) else None
            if isinstance(root, ast.Name) and root.id in self.t.arrays and self.struct_view(root.id) is None:
                raise self.error(f"'{ast.unparse(inner)}' is a number; only struct values have fields", node)
            base = self.base_place(node.value)
            return None if base is None else self.field(base, node)
        if isinstance(node, ast.Subscript):
            if isinstance(node.value, ast.Name) and node.value.id in self.t.arrays:
                view = self.struct_view(node.value.id)
                return None if view is None else self.array_element(*view, node)
            base = self.base_place(node.value)
            return None if base is None else self.element(base, node)
        return None

    def struct_view(self, name: str) -> tuple[Value, StructDef | VecType] | None:
        """The word array and struct of the array name ``name`` when it is an ``Array[S]``.

        Array names of structs are never rebound (:meth:`refuse_rebinding`), so
        the name's first binding is the array it denotes.
        """
        array = self.t.arrays[name].candidates[0]
        struct = self.views.get(array.name)
        return None if struct is None else (array, struct)

    def element_words(self, array: Value) -> int:
        """The u32 words of one element of ``array``: a struct's for an ``Array[S]``, else 1."""
        struct = self.views.get(array.name)
        return 1 if struct is None else struct_words(struct)

    def allocation_element(self, node: ast.Call) -> StructDef | VecType | None:
        """The struct or Vec of ``rk.shared_array(S, n)`` / ``rk.local_array(S, n)``, else None."""
        if not node.args:
            return None
        first = node.args[0]
        if isinstance(first, ast.Name) and first.id in self.t.arrays:
            return None
        try:
            elem = self.t.static_callee(first)
        except CompileError:
            return None
        if not isinstance(elem, (StructDef, VecType)):
            return None
        problem = (elem.problem() if isinstance(elem, VecType) else None) or array_element_problem(elem)
        if problem is not None:
            raise self.error(problem, first)
        return elem

    def words_of(self, elem: StructDef | VecType) -> int:
        return struct_words(elem)

    def allocated(self, array: Value, elem: StructDef | VecType | None) -> Operand:
        """The operand of a new shared or local array; one of structs is held as its words."""
        if elem is not None:
            self.views[array.name] = elem
        return Operand(array)

    def refuse_rebinding(self, name: str, op: Operand, node: ast.AST) -> None:
        """``a, b = b, a`` on arrays of structs would mix their words with other u32 arrays'
        (one IR type); such names may only alias (``b = a``), never be rebound."""
        if name not in self.t.rebindable:
            return
        current = self.t.arrays.get(name)
        for value in (op.value, *(current.candidates if current is not None else ())):
            struct = self.views.get(value.name) if value is not None else None
            if struct is not None:
                raise self.error(
                    f"'{name}' is rebound to or from an Array[{struct}]; arrays of structs cannot be "
                    "rebound (a, b = b, a): index each by its own name", node)

    def base_place(self, node: ast.expr) -> Place | None:
        place = self.place_of(node)
        if place is not None or not self.is_runtime(node):
            return place
        op = self.t.visit(node)
        if isinstance(op, AggOperand):
            return Place(op.type, values=op.parts)
        return None

    def field(self, base: Place, node: ast.Attribute) -> Place:
        if base.dynamic is not None or not isinstance(base.type, StructDef):
            raise self.error(f"'{ast.unparse(node.value)}' is a {base.type}, which has no fields", node)
        found = base.type.field(node.attr)
        if found is None:
            names = ", ".join(n for n, _ in base.type.fields)
            raise self.error(f"struct {base.type} has no field '{node.attr}' (fields: {names})", node)
        start, ty, offset = found
        return base.narrow(start, ty, offset)

    def element(self, base: Place, node: ast.Subscript) -> Place:
        ty = base.type
        if base.dynamic is not None or not isinstance(ty, (VecType, TupleDef)):
            raise self.error(f"'{ast.unparse(node.value)}' is a {ty}, which cannot be indexed", node)
        if isinstance(node.slice, (ast.Slice, ast.Tuple)):
            raise self.error("index a Vec or tuple with one integer", node.slice)
        count = ty.length if isinstance(ty, VecType) else len(ty.elems)
        op = self.t.sem.promote(self.t.visit(node.slice))
        if op.is_literal:
            k = op.literal
            if isinstance(k, bool) or not isinstance(k, int):
                raise self.error(f"a {ty} index must be an integer, not {k!r}", node.slice)
            if not -count <= k < count:
                raise self.error(f"index {k} is out of range for {ty} (0 to {count - 1})", node.slice)
            start, elem = element_slice(ty, k % count)
            byte = start * scalar_bytes(elem) if isinstance(ty, VecType) else 0
            return base.narrow(start, elem, byte)
        if isinstance(ty, TupleDef):
            raise self.error("a tuple index must be a constant such as t[0]", node.slice)
        index_ty = self.t.sem.scalar_type(op, node.slice)
        if not index_ty.is_int:
            raise self.error(f"Vec indices must be integers, not {index_ty}", node.slice)
        return Place(ty.elem, vars=base.vars, values=base.values, array=base.array, word=base.word,
                     offset=base.offset, dynamic=self.t.sem.coerce(op, index_ty, node.slice),
                     count=ty.length, typed=base.typed)

    def array_element(self, array: Value, struct: StructDef | VecType, node: ast.Subscript) -> Place:
        """``a[i]`` / ``a[i, j]`` of an ``Array[S]`` or ``Array[Vec]``: the words of one element.

        An N-d one is held as words whose last extent counts words, so the last
        index is scaled by the element's words and the others use the extents as they are.
        """
        ndim = array.type.ndim  # type: ignore[attr-defined]
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if isinstance(node.slice, ast.Slice) or any(isinstance(e, ast.Slice) for e in items):
            raise self.error(f"index an Array of {struct} with integers, not a slice", node.slice)
        if len(items) != ndim:
            raise self.error(f"'{ast.unparse(node.value)}' has {ndim} dimension(s); index it with "
                             f"{ndim} integer(s), not {len(items)}", node.slice)
        words = struct_words(struct)
        typed: list[tuple[Operand, ast.expr]] = []
        for item in items:
            op = self.t.sem.promote(self.t.visit(item))
            ty = self.t.sem.scalar_type(op, item)
            if not ty.is_int:
                raise self.error(f"array indices must be integers, not {ty}", item)
            typed.append((Operand(self.t.sem.coerce(op, ty, item, "the index")), item))
        last = typed[-1][0].value
        assert last is not None
        scaled = self.b.binary("mul", last, self.b.const(words, last.type))
        if ndim == 1:
            return Place(struct, array=array, word=scaled)
        typed[-1] = (Operand(scaled), typed[-1][1])
        return Place(struct, array=array, word=self.t.flat_index(array, typed))

    # --- loads and stores ---

    def load(self, place: Place, node: ast.AST) -> Operand:
        if place.dynamic is not None:
            return Operand(self.load_dynamic(place))
        parts = self.leaf_values(place)
        if isinstance(place.type, ScalarType):
            return Operand(parts[0])
        return agg_operand(place.type, parts)

    def leaf_values(self, place: Place) -> list[Value]:
        if place.values is not None:
            return list(place.values)
        if place.vars is not None:
            return [self.b.load_var(v) for v in place.vars]
        assert place.array is not None
        if place.typed:
            count = len(leaves(place.type))
            return [self.b.load(place.array, self.typed_index(place, k)) for k in range(count)]
        return [load_scalar(self.b, place.array, *self.mem_word(place, byte), t)
                for byte, t in zip(leaf_offsets(place.type), leaves(place.type))]

    def typed_index(self, place: Place, k: int) -> Value:
        assert place.word is not None
        return self.b.const(place.offset + k, place.word.type)

    def store_typed(self, place: Place, parts: list[Value]) -> None:
        """Stores ``parts`` into a memory-backed Vec; one value for all (``.zeros()``) is a loop."""
        assert place.array is not None and place.word is not None
        if len(parts) > MAX_VEC_LEN and all(p is parts[0] for p in parts):
            counter = self.t.temp("fill", I32)
            first = self.b.const(place.offset, I32)
            stop = self.b.const(place.offset + len(parts), I32)
            with self.b.for_range(counter, first, stop, self.b.const(1, I32)):
                self.b.store(place.array, self.b.load_var(counter), parts[0])
            return
        for k, value in enumerate(parts):
            self.b.store(place.array, self.typed_index(place, k), value)

    def mem_word(self, place: Place, byte: int) -> tuple[Value, int]:
        """The word holding the byte ``byte`` bytes into ``place``, and that byte's bit shift."""
        assert place.word is not None
        position = place.offset + byte
        words = position // WORD_BYTES
        if words == 0:
            return place.word, position % WORD_BYTES * 8
        word = self.b.binary("add", place.word, self.b.const(words, place.word.type))
        return word, position % WORD_BYTES * 8

    def store(self, place: Place, op: Operand, node: ast.AST) -> None:
        if place.values is not None:
            raise self.error("cannot assign to part of a temporary; assign it to a variable first", node)
        ty = place.type
        if place.dynamic is not None:
            what = f"the value stored into a {ty} element"
            self.store_dynamic(place, self.t.sem.coerce(op, ty, node, what))
            return
        parts = self.leaves_of(op, ty, node, "the value assigned")
        if place.vars is not None:
            for var, value in zip(place.vars, parts):
                self.b.store_var(var, value)
            return
        assert place.array is not None
        if place.typed:
            self.store_typed(place, parts)
            return
        for byte, value in zip(leaf_offsets(ty), parts):
            store_scalar(self.b, place.array, partial(self.mem_word, place, byte), value)

    def leaves_of(self, op: Operand, ty: Any, node: ast.AST, what: str) -> list[Value]:
        """``op`` as the leaves of a ``ty`` value (scalars coerced as an assignment would)."""
        if isinstance(ty, ScalarType):
            if isinstance(op, AggOperand):
                raise self.error(f"{what} is a {op.type}, but {ty} is needed here", node)
            return [self.t.sem.coerce(op, ty, node, what)]
        if not isinstance(op, AggOperand) or op.type != ty:
            got = op.type if isinstance(op, AggOperand) else self.t.sem.scalar_type(op, node)
            raise self.error(f"{what} is a {got}, but {ty} is needed here", node)
        return list(op.parts)

    def in_range(self, index: Value, count: int) -> Value:
        ity = index.type
        assert isinstance(ity, ScalarType)
        below = self.b.compare("lt", index, self.b.const(count, ity))
        if ity.kind == "uint":
            return below
        return self.b.binary("and", self.b.compare("ge", index, self.b.const(0, ity)), below)

    def load_dynamic(self, place: Place) -> Value:
        vec = place.type
        assert place.dynamic is not None and isinstance(vec, ScalarType)
        index = place.dynamic
        count = place.count
        result = self.t.temp("vec", vec)
        self.b.store_var(result, self.b.const(False if vec.is_bool else 0.0 if vec.is_float else 0, vec))
        if place.typed:
            with self.b.if_(self.in_range(index, count)):
                self.b.store_var(result, self.b.load(place.array, self.typed_dynamic(place)))
            return self.b.load_var(result)
        if place.array is not None:
            with self.b.if_(self.in_range(index, count)):
                self.b.store_var(result, load_scalar(self.b, place.array, *self.dynamic_word(place), vec))
            return self.b.load_var(result)
        sources = self.leaf_values(Place(place.type, vars=place.vars, values=place.values))
        for k in range(count):
            with self.b.if_(self.b.compare("eq", index, self.b.const(k, index.type))):
                self.b.store_var(result, sources[k] if place.values is not None
                                 else self.b.load_var(place.vars[k]))  # type: ignore[index]
        return self.b.load_var(result)

    def store_dynamic(self, place: Place, value: Value) -> None:
        index = place.dynamic
        assert index is not None
        count = place.count
        if place.typed:
            with self.b.if_(self.in_range(index, count)):
                self.b.store(place.array, self.typed_dynamic(place), value)
            return
        if place.array is not None:
            with self.b.if_(self.in_range(index, count)):
                at = self.dynamic_word(place)
                store_scalar(self.b, place.array, lambda: at, value)
            return
        assert place.vars is not None
        for k in range(count):
            with self.b.if_(self.b.compare("eq", index, self.b.const(k, index.type))):
                self.b.store_var(place.vars[k], value)

    def typed_dynamic(self, place: Place) -> Value:
        """The array index of element ``place.dynamic`` (checked in range) of a memory-backed Vec."""
        assert place.dynamic is not None and place.word is not None
        index = self.index_as(place.dynamic, place.word)
        if place.offset == 0:
            return index
        return self.b.binary("add", self.b.const(place.offset, index.type), index)

    def dynamic_word(self, place: Place) -> tuple[Value, int | Value]:
        """Word and bit shift of element ``place.dynamic`` (checked in range) of the Vec in memory."""
        assert isinstance(place.type, ScalarType) and place.dynamic is not None and place.word is not None
        size = scalar_bytes(place.type)
        first, shift = self.mem_word(place, 0)
        index = self.index_as(place.dynamic, place.word)
        if size >= WORD_BYTES:
            step = index if size == WORD_BYTES else self.b.binary(
                "mul", index, self.b.const(size // WORD_BYTES, index.type))
            return self.b.binary("add", first, step), 0
        ity = index.type
        scaled = self.b.binary("mul", index, self.b.const(size, ity))
        byte = self.b.binary("add", self.b.const(shift // 8, ity), scaled)
        word = self.b.binary("add", first, self.b.binary("shr", byte, self.b.const(2, ity)))
        bits = self.b.binary("mul", self.b.binary("and", byte, self.b.const(3, ity)), self.b.const(8, ity))
        return word, self.b.cast(bits, U32)

    def vec_loop(self, node: ast.For) -> ast.For | None:
        """``for x in v`` over a Vec variable or field (``v``, ``p.v``, ``a[i].v``): the loop
        ``for <i> in range(N): x = v[<i>]`` with a counter no user name can take; None otherwise."""
        it = node.iter
        if not isinstance(it, (ast.Name, ast.Attribute, ast.Subscript)):
            return None
        if isinstance(it, ast.Name) and it.id not in self.vars:
            return None
        place = self.place_of(it)
        if place is None or place.dynamic is not None or not isinstance(place.type, VecType):
            return None
        self.t.temp_counter += 1
        counter = f"vec.{self.t.temp_counter}"
        self.t.assigned_names.add(counter)

        def at(new: ast.AST) -> Any:
            return ast.copy_location(new, it)

        element = at(ast.Subscript(it, at(ast.Name(counter, ast.Load())), ast.Load()))
        bind = ast.copy_location(ast.Assign([node.target], element), node.target)
        loop = ast.For(
            at(ast.Name(counter, ast.Store())),
            at(ast.Call(at(ast.Name("range", ast.Load())), [at(ast.Constant(place.type.length))], [])),
            [bind, *node.body], [],
        )
        return ast.fix_missing_locations(ast.copy_location(loop, node))

    def index_as(self, index: Value, word: Value | None) -> Value:
        assert word is not None
        return index if index.type == word.type else self.b.cast(index, word.type)

    # --- expressions ---

    def construct(self, callee: Any, node: ast.Call) -> Operand:
        """``S(x=..., ...)``, ``Vec[T, N](a, ...)`` and ``Vec[T, N].zeros()``."""
        if isinstance(callee, StructDef):
            return self.construct_struct(callee, node)
        vec = callee if isinstance(callee, VecType) else callee.__self__
        problem = vec.problem()
        if problem is not None:
            raise self.error(problem, node.func)
        if node.keywords:
            raise self.error(f"{vec} takes its elements positionally", node.keywords[0])
        if not isinstance(callee, VecType):  # .zeros()
            if node.args:
                raise self.error(f"{vec}.zeros() takes no arguments", node)
            zero = Operand(literal=False if vec.elem.is_bool else 0)
            return agg_operand(vec, [self.t.sem.coerce(zero, vec.elem, node)] * vec.length)
        if len(node.args) != vec.length:
            raise self.error(f"{vec} takes {vec.length} values, got {len(node.args)}; "
                             f"{vec}.zeros() makes a zero Vec", node)
        return agg_operand(vec, [self.t.sem.coerce(self.t.visit(a), vec.elem, a, f"an element of {vec}")
                                 for a in node.args])

    def construct_struct(self, struct: StructDef, node: ast.Call) -> Operand:
        names = [n for n, _ in struct.fields]
        if len(node.args) > len(names):
            raise self.error(f"struct {struct} has {len(names)} fields, got {len(node.args)} values", node)
        given: dict[str, ast.expr] = dict(zip(names, node.args))
        for kw in node.keywords:
            if kw.arg is None:
                raise self.error("**kwargs in calls are not supported in kernels", kw)
            if kw.arg not in names:
                raise self.error(f"struct {struct} has no field '{kw.arg}' (fields: {', '.join(names)})", kw)
            if kw.arg in given:
                raise self.error(f"field '{kw.arg}' of {struct} is given twice", kw)
            given[kw.arg] = kw.value
        missing = [n for n in names if n not in given]
        if missing:
            raise self.error(f"struct {struct} needs a value for field(s) {', '.join(missing)}", node)
        parts: list[Value] = []
        for name, ty in struct.fields:
            arg = given[name]
            parts += self.leaves_of(self.t.visit(arg), ty, arg, f"field '{name}' of {struct}")
        return agg_operand(struct, parts)

    def unpack(self, op: Operand, count: int, node: ast.AST) -> list[Operand]:
        """``a, b = value`` for a tuple or Vec value: its elements, as many as there are targets."""
        ty = op.type if isinstance(op, AggOperand) else None
        if not isinstance(ty, (TupleDef, VecType)):
            raise self.error(
                "tuple assignment needs a tuple on the right (e.g. a, b = b, a), a Vec, or a call "
                "of a func that returns a tuple", node)
        assert isinstance(op, AggOperand)
        have = ty.length if isinstance(ty, VecType) else len(ty.elems)
        if have != count:
            raise self.error(f"cannot unpack {have} values ({ty}) into {count} targets", node)
        out: list[Operand] = []
        for i in range(have):
            start, elem = element_slice(ty, i)
            part = op.parts[start:start + len(leaves(elem))]
            out.append(Operand(part[0]) if isinstance(elem, ScalarType) else agg_operand(elem, part))
        return out

    def binary(self, op_node: ast.operator, left: Operand, right: Operand, node: ast.BinOp) -> Operand:
        """Element-wise arithmetic on Vecs (a scalar operand applies to every element)."""
        vec = next(o.type for o in (left, right) if isinstance(o, AggOperand))
        for o in (left, right):
            if isinstance(o, AggOperand) and not isinstance(o.type, VecType):
                raise self.error(f"arithmetic on a {o.type} is not supported; compute with its fields", node)
        if isinstance(left, AggOperand) and isinstance(right, AggOperand) and left.type != right.type:
            raise self.error(f"the operands are {left.type} and {right.type}; element-wise "
                             "arithmetic needs two Vecs of one type", node)
        assert isinstance(vec, VecType)

        def lane(o: Operand, k: int) -> Operand:
            return Operand(o.parts[k]) if isinstance(o, AggOperand) else o

        results = [self.t.sem.binary(op_node, lane(left, k), lane(right, k), node) for k in range(vec.length)]
        elem = self.t.sem.scalar_type(results[0], node)
        return agg_operand(VecType(elem, vec.length), [self.t.sem.coerce(r, elem, node) for r in results])

    def negate(self, node: ast.UnaryOp, op: AggOperand) -> Operand:
        if not isinstance(op.type, VecType):
            raise self.error(f"'{ast.unparse(node)}' does not apply to a {op.type}", node)
        parts = [self.t.sem.unary(node, Operand(p)) for p in op.parts]
        elem = self.t.sem.scalar_type(parts[0], node)
        return agg_operand(VecType(elem, op.type.length), [self.t.sem.coerce(p, elem, node) for p in parts])

    # --- calls and returns ---

    def call_arg(self, pname: str, pty: Any, op: Operand, arg_node: ast.expr, args: list[Any]) -> bool:
        """Appends the IR argument(s) for an aggregate or struct-array parameter; False otherwise."""
        if isinstance(pty, StructArray):
            struct = self.views.get(op.value.name) if op.value is not None else None
            if struct != pty.struct:
                raise self.error(f"argument '{pname}' must be an Array[{pty.struct}]", arg_node)
            assert op.value is not None
            args.append(op.array or ArrayRef((op.value,)))  # its memory space picks the specialization
            return True
        if not is_aggregate(pty):
            return False
        args += self.leaves_of(op, pty, arg_node, f"argument '{pname}'")
        return True

    def refuse_struct_array(self, op: Operand, node: ast.AST, use: str) -> None:
        """An ``Array[S]`` is 32-bit words in the IR; using it as an array of scalars is an error."""
        struct = self.views.get(op.value.name) if op.value is not None else None
        if struct is not None:
            raise self.error(f"'{ast.unparse(node)}' is an Array[{struct}]; {use} is not supported "
                             "(use its elements' fields)", node)

    def call_result(self, result: Value, ty: Any) -> Operand:
        parts = [self.b.extract(result, k) for k in range(len(leaves(ty)))]
        return agg_operand(ty, parts)

    def return_(self, node: ast.Return) -> None:
        ty = self.t.return_type
        value = node.value
        assert value is not None
        if isinstance(value, ast.Tuple) and isinstance(ty, TupleDef):
            if len(value.elts) != len(ty.elems):
                raise self.error(
                    f"this function returns {ty}, {len(ty.elems)} values; here are {len(value.elts)}", value)
            parts: list[Value] = []
            for elem_node, elem_ty in zip(value.elts, ty.elems):
                parts += self.leaves_of(self.t.visit(elem_node), elem_ty, elem_node, "the returned value")
        else:
            parts = self.leaves_of(self.t.visit(value), ty, value, "the returned value")
        self.b.return_(self.b.make_tuple(tuple(parts)))


__all__ = ["AggOperand", "AggregateRules", "Place", "ir_type", "ir_params", "launch_layout",
           "type_problem", "MAX_VEC_LEN"]
