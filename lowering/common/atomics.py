"""Which arrays need an atomic element type.

A target declares an array touched by an atomic with an atomic element type
(``atomic<u32>``, ``atomic_int``), and every other access to that array must
then go through atomic loads and stores.  :func:`atomic_array` is the one
place that says which statement touches which array atomically;
:func:`atomic_arrays` propagates that over the call graph for targets whose
functions are not specialized per call site (an array parameter's element
type has to agree with every argument bound to it), using a union-find.
"""

from __future__ import annotations

from ringkernel.ringir import ArrayType, AtomicCAS, AtomicRMW, Call, Module, Stmt, Value, walk

ArrayKey = tuple[str, str]
"""An array value: (function name, value name)."""


def atomic_array(stmt: Stmt) -> Value | None:
    """The array ``stmt`` accesses atomically, or None."""
    if isinstance(stmt, (AtomicRMW, AtomicCAS)):
        return stmt.array
    return None


def atomic_arrays(module: Module) -> frozenset[ArrayKey]:
    """The array values (params and shared arrays) that need an atomic element type."""
    parent: dict[ArrayKey, ArrayKey] = {}

    def find(key: ArrayKey) -> ArrayKey:
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    marked: list[ArrayKey] = []
    functions = {fn.name: fn for fn in module.functions}
    for fn in module.functions:
        for stmt in walk(fn.body):
            array = atomic_array(stmt)
            if array is not None:
                marked.append((fn.name, array.name))
            elif isinstance(stmt, Call):
                callee = functions[stmt.callee]
                for arg, param in zip(stmt.args, callee.params):
                    if isinstance(arg.type, ArrayType):
                        parent[find((fn.name, arg.name))] = find((callee.name, param.name))
    roots = {find(key) for key in marked}
    return frozenset(key for key in list(parent) + marked if find(key) in roots)
