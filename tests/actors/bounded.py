"""Runs a step that might hang in a daemon thread, so a hang fails the test instead of CI."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest


def within(seconds: float, step: Callable[[], Any]) -> Any:
    """``step()``'s result (or its exception) if it finishes within ``seconds``; a test failure otherwise."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = step()
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"{getattr(step, '__name__', 'step')} did not finish within {seconds} s (a hang)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")
