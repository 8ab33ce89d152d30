"""Suite: what a checkpoint and a restore cost, and how big the file is (issue 20).

One cpu ``Echo`` actor holding 1, 1,000 and 100,000 unreceived replies (the
saved slots are what grows a checkpoint; queued inputs are the same slots).
Each row is against writing the same number of bytes atomically (temp file,
fsync, rename, fsync of the directory) without pausing or encoding, so the
ratio is the cost of taking the image and of the format; the file size is in
the note.  Restore is timed in a fresh system (the loop kernel is already
compiled and cached) and includes spawning the actor.

Groups of 1, 1,000 and 100,000 ``Echo`` instances (each with a reply waiting)
are checkpointed and restored the same way.  Migration rows time the pause of
``system.migrate`` (what senders wait: loop stopped, words copied, loop
started) of the echo actor with 1,000 queued messages and of a group of 1,000
instances, cpu -> wgpu and back (skipped where wgpu cannot run), against a
checkpoint of the same actor.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

import ringkernel as rk
from bench.report import Row
from bench.settings import Settings
from bench.timing import measure
from ringkernel import durability

SUITE = "durability (cpu)"
SIZES = (1, 1_000, 100_000)
MIGRATIONS = 6  # cpu -> wgpu -> cpu, three times


def run(settings: Settings) -> list[Row]:
    from bench.actor_defs import Echo, Ping

    repeats = 3 if settings.quick else 7
    sizes = SIZES[:2] if settings.quick else SIZES
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as folder:
        for n in sizes:
            rows += _one_size(Echo, Ping, n, Path(folder), repeats)
        for n in sizes:
            rows += _one_group(Echo, Ping, n, Path(folder), repeats)
        rows += _migrations(Echo, Ping, Path(folder), repeats)
    return rows


def _one_group(echo_type: rk.ActorType, ping: type, n: int, folder: Path, repeats: int) -> list[Row]:
    """Checkpoint and restore rows for a group of ``n`` instances, each holding one reply."""
    path = folder / f"group-{n}.rkc"
    with rk.ActorSystem(backend="cpu") as system:
        group = system.spawn(echo_type, count=n, queue_capacity=2)
        group.broadcast(ping(value=1), timeout=30.0)
        while int(group.processed.sum()) < n:
            time.sleep(0.001)
        checkpoint = measure(lambda: group.checkpoint(path), repeats, warmup=1)
    size = os.path.getsize(path)
    raw = measure(lambda: durability.write(folder / "raw", bytes(size)), repeats)
    restore = measure(lambda: _restore_group(path), repeats, warmup=1)
    note = f"{size:,} bytes, {size / n:.0f} B/instance"
    return [
        Row(SUITE, f"checkpoint, group of {n:,}", checkpoint.median, "atomic write", raw.median, note=note),
        Row(SUITE, f"restore, group of {n:,}", restore.median, "checkpoint", checkpoint.median),
    ]


def _restore_group(path: Path) -> None:
    with rk.ActorSystem(backend="cpu") as system:
        system.restore(path)
        system.shutdown(drain=False)


def _migrations(echo_type: rk.ActorType, ping: type, folder: Path, repeats: int) -> list[Row]:
    """Migration pause rows (cpu <-> wgpu), against a checkpoint of the same actor."""
    from ringkernel.runtime import backend_status

    if not backend_status("wgpu")[0]:
        return []
    rows = []
    with rk.ActorSystem(backend="cpu") as system:
        echo = system.spawn(echo_type, queue_capacity=2048)
        group = system.spawn(echo_type, count=1_000, queue_capacity=2)
        for what, target in (("actor, 1,000 queued", echo), ("group of 1,000", group)):
            system.migrate(target, "wgpu")  # opens the runtime, compiles: not a pause users see again
            system.migrate(target, "cpu")
            if target is echo:
                echo.send_many(np.ones(1_000, dtype=ping.dtype), timeout=30.0)
            trips = ("wgpu", "cpu") * (MIGRATIONS // 2)
            pauses = [system.migrate(target, backend).pause_s for backend in trips]
            checkpoint = measure(lambda t=target, p=folder / "m.rkc": system.checkpoint(p, [t]), repeats,
                                 warmup=1)
            rows.append(Row(SUITE, f"migration pause, {what}", float(np.median(pauses)), "checkpoint",
                            checkpoint.median, note=f"max {max(pauses) * 1e3:.1f} ms of {len(pauses)}"))
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
