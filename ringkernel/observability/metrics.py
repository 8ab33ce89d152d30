"""``system.metrics()`` and ``system.health()``: snapshots read from control words and host counters.

Nothing is counted per message on the host: the loops already count what
they handle in their control block and queue headers (``docs/layout.md``),
so a snapshot just reads those words.  The one host-side measurement is the
round trip of :meth:`ActorRef.ask`, kept in a fixed-bucket :class:`Histogram`.

Status and the ``restarts`` and ``handler_aborted`` counters come from
supervision (``ActorRef.status``, ``.restarts``, ``.handler_aborted``).
"""

from __future__ import annotations

import bisect
import threading
import weakref
from typing import Any

from ringkernel.observability import handler_time
from ringkernel.observability.clock import physical_us, wall_us
from ringkernel.observability.widen import Widener
from ringkernel.ringir import layout as L

# Seconds; a local ask on cpu takes tens of microseconds, one through lavapipe milliseconds.
ROUND_TRIP_BUCKETS = (
    1e-5,
    2.5e-5,
    5e-5,
    1e-4,
    2.5e-4,
    5e-4,
    1e-3,
    2.5e-3,
    5e-3,
    1e-2,
    2.5e-2,
    0.1,
    0.25,
    1.0,
)

READY = ("running", "idle")  # statuses /readyz accepts
DEAD = ("hung", "failed", "blocked")  # statuses /healthz refuses (blocked: a cycle of full queues)


class Histogram:
    """A Prometheus-style histogram (fixed upper bounds, cumulative on read); thread-safe."""

    def __init__(self, bounds: tuple[float, ...] = ROUND_TRIP_BUCKETS) -> None:
        self.bounds = bounds
        self._counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        """Counts one observation of ``value``."""
        at = bisect.bisect_left(self.bounds, value)
        with self._lock:
            self._counts[at] += 1
            self._sum += value

    def snapshot(self) -> dict[str, Any]:
        """``{"buckets": [(upper bound, cumulative count), ..., (inf, count)], "count", "sum"}``."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative, running = [], 0
        for bound, n in zip((*self.bounds, float("inf")), counts):
            running += n
            cumulative.append((bound, running))
        return {"buckets": cumulative, "count": running, "sum": total}


# counters a snapshot reports widened to 64 bits (ringkernel.observability.widen)
WIDENED = ("processed", "sent", "replies", "unhandled", "heartbeat", "dropped", "rejected",
           "handler_aborted", "sends_rejected", "clock_refused")
_WIDENERS: weakref.WeakKeyDictionary[Any, Widener] = weakref.WeakKeyDictionary()
_WIDENERS_LOCK = threading.Lock()


def widener_for(system: Any) -> Widener:
    """The system's :class:`Widener` (one per system, made on first use)."""
    with _WIDENERS_LOCK:
        widener = _WIDENERS.get(system)
        if widener is None:
            widener = _WIDENERS[system] = Widener()
        return widener


def actor_status(ref: Any) -> str:
    """One of ``running idle hung blocked failed restarting stopped``: ``ActorRef.status``."""
    return str(ref.status)


