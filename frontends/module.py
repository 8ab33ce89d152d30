"""Assembles a RingIR module from an entry kernel and the device functions it calls.

Callees come before their callers in the module (C-like order, which MSL and
readers both like), IR names are unique within the module, and translation
of each function happens once per module build.  A ``@rk.func`` is
translated once per specialization: per binding of its type variables
(``pair_f32``) and per memory space of its array arguments (``swap_shared``).
"""

from __future__ import annotations

import ast
from typing import Any

from ringkernel.frontends.generics import Bindings, bindings_of, bound_source, specialized_name
from ringkernel.frontends.python import FunctionTranslator
from ringkernel.frontends.source import FunctionSource
from ringkernel.ringir import AddressSpace, Call, Function, Module, Type, verify, walk
from ringkernel.ringir.limits import MAX_NESTING

Spaces = tuple[AddressSpace, ...]  # the memory of each array argument of one call, in order
# a function object, the memory of its array arguments (() when all are global) and its bindings
_Key = tuple[int, Spaces, tuple[tuple[str, str], ...]]


class ModuleAssembler:
    """Translates an entry point and, transitively, every ``@rk.func`` it calls.

    A func is translated when a call to it is first met, once per combination
    of its type variables' binding and the memory spaces of its array
    arguments (a func over shared memory is a different IR function from the
    same func over global memory); the caller then knows the callee's full
    signature, hidden array extents included.
    """

    def __init__(self, reserved: frozenset[str] = frozenset()) -> None:
        self.reserved = reserved  # names the caller's own functions take (an actor's handlers)
        self.names: dict[_Key, str] = {}
        self.functions: dict[str, Function] = {}
        self.pending: list[tuple[Any, FunctionSource, _Key]] = []
        self.in_progress: list[str] = []

    def name_of(self, obj: Any, spaces: Spaces = (), bindings: Bindings | None = None) -> str:
        """The IR name of ``obj`` specialized for ``spaces`` and ``bindings``; a new one is queued."""
        bindings = bindings or {}
        if all(s == AddressSpace.GLOBAL for s in spaces):
            spaces = ()  # the plain specialization, the one an entry point gets
        key = (id(obj), spaces, tuple(sorted((k, str(v)) for k, v in bindings.items())))
        if key not in self.names:
            source = obj.ringkernel_source  # a specialized kernel's source is already bound
            base = specialized_name(source.name, {**bindings_of(source), **bindings})
            if spaces:
                base = f"{base}_{'_'.join(s.value for s in spaces)}"
            self.names[key] = self._fresh(_ir_identifier(base))
            self.pending.append((obj, bound_source(source, bindings) if bindings else source, key))
        return self.names[key]

    def _fresh(self, base: str) -> str:
        taken = set(self.names.values()) | self.reserved
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        return name

    def callee(
        self, obj: Any, node: ast.AST, spaces: Spaces, bindings: Bindings
    ) -> tuple[str, list[tuple[str, Type]], Type]:
        """The IR name and full signature of ``obj`` specialized for ``spaces`` and ``bindings``,
        translated now."""
        name = self.name_of(obj, spaces, bindings)
        if name in self.in_progress:
            source: FunctionSource = obj.ringkernel_source
            cycle = " -> ".join([*self.in_progress[self.in_progress.index(name):], name])
            raise source.error(node, f"recursion is not supported on GPU targets ({cycle})")
        if name not in self.functions:
            if len(self.in_progress) > MAX_NESTING:
                raise obj.ringkernel_source.error(
                    node, f"calls nested too deeply (limit {MAX_NESTING} levels)"
                )
            self.translate_pending()
        fn = self.functions[name]
        return name, [(p.name, p.type) for p in fn.params], fn.return_type

    def translate(self, obj: Any, source: FunctionSource, name: str, spaces: Spaces) -> Function:
        self.in_progress.append(name)
        try:
            translator = FunctionTranslator(source, obj.ringkernel_kind, name, self.callee, spaces or None)
            fn = translator.translate()
        finally:
            self.in_progress.pop()
        self.functions[name] = fn
        return fn

    def add(self, obj: Any) -> str:
        name = self.name_of(obj)
        self.translate_pending()
        return name

    def translate_pending(self) -> None:
        """Translates every function named so far (and, transitively, their callees)."""
        while self.pending:
            current, source, key = self.pending.pop(0)
            name = self.names[key]
            if name not in self.functions:
                self.translate(current, source, name, key[1])

    def module(self, roots: list[str]) -> Module:
        ordered: list[str] = []
        visiting: set[str] = set()

        def visit(name: str) -> None:
            if name in ordered or name in visiting:
                return  # recursion is reported by the verifier, with its call site
            visiting.add(name)
            for stmt in walk(self.functions[name].body):
                if isinstance(stmt, Call):
                    visit(stmt.callee)
            visiting.discard(name)
            ordered.append(name)

        for root in roots:
            visit(root)
        return Module(tuple(self.functions[n] for n in ordered))


def build_module(entries: list[Any]) -> Module:
    """The verified module holding ``entries`` (kernels or funcs) and all their callees."""
    assembler = ModuleAssembler()
    roots = [assembler.add(e) for e in entries]
    return verify(assembler.module(roots))


def build_entry_module(entry: Any) -> tuple[Module, str]:
    """The verified module of one kernel or func and its callees, and the entry's IR name."""
    assembler = ModuleAssembler()
    name = assembler.add(entry)
    return verify(assembler.module([name])), name


def _ir_identifier(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name) or "fn"
