"""rk.grid_sync() in RingIR: text round trip, and the verifier's grid-uniformity rules.

A grid barrier every work-item of the grid must reach together: one under
control flow that differs between work-items (or after some of them
returned) would wait forever on a GPU, so the verifier refuses it.
"""

from __future__ import annotations

import pytest

from ringkernel.ringir import GridSync, parse, walk
from ringkernel.ringir.diagnostics import CompileError

HEAD = "ringir 1\n\n"


def kernel(body: str, params: str = "%a: array<f32, global>, %n: i32", kind: str = "kernel") -> str:
    return HEAD + f"{kind} @k({params}) -> void {{\n{body}}}\n"


UNIFORM = """  var $i: i32
  %0: i32 = const 0
  %1: i32 = const 1
  for $i in range(%0, %n, %1) {
    grid_sync
  }
  %2: i32 = block_dim 0
  %3: bool = lt %2, %n
  if %3 {
    grid_sync
  }
  grid_sync
"""


def test_grid_sync_round_trips_and_verifies_in_uniform_control_flow() -> None:
    text = kernel(UNIFORM)
    module = parse(text)
    assert str(module) == text
    assert parse(str(module)) == module
    assert sum(isinstance(s, GridSync) for s in walk(module.kernels[0].body)) == 3


@pytest.mark.parametrize("body, why", [
    ("  %0: i32 = global_id 0\n  %1: bool = lt %0, %n\n  if %1 {\n    grid_sync\n  }\n", "'if'"),
    ("  %0: i32 = block_id 0\n  %1: bool = lt %0, %n\n  if %1 {\n    grid_sync\n  }\n", "'if'"),
    ("  %0: i32 = const 0\n  %1: f32 = load %a[%0]\n  %2: f32 = const 0.0\n  %3: bool = lt %1, %2\n"
     "  if %3 {\n    grid_sync\n  }\n", "'if'"),
    ("  var $i: i32\n  %0: i32 = const 0\n  %1: i32 = thread_id 0\n  %2: i32 = const 1\n"
     "  for $i in range(%0, %1, %2) {\n    grid_sync\n  }\n", "bounds differ"),
    ("  %0: i32 = thread_id 0\n  %1: bool = lt %0, %n\n  loop {\n    grid_sync\n    if %1 {\n"
     "      break\n    }\n  }\n", "leave"),
])
def test_grid_sync_under_varying_control_flow_is_refused(body: str, why: str) -> None:
    with pytest.raises(CompileError, match="grid_sync under") as info:
        parse(kernel(body))
    assert why in str(info.value)


def test_a_varying_return_in_a_kernel_with_grid_sync_is_refused() -> None:
    body = "  %0: i32 = global_id 0\n  %1: bool = ge %0, %n\n  if %1 {\n    return\n  }\n  grid_sync\n"
    with pytest.raises(CompileError, match="return under .* grid_sync"):
        parse(kernel(body))


def test_uniform_returns_and_varying_returns_after_the_last_grid_sync_are_fine() -> None:
    body = ("  %0: i32 = block_dim 0\n  %1: bool = ge %0, %n\n  if %1 {\n    return\n  }\n"
            "  grid_sync\n  %2: i32 = global_id 0\n  %3: bool = lt %2, %n\n  if %3 {\n    return\n  }\n")
    parse(kernel(body))  # the varying return comes after the last grid_sync: nobody waits for it
    looped = ("  var $i: i32\n  %0: i32 = const 0\n  %1: i32 = const 1\n"
              "  for $i in range(%0, %n, %1) {\n    %2: i32 = global_id 0\n    %3: bool = lt %2, %n\n"
              "    if %3 {\n      return\n    }\n    grid_sync\n  }\n")
    with pytest.raises(CompileError, match="return under"):
        parse(kernel(looped))


def test_grid_sync_only_in_kernels() -> None:
    with pytest.raises(CompileError, match="grid_sync is only allowed in kernels"):
        parse(kernel("  grid_sync\n", params="", kind="func"))
