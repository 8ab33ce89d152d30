"""The Prometheus view of :func:`~ringkernel.observability.metrics.snapshot`: a custom collector.

It turns one snapshot into metric families at scrape time (no client-side
counters updated per message).  Names follow Prometheus conventions:
``ringkernel_`` prefix, ``_total`` on counters, base units (seconds, ratio).
Counters are the loops' 32-bit words, so one wraps after 2**32 messages; a
scraper sees that as a counter reset, which ``rate()`` already handles.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from ringkernel.observability.metrics import snapshot

COUNTERS = (  # (snapshot key, metric name without _total, help)
    ("processed", "ringkernel_messages_processed", "Messages the actor's loop handled."),
    ("sent", "ringkernel_messages_sent", "Messages the host enqueued to the actor."),
    ("replies", "ringkernel_replies_sent", "Replies the actor's loop published."),
    ("unhandled", "ringkernel_messages_unhandled", "Messages whose type no handler takes."),
    ("dropped", "ringkernel_messages_dropped", "Messages discarded by the drop-oldest policy."),
    ("rejected", "ringkernel_messages_rejected", "Sends refused (reject policy or a block timeout)."),
    ("handler_aborted", "ringkernel_handler_aborted", "Handlers aborted; 0 until supervision."),
    ("restarts", "ringkernel_restarts", "Restarts of the actor by supervision; 0 until supervision."),
    ("clock_refused", "ringkernel_clock_refused", "Stamps too far ahead to merge into a clock."),
    ("sends_rejected", "ringkernel_sends_rejected", "Handler sends that found the sends queue full."),
    ("dispatches", "ringkernel_dispatches", "Dispatches of a re-dispatched batch loop (wgpu, metal)."),
)
GAUGES = (
    ("queue_depth", "ringkernel_queue_depth", "Messages waiting in the actor's input queues."),
    ("queue_utilization", "ringkernel_queue_utilization_ratio", "Input queue fill, 0 to 1."),
    ("output_depth", "ringkernel_output_queue_depth", "Replies waiting in the actor's output queue."),
    ("hlc_drift_seconds", "ringkernel_hlc_drift_seconds", "Actor clock minus host wall clock."),
)
STATUSES = ("running", "idle", "hung", "blocked", "failed", "restarting", "stopped")
ROUTER_COUNTERS = (  # (routing key, metric name without _total, help): the system's router, no labels
    ("routed", "ringkernel_messages_routed",
     "Message copies delivered into routed queues, by the router or directly (fan-out counts each)."),
    ("direct", "ringkernel_sends_direct", "send_to sends the loops delivered device-side (not routed)."),
    ("unrouted", "ringkernel_messages_unrouted", "Messages sent to a port nobody is connected to."),
    ("invalid", "ringkernel_send_targets_invalid", "send_to targets outside the group, or bad targets."),
)
# actor groups (``ringkernel.groups.group_metrics``): one series per group, summed over its
# instances (a label per instance would make 100,000 series)
GROUP_COUNTERS = (
    ("processed", "ringkernel_group_messages_processed", "Messages the group's instances handled."),
    ("sent", "ringkernel_group_messages_sent", "Messages the host enqueued to the group's instances."),
    ("replies", "ringkernel_group_replies_sent", "Replies the group's instances published."),
    ("unhandled", "ringkernel_group_messages_unhandled", "Messages whose type no handler takes."),
    ("dropped", "ringkernel_group_messages_dropped", "Messages discarded by the drop-oldest policy."),
    ("rejected", "ringkernel_group_messages_rejected", "Sends refused (reject policy or a block timeout)."),
    ("handler_aborted", "ringkernel_group_handler_aborted", "Handlers aborted in the group's instances."),
    ("clock_refused", "ringkernel_group_clock_refused", "Stamps too far ahead to merge into a clock."),
)
GROUP_GAUGES = (
    ("instances", "ringkernel_group_instances", "Instances in the group."),
    ("queue_depth", "ringkernel_group_queue_depth", "Messages waiting in all instances' input queues."),
    ("queue_depth_max", "ringkernel_group_queue_depth_max", "The fullest instance's waiting messages."),
    ("output_depth", "ringkernel_group_output_queue_depth", "Replies waiting in all output queues."),
)
GROUP_STATUSES = ("running", "idle", "stopped")


class SystemCollector(Collector):
    """Reads one :func:`snapshot` of ``system`` per scrape."""

    def __init__(self, system: Any) -> None:
        self.system = system

    def collect(self) -> Iterator[Metric]:
        taken = snapshot(self.system)
        actors = taken["actors"].values()
        yield from router_families(self.system.routing.metrics())
        for key, name, text in COUNTERS:
            family = CounterMetricFamily(name, text, labels=["actor"])
            for a in actors:
                if key in a:
                    family.add_metric([a["actor"]], a[key])
            yield family
        for key, name, text in GAUGES:
            gauge = GaugeMetricFamily(name, text, labels=["actor"])
            for a in actors:
                gauge.add_metric([a["actor"]], a[key])
            yield gauge
        status = GaugeMetricFamily(
            "ringkernel_actor_status", "1 for the actor's current status.", labels=["actor", "status"]
        )
        for a in actors:
            for s in STATUSES:
                status.add_metric([a["actor"], s], 1.0 if a["status"] == s else 0.0)
        yield status
        rtt = HistogramMetricFamily(
            "ringkernel_round_trip_seconds", "ask() round trips measured on the host.", labels=["actor"]
        )
        for a in actors:
            h = a["round_trip_seconds"]
            buckets = [("+Inf" if b == float("inf") else repr(b), n) for b, n in h["buckets"]]
            rtt.add_metric([a["actor"]], buckets, h["sum"])
        yield rtt
        yield from group_families(self.system)


def group_families(system: Any) -> Iterator[Metric]:
    """The ``ringkernel_group_*`` families, labelled by group name and actor class."""
    from ringkernel.groups import group_metrics

    groups = [group_metrics(g) for g in list(getattr(system, "groups", ()))]
    labels = ["group", "type"]
    for key, name, text in GROUP_COUNTERS:
        family = CounterMetricFamily(name, text, labels=labels)
        for g in groups:
            family.add_metric([g["group"], g["type"]], g[key])
        yield family
    for key, name, text in GROUP_GAUGES:
        gauge = GaugeMetricFamily(name, text, labels=labels)
        for g in groups:
            gauge.add_metric([g["group"], g["type"]], g[key])
        yield gauge
    status = GaugeMetricFamily("ringkernel_group_status", "1 for the group's current status.",
                               labels=[*labels, "status"])
    for g in groups:
        for s in GROUP_STATUSES:
            status.add_metric([g["group"], g["type"], s], 1.0 if g["status"] == s else 0.0)
    yield status


def router_families(routing: dict[str, Any]) -> Iterator[Metric]:
    """The router's counters, its held timers and the cycle of full queues it found (if any)."""
    for key, name, text in ROUTER_COUNTERS:
        yield CounterMetricFamily(name, text, value=routing[key])
    yield GaugeMetricFamily("ringkernel_timers_pending", "Timers (self.schedule) the router holds.",
                            value=routing["timers_pending"])
    cycle = GaugeMetricFamily("ringkernel_send_cycle", "1 while a cycle of full queues blocks these actors.",
                              labels=["cycle"])
    if routing["cycle"]:
        cycle.add_metric([" -> ".join(routing["cycle"])], 1.0)
    yield cycle


def registry_for(system: Any) -> CollectorRegistry:
    """A registry of its own (not the global one), so several systems can serve side by side."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SystemCollector(system))
    return registry
