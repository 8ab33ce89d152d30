"""RingIR text parser: any bytes -> ``CompileError``, or a module that verifies and round-trips.

Bytes that are not UTF-8 are not text (a file reader would fail before the
parser), so they are skipped.  For text that parses, the module must verify,
print back to text that parses to an equal module and prints identically,
and survive the standard passes with a module that still verifies.
"""

from __future__ import annotations

from fuzz.harness import Finding
from ringkernel.compiler import optimize
from ringkernel.ringir import verify
from ringkernel.ringir.diagnostics import CompileError
from ringkernel.ringir.parser import parse_module as parse

SMOKE_RUNS = 3000
DICT = "ringir.dict"


def test_one_input(data: bytes) -> None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    try:
        module = parse(text, "<fuzz>")
    except CompileError as exc:
        if exc.filename not in (None, "<fuzz>"):
            raise Finding(f"error names another file: {exc.filename!r}") from exc
        return
    verify(module)
    printed = str(module)
    again = parse(printed, "<printed>")
    if again != module:
        raise Finding(f"parse(str(m)) != m for\n{text!r}\nprinted:\n{printed}")
    if str(again) != printed:
        raise Finding(f"str(parse(str(m))) != str(m) for\n{printed}")
    verify(optimize(module))