def actor_snapshot(ref: Any, now_us: int, widener: Widener | None = None) -> dict[str, Any]:
    """One actor's counters, gauges and status, read now (counters widened by ``widener``)."""
    c = ref.ctrl
    h2k, k2k, k2h = ref.h2k.stats(), ref.k2k.stats(), ref.k2h.stats()
    clock_us = physical_us(int(c[L.C["hlc_lo"]]) | int(c[L.C["hlc_hi"]]) << 32)
    depth = ref.inputs_pending()
    capacity = ref.h2k.capacity + (ref.k2k.capacity if ref.upstream is not None else 0)
    if ref.system.routing.routes_to(ref):  # its routed queue is an input too
        capacity += ref.routed.capacity
    out: dict[str, Any] = {
        "actor": ref.name,
        "type": ref.type.__name__,
        "status": actor_status(ref),
        "processed": int(c[L.C["processed"]]),
        "sent": h2k["enqueued"],
        "replies": int(c[L.C["sequence"]]),
        "unhandled": int(c[L.C["errors"]]),
        "heartbeat": int(c[L.C["heartbeat"]]),
        "queue_depth": depth,
        "queue_capacity": capacity,
        "queue_utilization": depth / capacity,
        "output_depth": len(ref.k2h),
        "output_capacity": ref.k2h.capacity,
        "dropped": h2k["dropped"] + k2k["dropped"],
        "rejected": h2k["rejected"] + k2k["rejected"] + k2h["rejected"],
        "handler_aborted": ref.handler_aborted,
        "sends_rejected": ref.sends_rejected,
        "restarts": ref.restarts,
        "clock_refused": int(c[L.C["clock_refused"]]) + ref.clock_refused,
        "hlc_drift_seconds": (clock_us - now_us) / 1e6 if clock_us else 0.0,
        "round_trip_seconds": ref.round_trips.snapshot(),
    }
    if widener is not None:
        for key in WIDENED:
            out[key] = widener.value((ref.id, key), out[key])
    host = ref.system.hosts.get(ref.id)
    out["handler_seconds"] = handler_time.of(ref.ctrl, host)
    dispatches = getattr(host, "dispatches", None)
    if isinstance(dispatches, int):  # re-dispatched loops (wgpu, metal, cpu batch)
        out["dispatches"] = dispatches
    return out


def snapshot(system: Any) -> dict[str, Any]:
    """``system.metrics()``: every actor's numbers plus the system's, as plain Python values."""
    now_us = wall_us()
    actors = list(system.actors)
    return {
        "backend": system.backend,
        "stopped": bool(system.closed),
        "pump_restarts": int(getattr(system.runtime, "pump_restarts", 0)),  # a re-dispatch pump's
        "actors": {ref.name: actor_snapshot(ref, now_us, widener_for(system)) for ref in actors},
    }


def clock_health(system: Any) -> dict[str, Any]:
    """Each actor's HLC against the host's wall clock: ``drift_seconds`` per actor (its clock
    minus the wall clock: ahead is positive; an idle actor's clock stands still, so it falls
    behind), the bound past which a stamp is refused, and the refusals counted so far (by the
    actors' merges, the host's, and the groups' instances)."""
    now_us = wall_us()
    drift = {}
    refused = system.clock_drift_refused
    for ref in list(system.actors):
        c = ref.ctrl
        clock_us = physical_us(int(c[L.C["hlc_lo"]]) | int(c[L.C["hlc_hi"]]) << 32)
        drift[ref.name] = (clock_us - now_us) / 1e6 if clock_us else 0.0
        refused += int(c[L.C["clock_refused"]])
    for group in list(getattr(system, "groups", ())):
        refused += int(group.counter("clock_refused").astype("uint64").sum())
    return {"drift_seconds": drift, "max_drift_seconds": L.MAX_CLOCK_DRIFT_US / 1e6, "refused": refused}


def health(system: Any) -> dict[str, Any]:
    """``system.health()``: ``live`` (nothing hung, failed or deadlocked), ``ready`` (every actor
    running or idle); ``clock`` (:func:`clock_health`); ``send_cycle`` (only while there is one)
    names the cycle of full queues the router found."""
    statuses = {ref.name: actor_status(ref) for ref in list(system.actors)}
    groups = {g.name: g.status for g in list(getattr(system, "groups", ()))}  # running, idle, stopped
    cycle = system.routing.router.cycle
    live = not system.closed and not any(s in DEAD for s in statuses.values()) and cycle is None
    ready = not system.closed and cycle is None and all(
        s in READY for s in (*statuses.values(), *groups.values())
    )
    report: dict[str, Any] = {"live": live, "ready": ready, "actors": statuses, "clock": clock_health(system)}
    if groups:  # (a system without groups answers as before)
        report["groups"] = groups
    if cycle:
        report["send_cycle"] = list(cycle)
    return report
