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
    F16,
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    MAX_NDIM,
    PROMOTED,
    SCALAR_TYPES,
    SMALL_TYPES,
    U8,
    U16,
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
    extent_param_name,
    extent_param_of,
    hidden_extents,
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
    "I8", "U8", "I16", "U16", "F16", "SMALL_TYPES", "PROMOTED",
    "AddressSpace", "ArrayType", "ScalarType", "StructType", "TupleType", "Type", "VoidType",
    "MAX_NDIM", "extent_param_name", "extent_param_of", "hidden_extents",
]
