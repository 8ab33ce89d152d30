"""Result rows, the printed table and the JSON dump.

Every row compares our time with a named baseline timed in the same run;
``ratio`` is ours / baseline, so below 1 means we are faster.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any


class Skipped(Exception):
    """A suite cannot run on this machine; the message says why."""


@dataclass(frozen=True)
class Row:
    """One benchmark: our median seconds per operation against a baseline's."""

    suite: str
    name: str
    ours: float
    baseline_name: str
    baseline: float
    rate: str = ""  # throughput of ours, already formatted ("3.1 GB/s")
    note: str = ""
    unit: str = "s"  # what ours and baseline count: seconds, or e.g. "instr" (SASS instructions)

    @property
    def ratio(self) -> float:
        return self.ours / self.baseline if self.baseline > 0 else math.inf


def format_seconds(seconds: float) -> str:
    """A duration with a unit that keeps three significant digits."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def format_rate(amount: float, seconds: float, unit: str) -> str:
    """``amount`` per second with an SI prefix, e.g. ``format_rate(4e6, 2e-3, "elem")``."""
    per_second = amount / seconds
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if per_second >= scale:
            return f"{per_second / scale:.3g} {prefix}{unit}/s"
    return f"{per_second:.3g} {unit}/s"


def _format(amount: float, unit: str) -> str:
    return format_seconds(amount) if unit == "s" else f"{amount:g} {unit}"


def render_table(rows: list[Row]) -> str:
    """A plain-text table grouped by suite; also valid Markdown."""
    header = ["benchmark", "ours", "baseline", "baseline time", "ratio", "throughput / note"]
    body = [
        [
            f"{row.suite}: {row.name}",
            _format(row.ours, row.unit),
            row.baseline_name,
            _format(row.baseline, row.unit),
            f"{row.ratio:.3g}x",
            " ".join(part for part in (row.rate, row.note) if part),
        ]
        for row in rows
    ]
    widths = [max(len(line[col]) for line in [header, *body]) for col in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.ljust(w) for cell, w in zip(cells, widths)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(cells) for cells in body)])


def to_json(rows: list[Row], meta: dict[str, Any]) -> str:
    """Rows with their ratios, plus run metadata, as indented JSON."""
    data = [dict(asdict(row), ratio=row.ratio) for row in rows]
    return json.dumps({"meta": meta, "results": data}, indent=2)
