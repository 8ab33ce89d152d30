"""``@rk.actor(threads=N > 1, budget=B)`` (DESIGN.md's example combines them): accepted without
handler loops; a looping handler is a CompileError at its loop, since the budget would not hold."""

from __future__ import annotations

import os
import sys
import textwrap

import pytest

import ringkernel as rk
from ringkernel.ringir.diagnostics import CompileError

sys.path.insert(0, os.path.dirname(__file__))
from coop_budget_defs import Bump, Straight  # noqa: E402


def test_a_cooperative_actor_without_loops_takes_a_budget_and_runs():
    assert Straight.budget == 1000 and Straight.info.threads == 4
    with rk.ActorSystem(backend="cpu", workers=1) as system:
        ref = system.spawn(Straight)
        assert ref.ask(Bump(value=3), timeout=10.0).total == 3
        assert ref.ask(Bump(value=4), timeout=10.0).total == 7


def test_a_looping_cooperative_handler_with_a_budget_is_a_compile_error_at_the_loop(tmp_path):
    source = textwrap.dedent(
        """
        import ringkernel as rk
        from ringkernel import u32

        @rk.message
        class Tick:
            n: u32

        @rk.actor(threads=8, budget=100)
        class Looper:
            total: u32 = 0

            def tick(self, msg: Tick) -> None:
                if rk.thread_id(0) == 0:
                    for _ in range(msg.n):
                        self.total += u32(1)
        """
    )
    path = tmp_path / "looper_defs.py"
    path.write_text(source)
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(CompileError) as info:
            __import__("looper_defs")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("looper_defs", None)
    error = info.value
    assert (error.filename, error.line, error.col) == (str(path), 15, 13)
    text = str(error)
    assert "budgets are not enforced in looping handlers of cooperative actors" in text
    assert "drop budget=" in text and "threads=1" in text
    assert "for _ in range(msg.n):" in text and "^" in text  # the caret line under the loop
