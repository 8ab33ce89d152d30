"""The RingIR text form (version 1): ``print_module(m)`` is ``str(m)``.

The format is line-oriented and canonical: one statement a line, two spaces
of indentation per region, every value-defining statement spelled
``%name: type = opcode operands``.  ``docs/ir.md`` has the grammar.
"""

from __future__ import annotations

import math

from ringkernel.ringir.limits import check_nesting
from ringkernel.ringir.nodes import (
    AtomicCAS,
    AtomicRMW,
    Backoff,
    Barrier,
    Binary,
    Bitcast,
    Break,
    Call,
    Cast,
    Clock,
    Compare,
    Const,
    ConstArray,
    Continue,
    Extract,
    Fence,
    ForRange,
    Function,
    GridSync,
    If,
    Load,
    LoadVar,
    LocalArray,
    Loop,
    MakeTuple,
    MathCall,
    Module,
    NodeVisitor,
    Return,
    SharedArray,
    Stmt,
    Store,
    StoreVar,
    Subgroup,
    SyncWarp,
    ThreadIndex,
    Unary,
    Value,
    Wake,
)
from ringkernel.ringir.types import StructType

TEXT_VERSION = 1
INDENT = "  "


def format_const(value: bool | int | float) -> str:
    """A literal exactly as the parser reads it back (floats keep every bit)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    text = repr(float(value))
    if "e" not in text and "." not in text:
        text += ".0"
    return text


def _args(values: tuple[Value, ...]) -> str:
    return ", ".join(str(v) for v in values)


class _StmtPrinter(NodeVisitor):
    """Prints one statement; regions recurse through ``block``."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 1

    def emit(self, text: str) -> None:
        self.lines.append(INDENT * self.depth + text)

    def define(self, result: Value, rhs: str) -> None:
        self.emit(f"{result}: {result.type} = {rhs}")

    def block(self, body: tuple[Stmt, ...]) -> None:
        self.depth += 1
        self.visit_block(body)
        self.depth -= 1

    def visit_Const(self, s: Const) -> None:
        self.define(s.result, f"const {format_const(s.value)}")

    def visit_Unary(self, s: Unary) -> None:
        self.define(s.result, f"{s.op} {s.operand}")

    def visit_Binary(self, s: Binary) -> None:
        self.define(s.result, f"{s.op} {s.lhs}, {s.rhs}")

    def visit_Compare(self, s: Compare) -> None:
        self.define(s.result, f"{s.op} {s.lhs}, {s.rhs}")

    def visit_Cast(self, s: Cast) -> None:
        self.define(s.result, f"cast {s.value}")

    def visit_MathCall(self, s: MathCall) -> None:
        self.define(s.result, f"{s.func} {_args(s.args)}")

    def visit_Call(self, s: Call) -> None:
        text = f"call @{s.callee}({_args(s.args)})"
        if s.result is None:
            self.emit(text)
        else:
            self.define(s.result, text)

    def visit_ThreadIndex(self, s: ThreadIndex) -> None:
        self.define(s.result, f"{s.kind} {s.dim}")

    def visit_SharedArray(self, s: SharedArray) -> None:
        self.define(s.result, "shared_array")

    def visit_LocalArray(self, s: LocalArray) -> None:
        self.define(s.result, "local_array")

    def visit_ConstArray(self, s: ConstArray) -> None:
        self.define(s.result, "const_array " + ", ".join(format_const(v) for v in s.data))

    def visit_Load(self, s: Load) -> None:
        self.define(s.result, f"load {s.array}[{s.index}]")

    def visit_AtomicRMW(self, s: AtomicRMW) -> None:
        self.define(s.result, f"atomic_{s.op} {s.array}[{s.index}], {s.value}")

    def visit_AtomicCAS(self, s: AtomicCAS) -> None:
        self.define(s.result, f"atomic_cas {s.array}[{s.index}], {s.expected}, {s.desired}")

    def visit_LoadVar(self, s: LoadVar) -> None:
        self.define(s.result, f"load_var {s.var}")

    def visit_Store(self, s: Store) -> None:
        self.emit(f"store {s.array}[{s.index}], {s.value}")

    def visit_StoreVar(self, s: StoreVar) -> None:
        self.emit(f"store_var {s.var}, {s.value}")

    def visit_Barrier(self, s: Barrier) -> None:
        self.emit("barrier")

    def visit_Bitcast(self, s: Bitcast) -> None:
        self.define(s.result, f"bitcast {s.value}")

    def visit_Subgroup(self, s: Subgroup) -> None:
        args = f" {_args(s.args)}" if s.args else ""
        self.define(s.result, f"subgroup_{s.op}{args}")

    def visit_SyncWarp(self, s: SyncWarp) -> None:
        self.emit("syncwarp")

    def visit_GridSync(self, s: GridSync) -> None:
        self.emit("grid_sync")

    def visit_Clock(self, s: Clock) -> None:
        self.define(s.result, "clock")

    def visit_MakeTuple(self, s: MakeTuple) -> None:
        self.define(s.result, f"make_tuple {_args(s.elems)}")

    def visit_Extract(self, s: Extract) -> None:
        self.define(s.result, f"extract {s.tuple}, {s.index}")

    def visit_Fence(self, s: Fence) -> None:
        self.emit("fence")

    def visit_Backoff(self, s: Backoff) -> None:
        if s.doorbell is None:
            self.emit(f"backoff {s.nanos}")
        else:
            self.emit(f"backoff {s.doorbell}[{s.word}], {s.expected}, {s.nanos}")

    def visit_Wake(self, s: Wake) -> None:
        self.emit(f"wake {s.array}[{s.word}]")

    def visit_If(self, s: If) -> None:
        self.emit(f"if {s.cond} {{")
        self.block(s.then_body)
        if s.else_body:
            self.emit("} else {")
            self.block(s.else_body)
        self.emit("}")

    def visit_Loop(self, s: Loop) -> None:
        self.emit("loop {")
        self.block(s.body)
        self.emit("}")

    def visit_ForRange(self, s: ForRange) -> None:
        self.emit(f"for {s.var} in range({s.start}, {s.stop}, {s.step}) {{")
        self.block(s.body)
        self.emit("}")

    def visit_Break(self, s: Break) -> None:
        self.emit("break")

    def visit_Continue(self, s: Continue) -> None:
        self.emit("continue")

    def visit_Return(self, s: Return) -> None:
        self.emit("return" if s.value is None else f"return {s.value}")


def print_struct(struct: StructType) -> str:
    fields = "".join(f"\n{INDENT}{name}: {ty}" for name, ty in struct.fields)
    return f"struct {struct.name} {{{fields}\n}}"


def print_function(fn: Function) -> str:
    """The function's text; a module nested past the limit raises ``CompileError``, not ``RecursionError``."""
    check_nesting(fn)
    params = ", ".join(f"{p}: {p.type}" for p in fn.params)
    header = f"{fn.kind} @{fn.name}({params}) -> {fn.return_type} {{"
    printer = _StmtPrinter()
    for var in fn.locals:
        printer.emit(f"var {var}: {var.type}")
    printer.depth = 0
    printer.block(fn.body)
    return "\n".join([header, *printer.lines, "}"])


def print_module(module: Module) -> str:
    parts = [f"ringir {TEXT_VERSION}"]
    parts += [print_struct(s) for s in module.structs]
    parts += [print_function(f) for f in module.functions]
    return "\n\n".join(parts) + "\n"
