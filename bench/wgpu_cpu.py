"""Suite 2: the wgpu backend against the cpu backend, same kernels and data.

On a machine without a GPU, wgpu runs on Mesa's lavapipe: software Vulkan on
the same cores as the cpu backend, so these ratios say nothing about a GPU.
Every row names the adapter it ran on.
"""

from __future__ import annotations

from bench.kernels import problems
from bench.launches import problem_rows
from bench.report import Row, Skipped
from bench.settings import Settings


def adapter_label() -> str:
    """``"lavapipe, software Vulkan"`` or the adapter's name; raises Skipped without wgpu."""
    from ringkernel.runtime import BackendUnavailable, get_backend

    try:
        name = get_backend("wgpu").adapter_name
    except BackendUnavailable as exc:
        raise Skipped(str(exc)) from None
    if "llvmpipe" in name or "lavapipe" in name:
        return "lavapipe, software Vulkan"
    return name.split(" / ")[0]


def run(settings: Settings) -> list[Row]:
    suite = f"wgpu [{adapter_label()}] vs cpu"
    rows = []
    seen: set[str] = set()
    for problem in problems(settings.quick):
        first = problem.kernel.__name__ not in seen
        seen.add(problem.kernel.__name__)
        problem.check("cpu")
        rows += problem_rows(
            suite, problem, "wgpu", "cpu backend", lambda p=problem: p.launch("cpu"), settings, first
        )
    return rows
