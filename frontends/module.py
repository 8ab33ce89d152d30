"""Assembles a RingIR module from an entry kernel and the device functions it calls.

Callees come before their callers in the module (C-like order, which MSL and
readers both like), IR names are unique within the module, and translation
of each function happens once per module build.
"""

from __future__ import annotations

import ast
from typing import Any

from ringkernel.frontends.python import FunctionTranslator, signature_of
from ringkernel.frontends.source import FunctionSource
from ringkernel.ringir import Call, Function, Module, Type, verify, walk


class ModuleAssembler:
    """Translates an entry point and, transitively, every ``@rk.func`` it calls."""

    def __init__(self, reserved: frozenset[str] = frozenset()) -> None:
        self.reserved = reserved  # names the caller's own functions take (an actor's handlers)
        self.names: dict[int, str] = {}
        self.objects: dict[int, Any] = {}
        self.functions: dict[str, Function] = {}
        self.pending: list[Any] = []

    def name_of(self, obj: Any) -> str:
        key = id(obj)
        if key not in self.names:
            base = _ir_identifier(obj.ringkernel_source.name)
            taken = set(self.names.values()) | self.reserved
            name, n = base, 1
            while name in taken:
                n += 1
                name = f"{base}_{n}"
            self.names[key] = name
            self.objects[key] = obj
            self.pending.append(obj)
        return self.names[key]

    def callee(self, obj: Any, node: ast.AST) -> tuple[str, list[tuple[str, Type]], Type]:
        params, ret = signature_of(obj.ringkernel_source, "func")
        return self.name_of(obj), params, ret

    def add(self, obj: Any) -> str:
        name = self.name_of(obj)
        while self.pending:
            current = self.pending.pop(0)
            source: FunctionSource = current.ringkernel_source
            translator = FunctionTranslator(
                source, current.ringkernel_kind, self.names[id(current)], self.callee
            )
            fn = translator.translate()
            self.functions[fn.name] = fn
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
