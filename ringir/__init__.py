"""RingIR: the typed, structured IR between RingKernel's frontends and backends.

``parse(text)`` reads the text form, ``str(module)`` prints it and
``verify(module)`` checks a module before lowering.
"""

from ringkernel.ringir.builder import FunctionBuilder
from ringkernel.ringir.nodes import *  # noqa: F403
from ringkernel.ringir.nodes import __all__ as _node_names
from ringkernel.ringir.printer import TEXT_VERSION, print_function, print_module
from ringkernel.ringir.types import (
    BOOL,
    F32,
    F64,
    I32,
    I64,
    SCALAR_TYPES,
    U32,
    U64,
    VOID,
    AddressSpace,
    ArrayType,
    ScalarType,
    StructType,
    TupleType,
    Type,
    VoidType,
)
from ringkernel.ringir.verifier import verify


def parse(text: str, filename: str = "<ringir>") -> Module:  # noqa: F405
    """Parses RingIR text into a :class:`Module`; malformed text raises ``CompileError``."""
    from ringkernel.ringir.parser import parse_module

    return parse_module(text, filename)


__all__ = [
    *_node_names,
    "FunctionBuilder", "TEXT_VERSION", "print_function", "print_module", "verify", "parse",
    "BOOL", "F32", "F64", "I32", "I64", "U32", "U64", "VOID", "SCALAR_TYPES",
    "AddressSpace", "ArrayType", "ScalarType", "StructType", "TupleType", "Type", "VoidType",
]
