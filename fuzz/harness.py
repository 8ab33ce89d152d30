"""What every fuzz target shares: the finding type and the lowering harness.

A target's ``test_one_input(data)`` returns normally when the code under test
behaved as documented, and raises :class:`Finding` (or lets any unexpected
exception escape) when it did not; libFuzzer then saves the input as a
crash artifact.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

from fuzz.ir_generator import Profile, generate
from ringkernel.compiler import compile_module
from ringkernel.ringir import (
    F32,
    U32,
    U64,
    VOID,
    AddressSpace,
    ArrayType,
    Backoff,
    Bitcast,
    Clock,
    Const,
    Fence,
    Function,
    Module,
    Value,
    Wake,
)
from ringkernel.ringir.diagnostics import CompileError


class Finding(AssertionError):
    """The code under test broke its contract on this input."""


def documented(error: CompileError, allowed: tuple[str, ...]) -> bool:
    """Is ``error`` one of the limits the target documents (regexes in ``allowed``)?"""
    return any(re.search(pattern, error.message) for pattern in allowed)


def probe_profile(target: str, base: Profile) -> Profile:
    """``base`` minus the optional statements ``target`` cannot lower yet.

    Clock, bitcast, fence, backoff and wake arrived for the actor runtime; a backend
    that does not lower one of them says so with a ``CompileError``, and the
    generator then leaves it out instead of wasting every input on it.
    """
    arr = Value("a", ArrayType(U32, AddressSpace.GLOBAL))
    probes: dict[str, tuple] = {
        "clock": (Clock(Value("c", U64)),),
        "bitcast": (Const(Value("b", U32), 1), Bitcast(Value("f", F32), Value("b", U32))),
        "fence": (Fence(),),
        "backoff": (Const(Value("n", U32), 10), Backoff(Value("n", U32))),
        "wake": (Const(Value("w", U32), 0), Wake(arr, Value("w", U32))),
    }
    changes = {}
    for flag, body in probes.items():
        if not getattr(base, flag):
            continue
        module = Module((Function("probe", "kernel", (arr,), VOID, (), body),))
        try:
            compile_module(module, target, cache=False)
        except CompileError:
            changes[flag] = False
        except Exception:  # an internal error: keep the statement so the fuzzer reports it
            continue
    return dataclasses.replace(base, **changes)


def lower_and_check(
    data: bytes,
    target: str,
    profile: Profile,
    check: Callable[[str], None],
    allowed: tuple[str, ...],
) -> str | None:
    """Generates a module from ``data``, lowers it, and has the target's validator check it.

    Returns the text (None when the lowering documented a limit).  A
    ``CompileError`` outside ``allowed`` from the lowering, any other
    exception, or a validator rejection is a :class:`Finding`.
    """
    module = generate(data, profile)
    try:
        text = compile_module(module, target, cache=False)
    except CompileError as exc:
        if documented(exc, allowed):
            return None
        raise Finding(f"{target} lowering rejected a valid module: {exc}\n{module}") from exc
    try:
        check(text)
    except CompileError as exc:
        raise Finding(f"the {target} validator rejected the output: {exc}\n--- module:\n{module}\n"
                      f"--- {target}:\n{text}") from exc
    return text


__all__ = ["Finding", "documented", "probe_profile", "lower_and_check"]
