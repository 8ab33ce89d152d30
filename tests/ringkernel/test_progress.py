"""The progress bar of ``python -m bench`` and ``python -m fuzz``: drawn on terminals only."""

from __future__ import annotations

import io

from ringkernel.observability.progress import ProgressBar, bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_fills_with_the_fraction() -> None:
    assert bar(0.0, width=4) == "[....]   0%"
    assert bar(0.5, width=4) == "[##..]  50%"
    assert bar(7.0, width=4) == "[####] 100%"  # clamped


def test_progress_bar_draws_on_a_terminal() -> None:
    out = _Terminal()
    progress = ProgressBar(2, out)
    progress.step("suite cpu")
    progress.step("suite wgpu")
    progress.close()
    text = out.getvalue()
    assert "1/2 suite cpu" in text and "2/2 suite wgpu" in text and " 50%" in text
    assert text.endswith("\r\x1b[2K")


def test_progress_bar_is_silent_in_a_pipe() -> None:
    out = io.StringIO()
    progress = ProgressBar(3, out)
    progress.step("x")
    progress.close()
    assert out.getvalue() == ""
