"""Assembles a RingIR module from an entry kernel and the device functions it calls.

Callees come before their callers in the module (C-like order, which MSL and
readers both like), IR names are unique within the module, and translation
of each function happens once per module build.
"""

from __future__ import annotations

import ast
from typing import Any

from ringkernel.frontends.python import FunctionTranslator
from ringkernel.frontends.source import FunctionSource
from ringkernel.ringir import AddressSpace, Call, Function, Module, Type, verify, walk
from ringkernel.ringir.limits import MAX_NESTING

Spaces = tuple[AddressSpace, ...]  # the memory of each array argument of one call, in order


class ModuleAssembler:
    """Translates an entry point and, transitively, every ``@rk.func`` it calls.

    A func is translated when a call to it is first met, once per combination
    of memory spaces of its array arguments (a func over shared memory is a
    different IR function from the same func over global memory); the caller
    then knows the callee's full signature, hidden array extents included.
    """

    def __init__(self, reserved: frozenset[str] = frozenset()) -> None:
        self.reserved = reserved  # names the caller's own functions take (an actor's handlers)
        self.names: dict[int, str] = {}
        self.objects: dict[int, Any] = {}
        self.functions: dict[str, Function] = {}
        self.pending: list[Any] = []
        self.specialized: dict[tuple[int, Spaces], str] = {}
        self.in_progress: list[str] = []

    def _fresh(self, base: str) -> str:
        taken = set(self.names.values()) | set(self.specialized.values()) | self.reserved
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        return name

    def name_of(self, obj: Any) -> str:
        key = id(obj)
        if key not in self.names:
            self.names[key] = self._fresh(_ir_identifier(obj.ringkernel_source.name))
            self.objects[key] = obj
            self.pending.append(obj)
        return self.names[key]

    def callee(self, obj: Any, node: ast.AST, spaces: Spaces) -> tuple[str, list[tuple[str, Type]], Type]:
        """The IR name and full signature of ``obj`` specialized for ``spaces``, translated now."""
        key = (id(obj), spaces)
        name = self.specialized.get(key)
        if name is None:
            if all(s == AddressSpace.GLOBAL for s in spaces):
                name = self.names.get(id(obj)) or self._fresh(_ir_identifier(obj.ringkernel_source.name))
                self.names[id(obj)] = name
                self.objects[id(obj)] = obj
            else:
                base = _ir_identifier(obj.ringkernel_source.name)
                name = self._fresh(f"{base}_{'_'.join(s.value for s in spaces)}")
            self.specialized[key] = name
        if name in self.in_progress:
            source: FunctionSource = obj.ringkernel_source
            cycle = " -> ".join([*self.in_progress[self.in_progress.index(name):], name])
            raise source.error(node, f"recursion is not supported on GPU targets ({cycle})")
        if name not in self.functions:
            if len(self.in_progress) > MAX_NESTING:
                raise obj.ringkernel_source.error(
                    node, f"calls nested too deeply (limit {MAX_NESTING} levels)"
                )
            self.translate(obj, name, spaces)
        fn = self.functions[name]
        return name, [(p.name, p.type) for p in fn.params], fn.return_type

    def translate(self, obj: Any, name: str, spaces: Spaces | None = None) -> Function:
        self.in_progress.append(name)
        try:
            translator = FunctionTranslator(
                obj.ringkernel_source, obj.ringkernel_kind, name, self.callee, spaces
            )
            fn = translator.translate()
        finally:
            self.in_progress.pop()
        self.functions[name] = fn
        return fn

    def add(self, obj: Any) -> str:
        name = self.name_of(obj)
        while self.pending:
            current = self.pending.pop(0)
            current_name = self.names[id(current)]
            if current_name not in self.functions:
                self.translate(current, current_name)
        return name

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
