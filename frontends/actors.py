"""``@rk.message`` / ``@rk.actor`` classes → RingIR handler functions.

Each handler method becomes one RingIR ``func``::

    func @Acc__on_Add(%state: array<u32>, %inq: array<u32>, %msg: u32,
                      %out: array<u32>, %reply: u32, %rk.sbase: u32) -> u32

``self.field`` reads and writes words of the actor's state array from word
``%rk.sbase`` on (an instance's region in a group, 0 for a single actor),
``msg.field`` reads the message's payload in its queue slot (word ``%msg``),
and ``return Total(total=..., count=...)`` writes the reply payload into the
output slot (word ``%reply``) and returns the reply's type id (0: no reply).
The envelope, the HLC and the queue indices are the actor loop's business
(``ringkernel.ringir.passes.actor_lowering``).  Helper methods become funcs
taking the state array and its base first.  Word offsets come from ``ringkernel.ringir.layout``.
A cooperative actor (``@rk.actor(threads=N)``) may use ``rk.thread_id``,
``rk.shared_array`` and ``rk.barrier()`` in its methods: the actor lowering
inlines such handlers into its kernel (``ringkernel.ringir.passes.inline``).
"""

from __future__ import annotations

import ast
import builtins
import inspect
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from ringkernel.frontends.aggregates import AggregateRules, Place
from ringkernel.frontends.dsl import PortType
from ringkernel.frontends.module import ModuleAssembler
from ringkernel.frontends.python import (
    UNREACHABLE,
    VOID_RESULT,
    FunctionTranslator,
    _assigned_names,
    evaluate_static,
    python_object_type,
    resolve_type,
)
from ringkernel.frontends.semantic import Operand, Semantic
from ringkernel.frontends.sends import (
    SELF_SENDS,
    SELF_VALUES,
    SEND_PARAMS,
    PortInfo,
    SendBuilder,
    uses_messaging,
)
from ringkernel.frontends.source import FunctionSource
from ringkernel.frontends.valuetypes import MAX_VEC_LEN, VecType
from ringkernel.ringir import (
    BOOL,
    I32,
    U32,
    U64,
    VOID,
    ArrayType,
    Bitcast,
    FunctionBuilder,
    Module,
    ScalarType,
    StructType,
    Type,
    Value,
    verify,
)
from ringkernel.ringir import layout as L
from ringkernel.ringir.diagnostics import CompileError
from ringkernel.ringir.passes.actor_lowering import HANDLER_PREFIX

WORDS = ArrayType(U32)
# ``rk.sbase``: the first word of the instance's state region (in a group i * state_stride; else 0)
HANDLER_PARAMS = (
    ("state", WORDS), ("inq", WORDS), ("msg", U32), ("out", WORDS), ("reply", U32), ("rk.sbase", U32)
)
HELPER_STATE_PARAMS = (("state", WORDS), ("rk.sbase", U32))  # a helper's first params: the state region
# an actor that talks (``ActorInfo.talks``): its handlers and helpers take these next (``.sends``)
SEND_PARAM_TYPES = (("sends", WORDS), ("rk.qbase", U32))
assert tuple(n for n, _ in SEND_PARAM_TYPES) == SEND_PARAMS


@dataclass(frozen=True)
class MessageInfo:
    """What the compiler knows of a ``@rk.message`` class."""

    cls: type
    layout: L.RecordLayout
    type_id: int

    @property
    def name(self) -> str:
        return self.layout.name

    @property
    def slot_words(self) -> int:
        return L.slot_words_for(self.layout.words)


@dataclass
class HandlerInfo:
    message: MessageInfo
    method: str
    source: FunctionSource
    replies: list[MessageInfo] = field(default_factory=list)


