"""Suite: what a checkpoint and a restore cost, and how big the file is (issue 20).

One cpu ``Echo`` actor holding 1, 1,000 and 100,000 unreceived replies (the
saved slots are what grows a checkpoint; queued inputs are the same slots).
Each row is against writing the same number of bytes atomically (temp file,
fsync, rename, fsync of the directory) without pausing or encoding, so the
ratio is the cost of taking the image and of the format; the file size is in
the note.  Restore is timed in a fresh system (the loop kernel is already
compiled and cached) and includes spawning the actor.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

import ringkernel as rk
from bench.report import Row
from bench.settings import Settings
from bench.timing import measure
from ringkernel import durability

SUITE = "durability (cpu)"
SIZES = (1, 1_000, 100_000)


def run(settings: Settings) -> list[Row]:
    from bench.actor_defs import Echo, Ping

    repeats = 3 if settings.quick else 7
    sizes = SIZES[:2] if settings.quick else SIZES
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as folder:
        for n in sizes:
            rows += _one_size(Echo, Ping, n, Path(folder), repeats)
    return rows


def _one_size(echo_type: rk.ActorType, ping: type, n: int, folder: Path, repeats: int) -> list[Row]:
    """Checkpoint and restore rows for an actor holding ``n`` unreceived replies."""
    path = folder / f"echo-{n}.rkc"
    with rk.ActorSystem(backend="cpu") as system:
        echo = system.spawn(echo_type, queue_capacity=1 << max(1, (n - 1).bit_length()))
        echo.send_many(np.ones(n, dtype=ping.dtype), timeout=30.0)
        while echo.stats["processed"] < n:
            system._pump_all()
        checkpoint = measure(lambda: echo.checkpoint(path), repeats, warmup=1)
    size = os.path.getsize(path)
    raw = measure(lambda: durability.write(folder / "raw", bytes(size)), repeats)
    restore = measure(lambda: _restore(path), repeats, warmup=1)
    note = f"{size:,} bytes, {size / n:.0f} B/reply"
    return [
        Row(SUITE, f"checkpoint, {n:,} replies", checkpoint.median, "atomic write", raw.median, note=note),
        Row(SUITE, f"restore, {n:,} replies", restore.median, "checkpoint", checkpoint.median),
    ]


def _restore(path: Path) -> None:
    with rk.ActorSystem(backend="cpu") as system:
        [ref] = system.restore(path)
        ref.receive_many(1 << 20, timeout=5.0, as_array=True)
