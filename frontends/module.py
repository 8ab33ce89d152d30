"""Assembles a RingIR module from an entry kernel and the device functions it calls.

Callees come before their callers in the module (C-like order, which MSL and
readers both like), IR names are unique within the module, and translation
of each function happens once per module build.  A generic ``@rk.func`` is
translated once per binding of its type variables (``pair_f32``).
"""

from __future__ import annotations

import ast
from typing import Any

from ringkernel.frontends.generics import bindings_of, bound_source, specialized_name
from ringkernel.frontends.python import FunctionTranslator, signature_of
from ringkernel.frontends.source import FunctionSource
from ringkernel.ringir import Call, Function, Module, ScalarType, Type, verify, walk

_Key = tuple[int, tuple[tuple[str, str], ...]]  # a function object and the binding of its type variables


class ModuleAssembler:
    """Translates an entry point and, transitively, every ``@rk.func`` it calls."""

    def __init__(self, reserved: frozenset[str] = frozenset()) -> None:
        self.reserved = reserved  # names the caller's own functions take (an actor's handlers)
        self.names: dict[_Key, str] = {}
        self.objects: dict[_Key, Any] = {}
        self.functions: dict[str, Function] = {}
        self.pending: list[tuple[Any, FunctionSource, _Key]] = []

    def name_of(self, obj: Any, bindings: dict[str, ScalarType] | None = None) -> str:
        bindings = bindings or {}
        key = (id(obj), tuple(sorted((k, str(v)) for k, v in bindings.items())))
        if key not in self.names:
            source = obj.ringkernel_source  # a specialized kernel's source is already bound
            base = _ir_identifier(specialized_name(source.name, {**bindings_of(source), **bindings}))
            taken = set(self.names.values()) | self.reserved
            name, n = base, 1
            while name in taken:
                n += 1
                name = f"{base}_{n}"
            self.names[key] = name
            self.objects[key] = obj
            source = obj.ringkernel_source
            self.pending.append((obj, bound_source(source, bindings) if bindings else source, key))
        return self.names[key]

    def callee(
        self, obj: Any, node: ast.AST, bindings: dict[str, ScalarType] | None = None
    ) -> tuple[str, list[tuple[str, Type]], Type]:
        source = obj.ringkernel_source
        params, ret = signature_of(bound_source(source, bindings) if bindings else source, "func")
        return self.name_of(obj, bindings), params, ret

    def add(self, obj: Any) -> str:
        name = self.name_of(obj)
        self.translate_pending()
        return name

    def translate_pending(self) -> None:
        """Translates every function named so far (and, transitively, their callees)."""
        while self.pending:
            current, source, key = self.pending.pop(0)
            translator = FunctionTranslator(source, current.ringkernel_kind, self.names[key], self.callee)
            fn = translator.translate()
            self.functions[fn.name] = fn

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