@dataclass
class ActorInfo:
    """An actor class: its state layout, handlers (by message) and helper methods."""

    name: str
    state: L.RecordLayout
    defaults: dict[str, Any]
    handlers: dict[type, HandlerInfo]
    helpers: dict[str, FunctionSource]
    threads: int = 1  # @rk.actor(threads=N): lanes running each handler (cooperative when > 1)
    ports: dict[str, PortInfo] = field(default_factory=dict)  # out: rk.Port[Msg], in declaration order
    talks: bool = False  # some method sends or reads self.index/group_size: handlers take SEND_PARAMS
    routes_self: bool = False  # some method uses send_to or schedule (messages back to its own group)

    @property
    def sendable(self) -> list[MessageInfo]:
        """Every message type its handlers may send (ports; handled types for send_to/schedule)."""
        found = [p.message for p in self.ports.values()]
        if self.routes_self:
            found += [h.message for h in self.handlers.values()]
        return list({m.type_id: m for m in found}.values())

    @property
    def send_slot_words(self) -> int:
        """Words per slot of its ``sends`` queue: the largest type it sends (8 when it sends none)."""
        return max([m.slot_words for m in self.sendable], default=L.MIN_SLOT_BYTES // L.WORD)

    @property
    def extra_params(self) -> tuple[tuple[str, Type], ...]:
        """What its handlers and helpers take after their leading params."""
        return SEND_PARAM_TYPES if self.talks else ()

    def handler_name(self, message: MessageInfo) -> str:
        return f"{self.name}{HANDLER_PREFIX}{message.name}"

    def helper_name(self, method: str) -> str:
        """Never starts like a handler's name (``<actor>__on_``), whatever the method is called."""
        return f"{self.name}{HELPER_PREFIX}{method}"

    def generated_names(self) -> set[str]:
        """The RingIR names this actor's module gives its own functions (the loop kernel too)."""
        return {
            self.name,
            *(self.handler_name(h.message) for h in self.handlers.values()),
            *(self.helper_name(m) for m in self.helpers),
        }


def actor_threads(threads: object) -> int:
    """``@rk.actor(threads=N)``: N if it is an int from 1 to ``MAX_THREADS``, else a ``ValueError``.

    Any N in the range works (not only powers of two): the block simply has N lanes.
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= L.MAX_THREADS:
        raise ValueError(
            f"@rk.actor(threads=N): N is the lanes that run each handler, an int from 1 to "
            f"{L.MAX_THREADS}; got {threads!r}"
        )
    return threads


# Block-level builtins a cooperative actor's methods may use (each lane of the block runs them).
COOPERATIVE_BUILTINS = ("thread_id", "block_dim", "shared_array", "barrier")


def message_info(cls: Any) -> MessageInfo | None:
    return getattr(cls, "__rk_message__", None)


# --- names ------------------------------------------------------------------------------

HELPER_PREFIX = "__h_"
GENERATED_PREFIX = "_rk_"  # attributes the message decorator adds to the class

# Names the generated message class (and its instances) already use.
MESSAGE_ATTRIBUTES = {
    "envelope": "a received message's '.envelope' holds its type id, source, target, sequence and HLC",
    "type_id": "'Msg.type_id' is the message's wire id",
    "dtype": "'Msg.dtype' is the numpy layout of the message's queue slot",
}

# Names ``self`` gives actors in groups (docs/actors.md): no state field or method may take them.
ACTOR_ATTRIBUTES = {
    "index": "'self.index' is an actor's index in its group",
    "group_size": "'self.group_size' is the size of an actor's group",
    "send_to": "'self.send_to(i, msg)' sends to instance i of the group",
    "schedule": "'self.schedule(delay_us, msg)' delivers a message to the actor later",
}


def name_problem(name: str, owner: str, what: str) -> str | None:
    """Why ``name`` cannot be a ``what`` of class ``owner``, or None if it can.

    ``what`` is ``"message field"``, ``"state field"``, ``"helper"`` or
    ``"handler"`` (never called through ``self``, so free to be ``schedule``).  The one
    rule set for the decorators and for ``ringc``'s static reading of a class.
    Target languages need no rule here: their emitters mangle every name.
    """
    spelled = unmangled(name, owner)
    if spelled.startswith("__"):
        return (
            f"{what} '{spelled}' of '{owner}': names starting with '__' are reserved "
            "(Python's special names, and the private names it mangles inside a class)"
        )
    if spelled.startswith(GENERATED_PREFIX):
        return (
            f"{what} '{spelled}' of '{owner}': names starting with '{GENERATED_PREFIX}' "
            "are reserved for RingKernel"
        )
    reserved = {"message field": MESSAGE_ATTRIBUTES, "handler": {}}.get(what, ACTOR_ATTRIBUTES)
    if spelled in reserved:
        return f"{what} '{spelled}' of '{owner}' is a reserved name: {reserved[spelled]}; rename it"
    return None


def unmangled(name: str, owner: str) -> str:
    """``name`` as written in the class body (Python stores ``__x`` of class ``C`` as ``_C__x``)."""
    mangled = f"_{owner.lstrip('_')}__"
    return name[len(mangled) - 2 :] if owner.strip("_") and name.startswith(mangled) else name


MAX_FIELD_VEC = 1 << 16
"""The longest ``Vec`` field of a message or actor state: it lives in memory, not registers."""


def record_field(
    name: str, ty: Any, what: str, owner: str, spelled: str | None = None
) -> L.RecordField | str:
    """The layout entry of message or state field ``name`` of type ``ty`` (written ``spelled``),
    or why it cannot be one."""
    length = None
    elem = ty
    if isinstance(ty, VecType):
        length, elem = ty.length, ty.elem
        if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= MAX_FIELD_VEC:
            return f"{what} '{owner}': field '{name}' is {ty}; a Vec field holds 1 to {MAX_FIELD_VEC} values"
    if not isinstance(elem, ScalarType):
        return (f"{what} '{owner}': field '{name}' has unsupported type {spelled or ty}; use f32, f64, "
                "i32, u32, i64, u64, bool or Vec[T, N] of them")
    if elem.is_small or (length is not None and elem.is_bool):
        # queues and state are 32-bit words; no packing of small fields (yet)
        wide = "u32" if elem.is_bool else "f32" if elem.is_float else "i32" if elem.is_signed else "u32"
        spelled = wide if length is None else f"Vec[{wide}, {length}]"
        return (f"{what} '{owner}': field '{name}' has type {ty}, which actor state and messages do "
                f"not hold (they travel as 32-bit words); declare it {spelled} and convert with "
                f"{elem}(...) in the handler")
    return (name, elem) if length is None else (name, elem, length)


def scalar_fields(cls: type, what: str) -> list[L.RecordField]:
    """The annotated fields of a class body, as record fields (scalars and Vecs; names checked)."""
    fields = []
    for name, annotation in _annotations(cls).items():
        if what != "message" and isinstance(_resolve_annotation(cls, annotation), PortType):
            continue  # a port (port_fields), not state
        problem = name_problem(name, cls.__name__, f"{'message' if what == 'message' else 'state'} field")
        if problem is not None:
            raise field_error(cls, unmangled(name, cls.__name__), problem)
        resolved = _resolve_annotation(cls, annotation)
        ty = resolved if isinstance(resolved, VecType) else python_object_type(resolved)
        found = record_field(name, ty, what, cls.__name__, repr(annotation))
        if isinstance(found, str):
            raise field_error(cls, name, found)
        fields.append(found)
    return fields


def field_error(cls: type, name: str, message: str) -> CompileError:
    """A CompileError at the line declaring field ``name`` of a live class (unlocated if unreadable)."""
    found = _class_source(cls)
    if found is not None:
        source, node = found
        for item in node.body:
            target = getattr(item, "target", None)
            if isinstance(item, ast.AnnAssign) and isinstance(target, ast.Name) and target.id == name:
                return source.error(target, message)
    return CompileError(message)


def _class_source(cls: type) -> tuple[FunctionSource, ast.ClassDef] | None:
    """The syntax tree of a live class in its whole file, for located errors."""
    try:
        lines, start = inspect.findsource(cls)
        filename = inspect.getsourcefile(cls) or inspect.getfile(cls)
        tree = ast.parse("".join(lines))
    except (OSError, TypeError, SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == cls.__name__:
            first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            if start + 1 in (first, node.lineno):
                source = FunctionSource(cls.__name__, filename, node, tuple(lines), _NoNames())  # type: ignore[arg-type]
                return source, node
    return None


class _NoNames:
    def lookup(self, name: str) -> Any:
        raise KeyError(name)


def _annotations(cls: type) -> dict[str, Any]:
    return dict(cls.__dict__.get("__annotations__", {}))


def _resolve_annotation(cls: type, annotation: Any) -> Any:
    """A string annotation (``from __future__ import annotations``) as the object it names.

    Only names, attributes, subscripts and constants are walked against the
    class's module and the builtins: nothing of the user's is evaluated.
    """
    if not isinstance(annotation, str):
        return annotation
    import sys

    namespace = dict(vars(builtins))
    namespace.update(vars(sys.modules.get(cls.__module__, builtins)))
    try:
        return _annotation_value(ast.parse(annotation, mode="eval").body, namespace)
    except (SyntaxError, KeyError, AttributeError, TypeError, IndexError):
        return annotation


def _annotation_value(node: ast.expr, namespace: dict[str, Any]) -> Any:
    if isinstance(node, ast.Name):
        return namespace[node.id]
    if isinstance(node, ast.Attribute):
        return getattr(_annotation_value(node.value, namespace), node.attr)
    if isinstance(node, ast.Subscript):
        return _annotation_value(node.value, namespace)[_annotation_value(node.slice, namespace)]
    if isinstance(node, ast.Tuple):
        return tuple(_annotation_value(e, namespace) for e in node.elts)
    if isinstance(node, ast.Constant):
        return node.value
    raise TypeError(f"not a type expression: {ast.dump(node)}")


def port_fields(cls: type) -> dict[str, PortInfo]:
    """The ``name: rk.Port[Msg]`` annotations of an actor class, numbered in declaration order."""
    ports: dict[str, PortInfo] = {}
    for name, annotation in _annotations(cls).items():
        port = _resolve_annotation(cls, annotation)
        if not isinstance(port, PortType):
            continue
        problem = name_problem(name, cls.__name__, "port")
        if problem is not None:
            raise field_error(cls, unmangled(name, cls.__name__), problem)
        info = message_info(port.message)
        if info is None:
            raise field_error(
                cls, name,
                f"port '{name}' of '{cls.__name__}' carries {port.message!r}, which is not a message; "
                "declare it with a @rk.message class: 'out: rk.Port[Msg]'",
            )
        if callable(cls.__dict__.get(name)):
            problem = f"'{name}' of '{cls.__name__}' is both a port and a method; rename one"
            raise field_error(cls, name, problem)
        if name in cls.__dict__:
            problem = f"port '{name}' of '{cls.__name__}' takes no value: 'out: rk.Port[Msg]'"
            raise field_error(cls, name, problem)
        ports[name] = PortInfo(name, len(ports), info)
    return ports


def make_message_info(cls: type) -> MessageInfo:
    fields = scalar_fields(cls, "message")
    if not fields:
        raise CompileError(f"message '{cls.__name__}' needs at least one annotated field, e.g. 'value: f32'")
    try:
        layout = L.record_layout(cls.__name__, tuple(fields))
    except ValueError as exc:
        raise CompileError(str(exc)) from None
    return MessageInfo(cls, layout, L.type_id_of(layout))


def make_actor_info(cls: type) -> ActorInfo:
    """Reads a live actor class: state fields with defaults, handlers, helpers (no translation yet)."""
    from ringkernel.frontends.source import source_of

    state_fields = scalar_fields(cls, "actor")
    ports = port_fields(cls)
    defaults = {}
    for declared in state_fields:
        name = declared[0]
        value = cls.__dict__.get(name, 0)
        if not default_fits(value, declared):
            what = "a number" if len(declared) == 2 else f"a number or {declared[2]} numbers"
            raise CompileError(f"actor '{cls.__name__}': the default of '{name}' must be {what}")
        defaults[name] = value
    methods = [
        source_of(obj)
        for attr, obj in cls.__dict__.items()
        if callable(obj) and hasattr(obj, "__code__") and not attr.startswith("__")
    ]
    return build_actor_info(cls.__name__, state_fields, defaults, methods, CompileError, ports)


def default_fits(value: Any, field: L.RecordField) -> bool:
    """A state default is a number; a Vec field's may also be one number per element."""
    if isinstance(value, (bool, int, float)):
        return True
    if len(field) == 2 or not isinstance(value, (list, tuple)):
        return False
    return len(value) == field[2] and all(isinstance(v, (bool, int, float)) for v in value)


def build_actor_info(
    name: str,
    state_fields: list[L.RecordField],
    defaults: dict[str, bool | int | float],
    methods: list[FunctionSource],
    class_error: Callable[[str], CompileError],
    ports: dict[str, PortInfo] | None = None,
) -> ActorInfo:
    """The rules shared by live classes and ``ringc``'s static reading of the same class.

    A method taking ``self`` and one message-typed argument is the handler for that
    message; every other method is a helper.  ``class_error`` builds errors that
    belong to the class as a whole (no handler, clashing type ids).
    """
    handlers: dict[type, HandlerInfo] = {}
    helpers: dict[str, FunctionSource] = {}
    fields = {field[0] for field in state_fields}
    for source in methods:
        node = source.node
        if node.decorator_list:
            raise source.error(node.decorator_list[0], "actor methods cannot be decorated")
        args = node.args.args
        if not args or args[0].arg != "self":
            raise source.error(node, f"actor method '{node.name}' must take 'self' first")
        message = None
        if len(args) == 2 and args[1].annotation is not None:
            message = message_info(evaluate_static(source, args[1].annotation))
        problem = name_problem(node.name, name, "helper" if message is None else "handler")
        if problem is None and node.name in fields:
            problem = f"'{node.name}' of '{name}' is both a state field and a method; rename one"
        if problem is None and node.name in (ports or {}):
            problem = f"'{node.name}' of '{name}' is both a port and a method; rename one"
        if problem is not None:
            raise source.error(node, problem)
        if message is None:
            helpers[node.name] = source
            continue
        if message.cls in handlers:
            other = handlers[message.cls].method
            raise source.error(
                node,
                f"actor '{name}' has two handlers for message '{message.name}': "
                f"'{other}' and '{node.name}'; one message type has one handler",
            )
        handlers[message.cls] = HandlerInfo(message, node.name, source)
    if not handlers:
        raise class_error(
            f"actor '{name}' has no handler: write a method taking one message, "
            "e.g. 'def add(self, msg: Add) -> Total:'"
        )
    ids: dict[int, str] = {}
    for h in handlers.values():
        if h.message.type_id in ids:
            raise class_error(
                f"messages '{ids[h.message.type_id]}' and '{h.message.name}' share a type id"
            )
        ids[h.message.type_id] = h.message.name
    ports = ports or {}
    clash = sorted(fields & set(ports))
    if clash:
        raise class_error(f"'{clash[0]}' of '{name}' is both a state field and a port; rename one")
    try:
        state = L.record_layout(name, tuple(state_fields))
    except ValueError as exc:
        raise class_error(str(exc)) from None
    talks, routes_self = uses_messaging((m.node for m in methods), ports)
    return ActorInfo(name, state, defaults, handlers, helpers, ports=ports, talks=talks,
                     routes_self=routes_self)


# --- typed words ------------------------------------------------------------------------


def load_field(b: FunctionBuilder, words: Value, index: Value, ty: ScalarType) -> Value:
    """Reads a field of type ``ty`` stored at ``words[index]`` (two words if 64-bit)."""
    lo = b.load(words, index)
    if ty.bits == 64:
        hi = b.load(words, b.binary("add", index, b.const(1, U32)))
        wide = b.binary("or", b.cast(lo, U64), b.binary("shl", b.cast(hi, U64), b.const(32, U64)))
        return wide if ty == U64 else bitcast(b, wide, ty)
    if ty == U32:
        return lo
    if ty == BOOL:
        return b.compare("ne", lo, b.const(0, U32))
    return bitcast(b, lo, ty)


def store_field(b: FunctionBuilder, words: Value, index: Value, value: Value) -> None:
    ty = value.type
    assert isinstance(ty, ScalarType)
    if ty.bits == 64:
        wide = value if ty == U64 else bitcast(b, value, U64)
        lo = b.cast(b.binary("and", wide, b.const(0xFFFFFFFF, U64)), U32)
        hi = b.cast(b.binary("shr", wide, b.const(32, U64)), U32)
        b.store(words, index, lo)
        b.store(words, b.binary("add", index, b.const(1, U32)), hi)
        return
    word = value if ty == U32 else b.cast(value, U32) if ty == BOOL else bitcast(b, value, U32)
    b.store(words, index, word)


def bitcast(b: FunctionBuilder, value: Value, ty: ScalarType) -> Value:
    result = b.fresh(ty)
    b.emit(Bitcast(result, value, loc=b.loc))
    return result


# --- method translation -----------------------------------------------------------------


class MethodTranslator(FunctionTranslator):
    """A ``FunctionTranslator`` that understands ``self.field``, ``msg.field`` and replies."""

    def __init__(
        self,
        source: FunctionSource,
        actor: ActorInfo,
        ir_name: str,
        assembler: ModuleAssembler,
        handler: HandlerInfo | None,
    ) -> None:
        self.source = source
        self.kind = "func"
        self.callee = assembler.callee
        self.actor = actor
        self.handler = handler
        fn = source.node
        if handler is not None:
            params: list[tuple[str, Type]] = [*HANDLER_PARAMS, *actor.extra_params]
            ret: Type = U32
            self.msg_name: str | None = fn.args.args[1].arg
            if fn.returns is not None:
                self.check_handler_annotation(fn.returns)
        else:
            params = [*HELPER_STATE_PARAMS, *actor.extra_params]
            for arg in fn.args.args[1:]:
                if arg.annotation is None:
                    raise source.error(
                        arg, f"parameter '{arg.arg}' needs a type annotation, e.g. '{arg.arg}: f32'"
                    )
                ty = resolve_type(source, arg.annotation, f"parameter '{arg.arg}'")
                if not isinstance(ty, ScalarType):
                    raise source.error(arg.annotation, f"actor helper parameters are scalars, not {ty}")
                params.append((arg.arg, ty))
            ret = VOID
            if fn.returns is not None:
                annotated = evaluate_static(source, fn.returns)
                if message_info(annotated) is not None:
                    raise source.error(
                        fn.returns, "only handlers (methods taking a message) can return a message"
                    )
                ret = resolve_type(source, fn.returns, "the return value")
                if not isinstance(ret, ScalarType) and ret != VOID:
                    raise source.error(fn.returns, f"actor helpers return a scalar or None, not {ret}")
            self.msg_name = None
        self.b = FunctionBuilder(ir_name, "func", params, ret, loc=source.loc(fn))
        self.sem = Semantic(source, self.b)
        self.return_type = ret
        self.node = fn
        self.assigned_names = _assigned_names(fn)
        self.arrays = {}
        self.scalar_params: dict[str, Value] = {}
        self.vars = {}
        self.assigned = set()
        self.loop_depth = 0
        self.temp_counter = 0
        self.void_ok = None
        self.init_array_state(fn)
        self.embedded = {}
        self.agg = RecordRules(self)
        self.words = {name: value for (name, _), value in zip(params, self.b.params)}
        first = len(HELPER_STATE_PARAMS) + len(actor.extra_params)
        self.sender = (
            SendBuilder(self.b, self.words["sends"], self.words["rk.qbase"], self.temp, store_field)
            if actor.talks else None
        )
        for (name, ty), value in zip(params[first:], self.b.params[first:]):
            if handler is None:
                if name in self.assigned_names:
                    var = self.declare(name, ty, fn)
                    self.b.store_var(var, value)
                    self.mark_assigned(name)
                else:
                    self.scalar_params[name] = value

    # --- block-level builtins: only in a cooperative actor (@rk.actor(threads=N)) ---

    def as_block(self, call: Callable[[Any, ast.Call], Operand], entry: Any, node: ast.Call) -> Operand:
        """Runs a kernel-only builtin's translation as in a kernel, for a cooperative actor only."""
        name = getattr(entry, "name", "")
        if self.actor.threads == 1 or name not in COOPERATIVE_BUILTINS and entry.rule != "barrier_vote":
            raise self.error(
                f"rk.{name}() in an actor method needs a cooperative actor, @rk.actor(threads=N), "
                f"whose N lanes all run each handler (allowed there: "
                f"{', '.join('rk.' + n for n in COOPERATIVE_BUILTINS)} and the barrier votes)",
                node,
            )
        self.kind = "kernel"
        try:
            return call(entry, node)
        finally:
            self.kind = "func"

    def call_thread_index(self, entry: Any, node: ast.Call) -> Operand:
        return self.as_block(super().call_thread_index, entry, node)

    def call_shared_array(self, entry: Any, node: ast.Call) -> Operand:
        return self.as_block(super().call_shared_array, entry, node)

    def call_barrier(self, entry: Any, node: ast.Call) -> Operand:
        return self.as_block(super().call_barrier, entry, node)

    def call_barrier_vote(self, entry: Any, node: ast.Call) -> Operand:
        return self.as_block(super().call_barrier_vote, entry, node)

    def check_handler_annotation(self, node: ast.expr) -> None:
        if isinstance(node, ast.Constant) and node.value is None:
            return
        obj = evaluate_static(self.source, node)
        if obj is None or message_info(obj) is not None:
            return
        raise self.source.error(node, "a handler returns a message (e.g. '-> Total') or None")

    def translate(self):
        body = self.source.node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]
        self.visit_body(body)
        if self.assigned is not UNREACHABLE:
            if self.handler is not None:
                self.b.return_(self.b.const(0, U32))
            elif self.return_type != VOID:
                raise self.error(
                    f"method '{self.source.name}' may end without returning a value", self.source.node
                )
        return self.b.finish()

    # --- self and msg ---

    def is_self(self, node: ast.AST) -> bool:
        return isinstance(node, ast.Name) and node.id == "self"

    def is_msg(self, node: ast.AST) -> bool:
        return isinstance(node, ast.Name) and self.msg_name is not None and node.id == self.msg_name

    def state_index(self, node: ast.Attribute) -> tuple[Value, ScalarType]:
        try:
            slot = self.actor.state.field(node.attr)
        except KeyError:
            if node.attr in self.actor.helpers:
                raise self.error(
                    f"'self.{node.attr}' is a method; call it: self.{node.attr}(...)", node
                ) from None
            fields = ", ".join(f.name for f in self.actor.state.fields) or "none"
            raise self.error(
                f"actor '{self.actor.name}' has no state field '{node.attr}' (fields: {fields}); "
                "declare it in the class body, e.g. 'total: f32 = 0.0'",
                node,
            ) from None
        return self.state_word(slot.word), slot.type

    def state_slot(self, node: ast.Attribute) -> L.FieldSlot:
        try:
            return self.actor.state.field(node.attr)
        except KeyError:
            self.state_index(node)  # raises the error for an unknown field
            raise

    def state_word(self, word: int) -> Value:
        """The index into the state words of the actor's state word ``word``: every state
        read and write (scalar fields, Vec elements, atomics) takes its address from here,
        offset by the instance's state base (``rk.sbase``: 0 for a single actor)."""
        return self.b.binary("add", self.words["rk.sbase"], self.b.const(word, U32))

    def message_slot(self, node: ast.Attribute) -> L.FieldSlot:
        assert self.handler is not None
        layout = self.handler.message.layout
        try:
            return layout.field(node.attr)
        except KeyError:
            names = ", ".join(f.name for f in layout.fields)
            raise self.error(
                f"message '{layout.name}' has no field '{node.attr}' (fields: {names})", node
            ) from None

    def record_place(self, node: ast.Attribute) -> Place | None:
        """The memory place of Vec field ``self.f`` or ``msg.f`` (None for a scalar field)."""
        slot = self.state_slot(node) if self.is_self(node.value) else self.message_slot(node)
        if slot.length is None:
            return None
        if self.is_self(node.value):
            array, word = self.words["state"], self.state_word(slot.word)
        else:
            array = self.words["inq"]
            word = self.b.binary("add", self.words["msg"], self.b.const(L.ENVELOPE_WORDS + slot.word, U32))
        return Place(VecType(slot.type, slot.length), array=array, word=word)

    def rooted_at_msg(self, node: ast.expr) -> bool:
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        return self.is_msg(node)

    def visit_Name(self, node: ast.Name) -> Operand:
        if self.is_self(node):
            raise self.error("'self' is not a value; read a state field like 'self.total'", node)
        if self.is_msg(node):
            raise self.error(f"a message is not a value; read its fields like '{node.id}.value'", node)
        return super().visit_Name(node)

    def visit_Attribute(self, node: ast.Attribute) -> Operand:
        if self.is_self(node.value) and node.attr in SELF_VALUES:
            assert self.sender is not None  # (reading it makes the actor talk)
            return Operand(self.sender.context_i32(node.attr))
        if self.is_self(node.value) and node.attr in self.actor.ports:
            raise self.error(
                f"'self.{node.attr}' is a port, not a value; send on it: "
                f"self.{node.attr}.send({self.actor.ports[node.attr].message.name}(...))",
                node,
            )
        if self.is_self(node.value) and node.attr in SELF_SENDS:
            raise self.error(f"'self.{node.attr}' is a method; call it: {ACTOR_ATTRIBUTES[node.attr]}", node)
        if self.is_self(node.value) or self.is_msg(node.value):
            place = self.record_place(node)
            if place is not None:  # a whole Vec field as a value
                if place.type.length > MAX_VEC_LEN:
                    raise self.error(
                        f"'{ast.unparse(node)}' is a {place.type} in memory; index it "
                        f"('{ast.unparse(node)}[i]'): whole Vec values hold at most {MAX_VEC_LEN} elements",
                        node,
                    )
                return self.agg.load(place, node)
        if self.is_self(node.value):
            index, ty = self.state_index(node)
            return Operand(load_field(self.b, self.words["state"], index, ty))
        if self.is_msg(node.value):
            slot = self.message_slot(node)
            index = self.b.binary("add", self.words["msg"], self.b.const(L.ENVELOPE_WORDS + slot.word, U32))
            return Operand(load_field(self.b, self.words["inq"], index, slot.type))
        return super().visit_Attribute(node)

    def assign(self, target: ast.expr, op: Operand, value_node: ast.AST) -> None:
        if self.rooted_at_msg(target):
            raise self.error("messages are read-only; copy the field into a local or the state", target)
        if isinstance(target, ast.Attribute) and self.is_self(target.value):
            self.check_writable(target)
            place = self.record_place(target)
            if place is not None:
                self.agg.store(place, op, value_node)
                return
            index, ty = self.state_index(target)
            value = self.sem.coerce(op, ty, value_node, f"the value assigned to 'self.{target.attr}'")
            store_field(self.b, self.words["state"], index, value)
            return
        super().assign(target, op, value_node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        target = node.target
        if self.rooted_at_msg(target):
            raise self.error("messages are read-only; copy the field into a local or the state", target)
        if isinstance(target, ast.Attribute) and self.is_self(target.value):
            self.check_writable(target)
            current = self.visit_Attribute(target)
            result = self.sem.binary(node.op, current, self.visit(node.value), node)
            self.assign(target, result, node)
            return
        super().visit_AugAssign(node)

    def check_writable(self, target: ast.Attribute) -> None:
        """``self.index = ...`` and friends: only state fields take assignments."""
        if target.attr in SELF_VALUES:
            raise self.error(f"'self.{target.attr}' is read-only ({ACTOR_ATTRIBUTES[target.attr]})", target)
        if target.attr in self.actor.ports or target.attr in SELF_SENDS:
            what = "a port" if target.attr in self.actor.ports else "a method"
            raise self.error(f"'self.{target.attr}' is {what}; it cannot be assigned", target)

    # --- calls and replies ---

    def visit_Call(self, node: ast.Call) -> Operand:
        func = node.func
        if isinstance(func, ast.Attribute) and self.is_self(func.value) and func.attr in SELF_SENDS:
            return self.self_send(func.attr, node)
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Attribute)
            and self.is_self(func.value.value)
        ):
            name = func.value.attr
            if name in self.actor.ports:
                return self.port_send(self.actor.ports[name], func.attr, node)
            ports = ", ".join(self.actor.ports) or "none"
            raise self.error(
                f"actor '{self.actor.name}' has no port '{name}' (ports: {ports}); declare one "
                f"in the class body, e.g. '{name}: rk.Port[Msg]'",
                func.value,
            )
        if isinstance(func, ast.Attribute) and self.is_self(func.value):
            return self.helper_call(func.attr, node)
        if isinstance(func, (ast.Name, ast.Attribute)) and not self.is_msg(func):
            try:
                obj = evaluate_static(self.source, func)
            except CompileError:
                obj = None
            if message_info(obj) is not None:
                raise self.error(
                    "construct a message only as a handler's reply ('return Msg(field=...)') or as what "
                    "a send sends ('self.out.send(Msg(field=...))')",
                    node,
                )
        return super().visit_Call(node)

    def call_atomic(self, entry: Any, node: ast.Call) -> Operand:
        first = node.args[0] if node.args else None
        if not (isinstance(first, ast.Attribute) and (self.is_self(first.value) or self.is_msg(first.value))):
            return super().call_atomic(entry, node)
        if self.is_msg(first.value):
            raise self.error(f"messages are read-only; {entry.name}() needs a Vec state field", first)
        place = self.record_place(first)
        if place is None:
            raise self.error(
                f"{entry.name}() takes a Vec state field such as self.bins (a Vec[u32, N]); "
                f"'{ast.unparse(first)}' is a scalar: update it with '{ast.unparse(first)} += v'",
                first,
            )
        return self.state_atomic(entry, node, place)

    def state_atomic(self, entry: Any, node: ast.Call, place: Place) -> Operand:
        """``rk.atomic_add(self.bins, i, v)``: an atomic on element ``i`` of a Vec state field.

        State is 32-bit words, so u32 elements take every atomic and i32 ones
        those that mean the same on their bits; an index out of range does
        nothing and yields 0, as a dynamic Vec index does.
        """
        name, vec = entry.name, place.type
        elem = vec.elem
        signed_ok = name in ("atomic_add", "atomic_sub", "atomic_and", "atomic_or", "atomic_xor",
                             "atomic_exchange", "atomic_cas")
        if elem != U32 and not (elem.name == "i32" and signed_ok):
            raise self.error(
                f"{name}() on a {vec} state field is not supported: state is 32-bit words, so atomics "
                "apply to Vec[u32, N] fields (and add, sub, and, or, xor, exchange, cas to Vec[i32, N])",
                node.args[0],
            )
        if len(node.args) != entry.arity:
            raise self.error(f"{name}() takes {entry.arity} arguments, got {len(node.args)}", node)
        index_node = node.args[1]
        index_op = self.sem.promote(self.visit(index_node))
        index_ty = self.sem.scalar_type(index_op, index_node)
        if not index_ty.is_int:
            raise self.error(f"Vec indices must be integers, not {index_ty}", index_node)
        index = self.sem.coerce(index_op, index_ty, index_node, "the index")
        values = [self.sem.coerce(self.visit(a), elem, a, f"the operand of {name}()") for a in node.args[2:]]
        bits = [v if elem == U32 else self.b.bitcast(v, U32) for v in values]
        result = self.temp("atomic", elem)
        self.b.store_var(result, self.b.const(0, elem))
        with self.b.if_(self.agg.in_range(index, vec.length)):
            assert place.word is not None
            offset = index if index_ty == U32 else self.b.cast(index, U32)
            word = self.b.binary("add", place.word, offset)
            array = self.words["state"]
            if name == "atomic_cas":
                old = self.b.atomic_cas(array, word, bits[0], bits[1])
            else:
                old = self.b.atomic(entry.op, array, word, bits[0])
            self.b.store_var(result, old if elem == U32 else self.b.bitcast(old, elem))
        return Operand(self.b.load_var(result))

    def helper_call(self, method: str, node: ast.Call) -> Operand:
        helper = self.actor.helpers.get(method)
        if helper is None:
            raise self.error(f"actor '{self.actor.name}' has no helper method '{method}'", node.func)
        if node.keywords:
            raise self.error("keyword arguments are not supported in kernels", node.keywords[0])
        params = helper.node.args.args[1:]
        if len(node.args) != len(params):
            raise self.error(f"'self.{method}' takes {len(params)} argument(s), got {len(node.args)}", node)
        extra = [self.words[n] for n, _ in self.actor.extra_params]
        args = [self.words["state"], self.words["rk.sbase"], *extra]
        for param, arg in zip(params, node.args):
            ty = (
                resolve_type(helper, param.annotation, f"parameter '{param.arg}'")
                if param.annotation
                else None
            )
            if not isinstance(ty, ScalarType):
                raise self.error(f"parameter '{param.arg}' of 'self.{method}' needs a scalar annotation", arg)
            args.append(self.sem.coerce(self.visit(arg), ty, arg, f"argument '{param.arg}'"))
        ret: Type = VOID
        if helper.node.returns is not None:
            ret = resolve_type(helper, helper.node.returns, "the return value")
        result = self.b.call(self.actor.helper_name(method), tuple(args), ret)
        return VOID_RESULT if result is None else Operand(result)

    def visit_Return(self, node: ast.Return) -> None:
        if self.handler is None:
            super().visit_Return(node)
            return
        value = node.value
        if value is None or (isinstance(value, ast.Constant) and value.value is None):
            self.b.return_(self.b.const(0, U32))
            self.assigned = UNREACHABLE
            return
        message = None
        if isinstance(value, ast.Call) and isinstance(value.func, (ast.Name, ast.Attribute)):
            try:
                message = message_info(evaluate_static(self.source, value.func))
            except CompileError:
                message = None
        if message is None or not isinstance(value, ast.Call):
            raise self.error(
                "a handler returns a reply message, e.g. 'return Total(total=self.total, count=self.count)', "
                "or nothing",
                value,
            )
        self.reply(message, value)
        self.assigned = UNREACHABLE

    def vec_field_value(self, slot: L.FieldSlot, node: ast.expr) -> list[Value]:
        """The elements of the Vec given for field ``slot`` of a reply; a Vec field of the state
        or the message is copied whatever its length."""
        assert slot.length is not None
        vec = VecType(slot.type, slot.length)
        place = self.agg.place_of(node) if isinstance(node, ast.Attribute) else None
        if place is not None and place.type == vec and place.dynamic is None:
            return self.agg.leaf_values(place)
        return self.agg.leaves_of(self.visit(node), vec, node, f"field '{slot.name}'")

    def message_values(
        self, message: MessageInfo, node: ast.Call, what: str
    ) -> list[tuple[int, Value]]:
        """The payload words of ``Msg(field=...)`` (every field, by keyword) as (word, value)
        pairs, each value coerced to its field's type; a Vec field gives one pair per element."""
        if node.args:
            raise self.error(
                f"construct '{message.name}' with keywords, e.g. {message.name}(field=...)", node
            )
        given = {}
        for kw in node.keywords:
            if kw.arg is None:
                raise self.error("'**' is not supported when constructing a message", kw)
            if kw.arg in given:
                raise self.error(f"field '{kw.arg}' given twice", kw)
            given[kw.arg] = kw
        names = [f.name for f in message.layout.fields]
        unknown = [k for k in given if k not in names]
        if unknown:
            raise self.error(
                f"message '{message.name}' has no field '{unknown[0]}' (fields: {', '.join(names)})",
                given[unknown[0]],
            )
        missing = [n for n in names if n not in given]
        if missing:
            raise self.error(f"{what} '{message.name}' is missing field(s): {', '.join(missing)}", node)
        values = []
        for slot in message.layout.fields:
            kw = given[slot.name]
            if slot.length is None:
                value = self.sem.coerce(self.visit(kw.value), slot.type, kw.value, f"field '{slot.name}'")
                values.append((slot.word, value))
                continue
            for k, value in enumerate(self.vec_field_value(slot, kw.value)):
                values.append((slot.word + k * slot.scalar_words, value))
        return values

    def reply(self, message: MessageInfo, node: ast.Call) -> None:
        values = self.message_values(message, node, "reply")
        # a cooperative handler's reply is lane 0's: the other lanes' values are not written
        lanes: AbstractContextManager[None] = nullcontext()
        if self.actor.threads > 1:
            lane = self.b.thread_index("thread_id", 0)
            lanes = self.b.if_(self.b.compare("eq", lane, self.b.const(0, I32)))
        with lanes:
            for word, value in values:
                index = self.b.binary("add", self.words["reply"], self.b.const(L.ENVELOPE_WORDS + word, U32))
                store_field(self.b, self.words["out"], index, value)
        assert self.handler is not None
        if message not in self.handler.replies:
            self.handler.replies.append(message)
        self.b.return_(self.b.const(message.type_id, U32))

    # --- sends (frontends/sends.py builds them) ---

    def sent_message(self, node: ast.expr, how: str) -> tuple[MessageInfo, ast.Call]:
        """The message class of a send's argument, which must be ``Msg(field=...)`` written in place."""
        message = None
        if isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute)):
            try:
                message = message_info(evaluate_static(self.source, node.func))
            except CompileError:
                message = None
        if message is None or not isinstance(node, ast.Call):
            raise self.error(f"{how} sends a message constructed in place, e.g. {how}(Msg(field=...))", node)
        return message, node

    def send_args(self, node: ast.Call, count: int, how: str, spelled: str) -> list[ast.expr]:
        if node.keywords:
            raise self.error(f"{how} takes no keyword arguments: {spelled}", node.keywords[0])
        if len(node.args) != count or any(isinstance(a, ast.Starred) for a in node.args):
            raise self.error(f"{how} takes {count} argument(s): {spelled}", node)
        return list(node.args)

    def port_send(self, port: PortInfo, method: str, node: ast.Call) -> Operand:
        """``self.<port>.send(Msg(...))``: a message of the port's type, out through the router."""
        how = f"self.{port.name}.send"
        if method != "send":
            raise self.error(f"a port has one method, send: {how}({port.message.name}(...))", node.func)
        (arg,) = self.send_args(node, 1, how, f"{how}({port.message.name}(...))")
        message, call = self.sent_message(arg, how)
        if message.type_id != port.message.type_id:
            raise self.error(
                f"port '{port.name}' of '{self.actor.name}' carries '{port.message.name}', not "
                f"'{message.name}' (declared 'rk.Port[{port.message.name}]')",
                arg,
            )
        values = self.message_values(message, call, "message")
        assert self.sender is not None
        self.sender.send(message.type_id, L.SEND_PORT, self.b.const(port.number, U32), None, values)
        return VOID_RESULT

    def self_send(self, method: str, node: ast.Call) -> Operand:
        """``self.send_to(i, Msg(...))`` or ``self.schedule(delay_us, Msg(...))``: a message
        of a type this actor handles, to instance ``i`` of its group or back to itself."""
        how = f"self.{method}"
        first = "i" if method == "send_to" else "delay_us"
        where, arg = self.send_args(node, 2, how, f"{how}({first}, Msg(...))")
        message, call = self.sent_message(arg, how)
        if message.cls not in self.actor.handlers:
            handled = ", ".join(f"{h.method}({h.message.name})" for h in self.actor.handlers.values())
            raise self.error(
                f"{how} sends to this actor's own group, but '{self.actor.name}' has no handler for "
                f"'{message.name}' (its handlers: {handled})",
                arg,
            )
        b = self.b
        assert self.sender is not None
        if method == "send_to":
            op = self.visit(where)
            if op.type == U32:  # an unsigned index is taken as it is
                target = op.value
            else:  # (a negative i32 becomes a huge u32: out of range, counted)
                target = b.bitcast(self.sem.coerce(op, I32, where, "the instance index of send_to"), U32)
            values = self.message_values(message, call, "message")
            with b.if_(self.sender.in_group(target)):
                self.sender.send(message.type_id, L.SEND_TO, target, None, values)
            return VOID_RESULT
        delay = self.timer_delay(where)
        values = self.message_values(message, call, "message")
        self.sender.send(message.type_id, L.SEND_TIMER, b.const(0, U32), delay, values)
        return VOID_RESULT

    def timer_delay(self, node: ast.expr) -> Value:
        """``schedule``'s delay as u32 microseconds: clamped into 0 .. ``MAX_TIMER_DELAY_US`` (~71 min)."""
        b = self.b
        op = self.visit(node)
        if op.is_literal and isinstance(op.literal, int) and not isinstance(op.literal, bool):
            return b.const(min(max(op.literal, 0), L.MAX_TIMER_DELAY_US), U32)
        ty = op.type
        if op.value is None or not isinstance(ty, ScalarType) or ty.is_float or ty == BOOL:
            shown = ty if ty is not None else type(op.literal).__name__
            raise self.error(
                f"the delay of self.schedule is an integer number of microseconds, not {shown}", node
            )
        value = op.value
        if ty.is_signed:
            value = b.binary("max", value, b.const(0, ty))
        if ty.bits == 64:
            value = b.binary("min", b.cast(value, U64), b.const(L.MAX_TIMER_DELAY_US, U64))
        return b.cast(value, U32) if value.type != U32 else value


