"""``ringkernel_handler_seconds``: how long handlers take, as the loops measured it.

Targets with a device clock (cpu, cuda) time every handler in the loop itself
and count it in the control block (``handler_us`` and ``handler_bucket_k``,
``docs/layout.md`` "Handler timing"), so the host only reads words.  WGSL and
MSL have no clock: the pump times each round on the host and shares it evenly
among the messages the round handled (``PumpedActor.handler_buckets``), which
includes the dispatch's own cost and is documented as such.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ringkernel.ringir import layout as L

# Upper bounds in seconds: bucket k holds handlers under 2**k µs (the last one: the rest).
BOUNDS = tuple(2.0**k * 1e-6 for k in range(L.HANDLER_BUCKETS - 1))
_BUCKET_WORDS = [L.HANDLER_BUCKET_0 + k for k in range(L.HANDLER_BUCKETS)]


def histogram(counts: np.ndarray, total_us: int) -> dict[str, Any]:
    """``{"buckets": [(upper bound, cumulative count), ..., (inf, count)], "count", "sum"}``
    (as ``metrics.Histogram.snapshot``) of per-bucket ``counts`` and their ``total_us``."""
    cumulative = np.cumsum(counts.astype(np.uint64)).tolist()
    bounds = (*BOUNDS, float("inf"))
    return {"buckets": list(zip(bounds, cumulative)), "count": int(cumulative[-1]), "sum": total_us / 1e6}


def from_blocks(blocks: np.ndarray) -> dict[str, Any]:
    """The histogram of control ``blocks`` (rows of ``CONTROL_WORDS``), summed over the rows."""
    counts = blocks[:, _BUCKET_WORDS].astype(np.uint64).sum(axis=0)
    lo = blocks[:, L.C["handler_us_lo"]].astype(np.uint64)
    hi = blocks[:, L.C["handler_us_hi"]].astype(np.uint64)
    return histogram(counts, int((lo | hi << np.uint64(32)).sum()))


def of(ctrl: np.ndarray, host: Any) -> dict[str, Any]:
    """The histogram of the loop over ``ctrl`` (one block or a group's) served by ``host``:
    its host timing when it has one (a pumped batch loop), else the device's words."""
    buckets = getattr(host, "handler_buckets", None)
    if isinstance(buckets, np.ndarray):
        return histogram(buckets, int(host.handler_us))
    return from_blocks(ctrl.reshape(-1, L.CONTROL_WORDS))


__all__ = ["BOUNDS", "histogram", "from_blocks", "of"]
