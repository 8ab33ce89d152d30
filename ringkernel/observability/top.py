"""``python -m ringkernel top URL``: a live terminal table of a served actor system.

It scrapes ``URL/metrics`` (what ``system.serve()`` exposes) once a second
and shows per actor its status, messages handled, the rate since the last
refresh, input queue fill, drops, rejections, restarts and clock drift.
``--once`` prints one table (two scrapes ``--interval`` apart, for the
rates) and exits, which is what scripts and tests use.
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any, TextIO

from prometheus_client.parser import text_string_to_metric_families

CLEAR = "\x1b[H\x1b[2J"
COLUMNS = (
    "ACTOR",
    "STATUS",
    "PROCESSED",
    "MSG/S",
    "QUEUE",
    "FILL",
    "DROPPED",
    "REJECTED",
    "RESTARTS",
    "DRIFT",
)


def scrape(url: str, timeout: float = 5.0) -> dict[str, dict[str, Any]]:
    """Per actor: its samples by metric name (and ``status``), from one scrape of ``url``."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        text = response.read().decode()
    actors: dict[str, dict[str, Any]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            actor = s.labels.get("actor")
            if actor is None:
                continue
            row = actors.setdefault(actor, {})
            if s.name == "ringkernel_actor_status":
                if s.value:
                    row["status"] = s.labels["status"]
            elif "le" not in s.labels:
                row[s.name] = s.value
    return actors


def table(now: dict[str, dict[str, Any]], before: dict[str, dict[str, Any]] | None, seconds: float) -> str:
    """The rows for one refresh; rates compare with ``before`` taken ``seconds`` earlier."""
    rows = [COLUMNS]
    for actor, m in sorted(now.items()):
        processed = m.get("ringkernel_messages_processed_total", 0.0)
        rate = "-"
        if before is not None and actor in before and seconds > 0:
            delta = processed - before[actor].get("ringkernel_messages_processed_total", 0.0)
            rate = f"{max(delta, 0.0) / seconds:,.0f}"
        rows.append(
            (
                actor,
                m.get("status", "?"),
                f"{processed:,.0f}",
                rate,
                f"{m.get('ringkernel_queue_depth', 0):.0f}",
                f"{100 * m.get('ringkernel_queue_utilization_ratio', 0):.0f}%",
                f"{m.get('ringkernel_messages_dropped_total', 0):.0f}",
                f"{m.get('ringkernel_messages_rejected_total', 0):.0f}",
                f"{m.get('ringkernel_restarts_total', 0):.0f}",
                f"{m.get('ringkernel_hlc_drift_seconds', 0):+.3f}s",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def metrics_url(url: str) -> str:
    """``host:port`` or a base URL becomes its ``/metrics`` address."""
    if "://" not in url:
        url = "http://" + url
    return url if url.rstrip("/").endswith("/metrics") else url.rstrip("/") + "/metrics"


def run(url: str, interval: float, once: bool, out: TextIO) -> int:
    """Refreshes every ``interval`` s (one table with ``once``); 1 if the system cannot be reached."""
    url = metrics_url(url)
    before, taken = None, 0.0
    try:
        while True:
            now, at = scrape(url), time.monotonic()
            if before is not None or not once:
                text = table(now, before, at - taken)
                out.write(text + "\n" if once else f"{CLEAR}ringkernel top  {url}\n\n{text}\n")
                out.flush()
                if once:
                    return 0
            before, taken = now, at
            time.sleep(interval)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        print(f"ringkernel top: cannot read {url}: {reason}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


def main(argv: Sequence[str]) -> int:
    """``python -m ringkernel top URL [--once] [--interval S]``."""
    parser = argparse.ArgumentParser(prog="python -m ringkernel top", description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the served system, e.g. http://127.0.0.1:9464")
    parser.add_argument("--once", action="store_true", help="print one table and exit")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes (default 1)")
    args = parser.parse_args(argv)
    if not 0.01 <= args.interval <= 3600:
        parser.error(f"--interval must be between 0.01 and 3600 seconds, got {args.interval}")
    return run(args.url, args.interval, args.once, sys.stdout)