class RecordRules(AggregateRules):
    """Aggregate rules that also see Vec fields of the state and the message as memory places."""

    def __init__(self, translator: MethodTranslator) -> None:
        super().__init__(translator)
        self.method = translator

    def place_of(self, node: ast.expr) -> Place | None:
        m = self.method
        if isinstance(node, ast.Attribute) and (m.is_self(node.value) or m.is_msg(node.value)):
            return m.record_place(node)
        return super().place_of(node)


def build_actor_module(actor: ActorInfo) -> Module:
    """The verified pre-lowering module: message/state structs, helpers, handlers, callees."""
    assembler = ModuleAssembler(frozenset(actor.generated_names()))
    functions = []
    for method, source in sorted(actor.helpers.items()):
        functions.append(
            MethodTranslator(source, actor, actor.helper_name(method), assembler, None).translate()
        )
    for handler in actor.handlers.values():
        handler.replies.clear()
        translator = MethodTranslator(
            handler.source, actor, actor.handler_name(handler.message), assembler, handler
        )
        functions.append(translator.translate())
    assembler.translate_pending()
    callees = [assembler.functions[n] for n in assembler.functions]
    module = Module(tuple(callees + functions), tuple(_structs(actor)))
    # a cooperative actor's methods may hold block-level statements, which RingIR allows only in
    # kernels: its module verifies once the actor lowering has inlined them into the loop kernel
    return module if actor.threads > 1 else verify(module)


def _structs(actor: ActorInfo) -> list[StructType]:
    """The message structs (handled and replied) and the state struct, each name once.

    RingIR names a struct after its class, and a handler after its message, so
    two different classes of one name (or a message named like the actor,
    whose state struct takes the actor's name) are an error at the handler.
    """
    state = actor.state.struct_type() if actor.state.fields else None
    structs: list[StructType] = []
    ported = [p.message for p in actor.ports.values()]
    for h in actor.handlers.values():
        for m in (h.message, *h.replies, *ported):
            s = m.layout.struct_type()
            clash = [other for other in (*structs, state) if other and other.name == s.name and other != s]
            if clash:
                problem = (
                    f"message '{s.name}' has the name of actor '{actor.name}'"
                    if clash[0] is state
                    else f"two different messages of actor '{actor.name}' are named '{s.name}'"
                )
                raise h.source.error(
                    h.source.node, f"{problem}; an actor and its messages need distinct class names"
                )
            if s not in structs:
                structs.append(s)
    return structs + ([state] if state else [])
