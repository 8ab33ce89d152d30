"""Suite: what the compiler-inserted budget checks cost a loop-heavy handler (issue 19: at most 5%).

The same actor (``bench.budget_defs.Heavy``: a tight loop of dependent float
steps, the worst case for a per-iteration check) runs on the cpu backend
twice: lowered as usual, with a budget check at every loop back-edge and a
shadow copy of the state per message, and lowered with
``budget_checks=False`` as the baseline.  Each row is the median time of one
``ask`` whose handler runs ``ITERATIONS`` loop iterations, the two timed interleaved.
"""

from __future__ import annotations

from typing import Any

from bench.report import Row, Skipped
from bench.settings import Settings
from bench.timing import measure_pair

ITERATIONS = 200_000


def run(settings: Settings) -> list[Row]:
    import ringkernel as rk

    if not hasattr(rk, "HandlerAborted"):
        raise Skipped("budget checks are not in this build yet")
    from bench.budget_defs import Heavy, HeavyState

    repeats = 15 if settings.quick else 60
    return [
        _row(rk, Heavy, "loop-heavy handler (local accumulator)", repeats),
        _row(rk, HeavyState, "loop-heavy handler (state written every iteration)", repeats),
    ]


def _row(rk: Any, actor: Any, name: str, repeats: int) -> Row:
    from bench.budget_defs import Work

    with rk.ActorSystem(backend="cpu") as system:
        unchecked = unchecked_twin(actor, system.runtime)
        checked_ref = system.spawn(actor, queue_capacity=4)
        plain_ref = system.spawn(unchecked, queue_capacity=4)
        ours_t, base_t = measure_pair(
            lambda: checked_ref.ask(Work(n=ITERATIONS), timeout=30),
            lambda: plain_ref.ask(Work(n=ITERATIONS), timeout=30),
            repeats,
        )
    ours, base = ours_t.median, base_t.median
    return Row(
        "budget",
        f"{name}, {ITERATIONS:,} iterations per message",
        ours,
        "no budget checks",
        base,
        note=f"check overhead {100 * (ours / base - 1):+.1f}% (target <= 5%)",
    )


def unchecked_twin(actor: Any, runtime: Any) -> Any:
    """A copy of ``actor`` whose kernel, in the mode ``runtime`` runs single actors in (the
    cpu scheduler's group-of-one turn, not the persistent loop), has no budget checks."""
    from ringkernel.actors import ActorType, _user_errors
    from ringkernel.frontends.actors import build_actor_module
    from ringkernel.groups import single_kernel
    from ringkernel.ringir.passes.actor_lowering import lower_actor

    twin = ActorType(actor.py_class)
    mode, group = single_kernel(runtime)
    key = f"{mode}/group" if group else mode
    twin._modules[key] = _user_errors(lambda: lower_actor(
        build_actor_module(twin.info), twin.info.name, mode, group=group, budget_checks=False))
    assert not twin.abortable(mode, group), "the baseline still has budget checks"
    return twin
