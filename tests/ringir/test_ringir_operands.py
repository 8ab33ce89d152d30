"""``operands(stmt)``: the one list of the values each statement reads."""

import dataclasses
import typing

import pytest

from ringkernel.ringir import nodes
from ringkernel.ringir.nodes import Binary, Return, Stmt, Store, Value, operands
from ringkernel.ringir.types import I32, ArrayType

_STATEMENTS = [
    cls for cls in vars(nodes).values()
    if isinstance(cls, type) and issubclass(cls, Stmt) and cls is not Stmt
]


def _value_fields(cls: type) -> tuple[str, ...]:
    """The fields whose annotation holds SSA values, except the one it defines."""
    hints = typing.get_type_hints(cls)
    reads = []
    for f in dataclasses.fields(cls):
        hint = str(hints[f.name])
        if f.name != "result" and "Value" in hint and "LocalVar" not in hint:
            reads.append(f.name)
    return tuple(reads)


@pytest.mark.parametrize("cls", _STATEMENTS, ids=lambda c: c.__name__)
def test_every_statement_lists_each_value_field(cls: type) -> None:
    assert nodes._OPERAND_FIELDS[cls] == _value_fields(cls)


def test_operands_in_field_order_without_none() -> None:
    a, b, c = Value("a", I32), Value("b", I32), Value("c", I32)
    arr = Value("arr", ArrayType(I32))
    assert operands(Binary(c, "add", a, b)) == (a, b)
    assert operands(Store(arr, a, b)) == (arr, a, b)
    assert operands(Return(None)) == ()
    assert operands(Return(a)) == (a,)


def test_unknown_statement_is_an_error_not_empty() -> None:
    class Unknown(Stmt):
        pass

    with pytest.raises(TypeError, match="Unknown is not a RingIR statement"):
        operands(Unknown())
