"""Durable actors: checkpoint files, restore, and periodic checkpoints.

An actor's whole durable self is words (``docs/layout.md``): its state, the
slots queued for it and by it, and a few control-block counters including its
hybrid logical clock.  A checkpoint copies those words, taken while the
actor's loop is paused *between* messages (``STOP_PAUSE``: a handler in
progress runs to its end), into one file whose layout is normative in
``docs/layout.md`` ("Checkpoint file").  A file holds a list of instances,
so a system (and later an actor group) is one file.

Files are written atomically (temp file, fsync, rename, fsync of the
directory) and read all-or-nothing: every check runs before the first actor
is spawned, so a corrupt, truncated, foreign or incompatible file raises
:class:`CheckpointError` and changes nothing.
"""

from __future__ import annotations

import glob
import hashlib
import json
import math
import os
import struct
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ringkernel.ringir import layout as L
from ringkernel.ringir.passes.fingerprint import fingerprint
from ringkernel.runtime.queues import fence

if TYPE_CHECKING:
    from ringkernel.actors import ActorRef, ActorSystem, ActorType
    from ringkernel.groups import ActorGroup

MAGIC = b"RKCKPT\r\n"  # the CR LF catches a file mangled by a text-mode copy
VERSION = 4  # 4 adds the router's held `self.schedule` timers ("timers", "timer_due")
READABLE = (1, 2, 3, 4)  # 1: no groups, empty routed and sends queues; 2: no connections; 3: no timers
PREFIX = struct.Struct("<8sII")  # magic, version, header bytes
DIGEST_BYTES = 32  # sha256 of everything before it, at the end of the file
SUFFIX = ".rkc"
CTRL_WORDS = (  # control-block words a restore puts back (the rest are set by spawn)
    "processed",
    "errors",
    "sequence",
    "last_bad_type",
    "clock_refused",
    "aborted",
    "last_abort",
    "hlc_lo",
    "hlc_hi",
)
KEEP_DEFAULT = 3
KEEP_MAX = 10_000
EVERY_MIN = 0.01  # s
EVERY_MAX = 86_400.0
PERIODIC_GRACE = 0.5  # s a periodic checkpoint waits for the message in progress, then skips this turn
LOOK_EVERY = 0.1  # s between the checkpoint thread's looks when nothing is due sooner

# Test hook: called with the temp file's path after it is written and fsynced,
# before the rename (a crash there must leave the previous checkpoint valid).
after_write: Callable[[Path], None] | None = None


class CheckpointError(ValueError):
    """A checkpoint file that cannot be restored: corrupt, truncated, foreign or incompatible."""


@dataclass
class Image:
    """One actor instance as a checkpoint holds it."""

    actor: str  # "module:qualname" of its class
    name: str
    fingerprint: str  # RingIR fingerprint of its persistent loop module
    state_fields: list[list[str]]  # [name, type] in declaration order
    capacity: int
    policy: str
    lanes: int
    sequence: int  # the host's send counter
    ctrl: dict[str, int]
    state: np.ndarray
    inputs: np.ndarray  # (n, slot_words) queued input slots, oldest first
    outputs: np.ndarray  # (n, slot_words) replies not yet received, oldest first
    # (n, slot_words) messages the router delivered but the actor has not taken, and messages its
    # handlers sent that the router has not taken yet, oldest first (empty in a version 1 file)
    routed: np.ndarray = field(default_factory=lambda: np.zeros((0, 8), np.uint32))
    sends: np.ndarray = field(default_factory=lambda: np.zeros((0, 8), np.uint32))
    # (version 3) messages in its K2K queue from the actor connect() joined to it, oldest first,
    # and its routed queue's capacity (larger than the spawn's 2-slot stub once a port feeds it)
    k2k: np.ndarray = field(default_factory=lambda: np.zeros((0, 8), np.uint32))
    routed_capacity: int = 2
    # (version 4) the timers it set with `self.schedule` that the router still holds, in due
    # order, and when each is due: physical µs of the HLC epoch as (low, high) u32 words
    timers: np.ndarray = field(default_factory=lambda: np.zeros((0, 8), np.uint32))
    timer_due: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.uint32))


@dataclass
class Wiring:
    """The connections among the actors of one file (version 3): ``links`` are ``connect(a, b)``
    pairs ``[upstream name, downstream name]``; ``ports`` are ``connect(a, b, port=)`` targets
    ``[sender name, instance or None, port, receiver name, instance or None]`` in fan-out order."""

    links: list[list[str]] = field(default_factory=list)
    ports: list[list[Any]] = field(default_factory=list)


# --- taking an image --------------------------------------------------------------------


def actor_key(actor_type: ActorType) -> str:
    """``module:qualname`` of the class: how a file names it, so a restore can find it."""
    cls = actor_type.py_class
    return f"{cls.__module__}:{cls.__qualname__}"


def actor_fingerprint(actor_type: ActorType) -> str:
    """The actor's compiled identity: equal fingerprints mean the same loop, so no layout check."""
    return fingerprint(actor_type.module("persistent"), "rir")


def state_fields(actor_type: ActorType) -> list[list[str]]:
    """``[[name, type], ...]`` of its state: what the compatibility rule compares."""
    return [[f.name, f.spelled] for f in actor_type.info.state.fields]


def queued(buffer: np.ndarray) -> np.ndarray:
    """The slots of a queue its (paused) consumer has not taken, oldest first; slots a
    pending drop-oldest request will discard, and skipped ``routed`` slots (``SKIP_TYPE_ID``:
    reserved by the router, holding no message), are left out."""
    head, tail = int(buffer[L.Q_HEAD]), int(buffer[L.Q_TAIL])
    capacity, slot_words = int(buffer[L.Q_CAPACITY]), int(buffer[L.Q_SLOT_WORDS])
    drops = (int(buffer[L.Q["drop_requests"]]) - int(buffer[L.Q["drops_done"]])) & 0xFFFFFFFF
    fill = (tail - head) & 0xFFFFFFFF
    slots = buffer[L.QUEUE_HEADER_WORDS :].reshape(capacity, slot_words)
    index = [(head + i) & (capacity - 1) for i in range(min(drops, fill), fill)]
    rows = slots[index]
    return rows[rows[:, L.ENV_TYPE_ID] != L.SKIP_TYPE_ID].copy()


def paused(
    system: ActorSystem, ref: ActorRef | ActorGroup, take: Callable[[], Any], grace: float | None = None
) -> Any:
    """Runs ``take`` with ``ref``'s loop stopped between two messages, then starts it again;
    ``TimeoutError`` if the message in progress does not end within ``grace`` s (default:
    the system's ``drain_timeout``)."""
    with system._lock:
        system._check_open()
        if getattr(ref, "failed", False) or ref.abandoned:  # (a group is never failed)
            raise RuntimeError(f"cannot checkpoint {ref.name}: it has {ref.status}")
        system._pause((ref,), what="checkpoint", grace=grace)
        try:
            sends_routed(system, (ref,), system.drain_timeout if grace is None else grace)
            device_words_to_host((ref,))
            return take()
        finally:
            system._launch(ref)


def paused_all(system: ActorSystem, units: Sequence[Any], take: Callable[[], Any], grace: float) -> Any:
    """Runs ``take`` with the loops of ``units`` stopped together between two messages and their
    ``sends`` queues delivered (:func:`sends_routed`), then starts them again."""
    with system._lock:
        system._check_open()
        for unit in units:
            if getattr(unit, "failed", False) or unit.abandoned:
                raise RuntimeError(f"cannot checkpoint {unit.name}: it has {unit.status}")
        system._pause(units, what="checkpoint", grace=grace)
        try:
            sends_routed(system, units, grace)
            device_words_to_host(units)
            return take()
        finally:
            for unit in reversed(units):
                system._launch(unit)


def device_words_to_host(units: Sequence[Any]) -> None:
    """Reads what only the device holds of (paused) ``units`` into their host arrays: a pump
    (wgpu, metal) keeps K2K slots on the device, and a checkpoint reads the host arrays."""
    by_runtime: dict[int, tuple[Any, list[Any]]] = {}
    for unit in units:
        by_runtime.setdefault(id(unit.runtime), (unit.runtime, []))[1].append(unit.memory)
    for runtime, memories in by_runtime.values():
        download = getattr(runtime, "download", None)
        if download is not None:
            download(memories)


def sends_routed(system: ActorSystem, units: Sequence[Any], grace: float) -> None:
    """Waits until the router has taken every message in the ``sends`` queues of (paused)
    ``units``: a checkpoint never holds a half-done fan-out.  ``TimeoutError`` after ``grace`` s."""
    deadline = time.monotonic() + grace

    def waiting() -> list[str]:
        fence()
        out = []
        for unit in units:
            sends = unit.sends if isinstance(unit.sends, np.ndarray) else unit.sends.buffer
            rows = sends.reshape(getattr(unit, "count", 1), -1)
            if bool((rows[:, L.Q_TAIL] != rows[:, L.Q_HEAD]).any()):
                out.append(unit.name)
        return out

    while names := waiting():
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"cannot checkpoint {', '.join(names)}: the router did not deliver what they sent within "
                f"{grace} s (a receiver's routed queue stays full); nothing was written"
            )
        system.routing.wake()
        time.sleep(0.001)


def wiring(system: ActorSystem, units: Sequence[Any]) -> Wiring:
    """The ``connect`` pairs and port connections among ``units`` (paused; the router idle)."""
    chosen = {id(u) for u in units}
    links = [[u.name, u.downstream.name] for u in units
             if u.downstream is not None and id(u.downstream) in chosen]
    routing = system.routing
    owners = [(routing.members[u.id], u) for u in units if u.id in routing.members]
    router = routing.router

    def endpoint(e: int) -> tuple[Any, int | None] | None:
        for member, owner in owners:
            if member.base <= e < member.base + member.count:
                return owner, (e - member.base) if hasattr(owner, "refs") else None
        return None

    ports: list[list[Any]] = []
    for (source, number), targets in router.ports().items():
        src = endpoint(source)
        if src is None:
            continue
        names = {p.number: name for name, p in src[0].type.info.ports.items()}
        for target in targets:
            dst = endpoint(target)
            if dst is not None:
                ports.append([src[0].name, src[1], names[number], dst[0].name, dst[1]])
    return Wiring(links, ports)


def image(ref: ActorRef) -> Image:
    """``ref``'s image; its loop must be paused.  No router round runs while it is taken,
    so a message is in the image's ``sends`` or at its target, never in both."""
    routing = getattr(ref.system, "routing", None)
    no_rounds = routing.router.lock if routing is not None else nullcontext()
    fence()
    with no_rounds, ref.send_lock, ref.receive_lock:
        ctrl = {k: int(ref.ctrl[L.C[k]]) for k in CTRL_WORDS}
        backlog = [*ref.backlog, queued(ref.k2h.buffer)]
        return Image(
            actor=actor_key(ref.type),
            name=ref.name,
            fingerprint=actor_fingerprint(ref.type),
            state_fields=state_fields(ref.type),
            capacity=ref.capacity,
            policy=ref.h2k.policy,
            lanes=ref.lanes,
            sequence=ref.sequence,
            ctrl=ctrl,
            state=ref.state_words[: ref.type.info.state.words].copy(),
            inputs=queued(ref.h2k.buffer),
            outputs=np.concatenate(backlog) if backlog else np.zeros((0, ref.k2h.slot_words), np.uint32),
            routed=queued(ref.routed.buffer),
            sends=queued(ref.sends.buffer),
            k2k=queued(ref.k2k.buffer) if ref.upstream is not None else np.zeros((0, 8), np.uint32),
            routed_capacity=ref.routed.capacity,
            **_timer_sections(held_timers(ref.system, ref, ref.h2k.slot_words)),
        )


@dataclass
class HeldTimers:
    """The timers the router holds for one actor or group: per timer its instance, its message
    row and when it is due (physical µs of the HLC epoch, absolute: a restore keeps it)."""

    instances: np.ndarray  # (n,) int64, ascending; due order within an instance
    rows: np.ndarray  # (n, slot words)
    due_us: list[int]


def held_timers(system: ActorSystem, owner: Any, words: int) -> HeldTimers:
    """``owner``'s held timers (its loop paused: no new ones come), rows cut or padded to
    ``words`` (its input slots: a timer is a message to itself)."""
    routing = getattr(system, "routing", None)
    member = routing.members.get(owner.id) if routing is not None else None
    held = []
    if routing is not None and member is not None:
        held = routing.router.timers_of(member.base, member.base + member.count)
        held.sort(key=lambda timer: timer[0])  # stable: each instance's stay in due order
    rows = np.zeros((len(held), words), np.uint32)
    for k, (_, _, row) in enumerate(held):
        width = min(words, len(row))
        rows[k, :width] = row[:width]
    base = 0 if member is None else member.base
    return HeldTimers(np.array([e - base for e, _, _ in held], np.int64), rows, [due for _, due, _ in held])


def _timer_sections(held: HeldTimers) -> dict[str, np.ndarray]:
    due = np.array([[d & 0xFFFFFFFF, d >> 32] for d in held.due_us], np.uint32).reshape(-1, 2)
    return {"timers": held.rows, "timer_due": due}


def _due_us(words: np.ndarray) -> list[int]:
    return [int(lo) | int(hi) << 32 for lo, hi in words.tolist()]


# --- the file ---------------------------------------------------------------------------


def encode(images: Sequence[Image], host_hlc: int, groups: Sequence[GroupImage] = (),
           wiring: Wiring | None = None) -> bytes:
    """The checkpoint file's bytes (``docs/layout.md``, "Checkpoint file")."""
    body = bytearray()
    entries = []
    wiring = wiring or Wiring()
    for im in images:
        sections = {}
        for key in SECTIONS_V4:
            words = getattr(im, key)
            data = np.ascontiguousarray(words, dtype="<u4").tobytes()
            shape = [int(n) for n in words.shape]
            sections[key] = {"offset": len(body), "shape": shape}
            body += data
        entries.append(
            {
                "actor": im.actor,
                "name": im.name,
                "fingerprint": im.fingerprint,
                "state_fields": im.state_fields,
                "capacity": im.capacity,
                "policy": im.policy,
                "lanes": im.lanes,
                "sequence": im.sequence,
                "ctrl": im.ctrl,
                "sections": sections,
                "routed_capacity": im.routed_capacity,
            }
        )
    group_entries = [_group_entry(g, body) for g in groups]
    header = json.dumps(
        {"host_hlc": host_hlc, "instances": entries, "groups": group_entries,
         "links": wiring.links, "ports": wiring.ports}, sort_keys=True
    ).encode()
    data = PREFIX.pack(MAGIC, VERSION, len(header)) + header + bytes(body)
    return data + hashlib.sha256(data).digest()


def write(path: str | os.PathLike[str], data: bytes) -> Path:
    """Writes ``data`` to ``path`` atomically: a crash leaves the old file or the new one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if after_write is not None:
            after_write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise type(exc)(exc.errno, f"cannot write checkpoint {os.fspath(path)!r}: {exc.strerror}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return path


SECTIONS = ("state", "inputs", "outputs", "routed", "sends")  # (version 1 has the first three)
SECTIONS_V3 = (*SECTIONS, "k2k")
SECTIONS_V4 = (*SECTIONS_V3, "timers", "timer_due")
QUEUE_SECTIONS = SECTIONS_V3[1:]


def _need(condition: bool, text: str) -> None:
    if not condition:
        raise CheckpointError(text)


def _int(entry: dict[str, Any], key: str, low: int, high: int) -> int:
    value = entry.get(key)
    if type(value) is not int or not low <= value <= high:
        raise CheckpointError(f"field '{key}' is {value!r}, not an integer in {low}..{high}")
    return value


def decode(data: bytes) -> tuple[list[Image], int]:
    """The single actors' images and host clock in a checkpoint file's bytes (its groups:
    :func:`decode_all`); :class:`CheckpointError` if they are not a complete, intact checkpoint."""
    images, _, host_hlc = decode_all(data)
    return images, host_hlc


def decode_all(data: bytes) -> tuple[list[Image], list[GroupImage], int]:
    """The single actors' and the groups' images and the host clock in a checkpoint file's bytes."""
    images, groups, host_hlc, _ = decode_wired(data)
    return images, groups, host_hlc


def decode_wired(data: bytes) -> tuple[list[Image], list[GroupImage], int, Wiring]:
    """:func:`decode_all` and the connections among them (empty before version 3)."""
    _need(len(data) >= PREFIX.size + DIGEST_BYTES and data[:8] == MAGIC, "not a ringkernel checkpoint file")
    _, version, header_bytes = PREFIX.unpack_from(data)
    readable = ", ".join(map(str, READABLE[:-1])) + f" and {READABLE[-1]}"
    _need(version in READABLE,
          f"checkpoint format version {version}; this ringkernel reads versions {readable}")
    _need(
        hashlib.sha256(data[:-DIGEST_BYTES]).digest() == data[-DIGEST_BYTES:],
        "checksum mismatch: the file is truncated or corrupt",
    )
    body_at = PREFIX.size + header_bytes
    _need(body_at <= len(data) - DIGEST_BYTES, "the header runs past the end of the file")
    try:
        header = json.loads(data[PREFIX.size : body_at].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"the header is not JSON: {exc}") from None
    _need(
        isinstance(header, dict) and isinstance(header.get("instances"), list),
        "the header has no instance list",
    )
    body = data[body_at:-DIGEST_BYTES]
    host_hlc = _int(header, "host_hlc", 0, 2**64 - 1)
    entries = header.get("groups", []) if version >= 2 else []
    _need(isinstance(entries, list), "the header's groups are not a list")
    groups = [_group_image(entry, body, version) for entry in entries]
    images = [_image(entry, body, version) for entry in header["instances"]]
    names = {im.name for im in images} | {g.name for g in groups}
    wiring = _wiring(header, names) if version >= 3 else Wiring()
    return images, groups, host_hlc, wiring


def _wiring(header: dict[str, Any], names: set[str]) -> Wiring:
    links, ports = header.get("links"), header.get("ports")
    _need(isinstance(links, list) and all(_is_pair(x) and set(x) <= names for x in links),
          "field 'links' is not a list of [upstream, downstream] names of the file's actors")
    _need(isinstance(ports, list) and all(_is_port(x, names) for x in ports),
          "field 'ports' is not a list of [sender, instance, port, receiver, instance]")
    assert isinstance(links, list) and isinstance(ports, list)  # (checked just above)
    return Wiring(links, ports)


def _is_port(value: Any, names: set[str]) -> bool:
    def index(x: Any) -> bool:
        return x is None or (type(x) is int and 0 <= x < 2**24)

    return (isinstance(value, list) and len(value) == 5 and value[0] in names and value[3] in names
            and isinstance(value[2], str) and value[2].isidentifier() and index(value[1])
            and index(value[4]))


def _image(entry: Any, body: bytes, version: int = VERSION) -> Image:
    _need(isinstance(entry, dict), "an instance is not an object")
    strings = {k: entry.get(k) for k in ("actor", "name", "fingerprint", "policy")}
    for key, value in strings.items():
        _need(isinstance(value, str), f"field '{key}' is {value!r}, not a string")
    fields = entry.get("state_fields")
    pairs = isinstance(fields, list) and all(_is_pair(f) for f in fields)
    _need(pairs, "field 'state_fields' is not a list of [name, type]")
    ctrl = entry.get("ctrl")
    _need(
        isinstance(ctrl, dict) and set(ctrl) == set(CTRL_WORDS),
        "field 'ctrl' does not hold the control words",
    )
    capacity = _int(entry, "capacity", 2, 2**24)
    _need(capacity & (capacity - 1) == 0, f"capacity {capacity} is not a power of two")
    sections = entry.get("sections")
    _need(isinstance(sections, dict), "field 'sections' is missing")
    keys = (SECTIONS_V4 if version >= 4 else SECTIONS_V3 if version >= 3 else SECTIONS if version >= 2
            else SECTIONS[:3])
    arrays = {key: _section(sections, key, body) for key in keys}
    _need(arrays["state"].ndim == 1, "the state section is not a word vector")
    if version >= 4:
        _check_timers(arrays["timers"], arrays["timer_due"], "the")
    for key in QUEUE_SECTIONS[: len(keys) - 1]:
        rows = arrays[key]
        _need(
            rows.ndim == 2 and len(rows) <= capacity, f"the {key} section does not fit a queue of {capacity}"
        )
    return Image(
        actor=strings["actor"],
        name=strings["name"],
        fingerprint=strings["fingerprint"],
        state_fields=fields,
        capacity=capacity,
        policy=strings["policy"],
        lanes=_int(entry, "lanes", 1, 1024),
        sequence=_int(entry, "sequence", 0, 2**32 - 1),
        ctrl={k: _int(ctrl, k, 0, 2**32 - 1) for k in CTRL_WORDS},
        routed_capacity=_routed_capacity(entry, capacity) if version >= 3 else 2,
        **arrays,
    )


def _check_timers(rows: np.ndarray, due: np.ndarray, whose: str) -> None:
    _need(rows.ndim == 2 and rows.shape[1] > L.ENV_HLC_HI, f"{whose} timers section is not a slot per timer")
    _need(due.shape == (len(rows), 2), f"{whose} timer_due section does not hold (low, high) words per timer")


def _routed_capacity(entry: dict[str, Any], capacity: int) -> int:
    """A routed queue is the 2-slot stub or as large as the actor's other queues."""
    value = _int(entry, "routed_capacity", 2, capacity)
    _need(value in (2, capacity), f"routed_capacity {value} is neither 2 nor the capacity {capacity}")
    return value


def _is_pair(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(s, str) for s in value)


def _section(sections: dict[str, Any], key: str, body: bytes) -> np.ndarray:
    entry = sections.get(key)
    if not isinstance(entry, dict):
        raise CheckpointError(f"section '{key}' is missing")
    offset = _int(entry, "offset", 0, len(body))
    shape = entry.get("shape")
    if not isinstance(shape, list) or not 1 <= len(shape) <= 2:
        raise CheckpointError(f"section '{key}' has a bad shape {shape!r}")
    _need(
        all(type(n) is int and 0 <= n <= 2**26 for n in shape), f"section '{key}' has a bad shape {shape!r}"
    )
    words = math.prod(shape)
    _need(offset + 4 * words <= len(body), f"section '{key}' runs past the end of the file")
    return np.frombuffer(body, dtype="<u4", count=words, offset=offset).astype(np.uint32).reshape(shape)


def read(path: str | os.PathLike[str]) -> tuple[list[Image], int]:
    """The single actors' images in the checkpoint file at ``path``."""
    images, _, host_hlc = read_all(path)
    return images, host_hlc


def read_all(path: str | os.PathLike[str]) -> tuple[list[Image], list[GroupImage], int]:
    """The single actors' and the groups' images in the checkpoint file at ``path``."""
    images, groups, host_hlc, _ = read_wired(path)
    return images, groups, host_hlc


def read_wired(path: str | os.PathLike[str]) -> tuple[list[Image], list[GroupImage], int, Wiring]:
    """:func:`read_all` and the connections among the file's actors."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {os.fspath(path)!r}: {exc.strerror}") from None
    try:
        return decode_wired(data)
    except CheckpointError as exc:
        raise CheckpointError(f"{os.fspath(path)}: {exc}") from None


# --- restoring --------------------------------------------------------------------------


def resolve(im: Image, types: Sequence[ActorType] | Mapping[str, ActorType]) -> ActorType:
    """The actor class to restore ``im`` as: ``types[name]`` of a mapping (its class's
    ``module:qualname`` or qualname in the file: a renamed or changed class), the one of
    ``types`` with its qualname, or the class itself if its module is already imported
    (a checkpoint never makes Python import a module)."""
    from ringkernel.actors import ActorType

    module, _, qualname = im.actor.partition(":")
    chosen: Any
    if isinstance(types, Mapping):
        chosen = types.get(im.actor, types.get(qualname))
    else:
        chosen = next((t for t in types if t.__qualname__ == qualname), None)
    if chosen is None:
        chosen = sys.modules.get(module)
        for part in qualname.split(".") if chosen is not None else []:
            chosen = getattr(chosen, part, None)
    if isinstance(chosen, ActorType):
        return chosen
    raise CheckpointError(
        f"the checkpoint holds {im.name} of actor class {im.actor!r}, which is not imported: "
        "import its module first or pass restore(..., types=[TheActor])"
    )


def check_compatible(im: Image, actor_type: ActorType) -> None:
    """Raises unless ``actor_type`` can take over ``im``: the same compiled actor, or the
    same state fields (names and types, in order) and handlers for every queued message."""
    if actor_fingerprint(actor_type) == im.fingerprint:
        pass
    elif state_fields(actor_type) != im.state_fields:
        have = ", ".join(f"{n}: {t}" for n, t in im.state_fields)
        want = ", ".join(f"{n}: {t}" for n, t in state_fields(actor_type))
        raise CheckpointError(
            f"{im.name}: actor class {actor_type.__name__} changed its state layout since the checkpoint "
            f"(checkpoint: {{{have}}}, now: {{{want}}}); a restore needs the same fields and types in order"
        )
    info = actor_type.info
    accepted = {h.message.type_id: h.message for h in info.handlers.values()}
    replies = {m.type_id for h in info.handlers.values() for m in h.replies} | {L.ABORT_TYPE_ID}
    _need(
        len(im.state) == info.state.words,
        f"{im.name}: the state section has {len(im.state)} words, "
        f"{actor_type.__name__} has {info.state.words}",
    )
    sendable = {m.type_id for m in info.sendable}
    for rows, known, what in ((im.inputs, accepted, "queued message"), (im.outputs, replies, "reply"),
                              (im.routed, accepted, "routed message"), (im.sends, sendable, "sent message"),
                              (im.k2k, accepted, "connected message"), (im.timers, accepted, "timer")):
        for type_id in set(rows[:, L.ENV_TYPE_ID].tolist()) if rows.shape[1] > L.ENV_TYPE_ID else ():
            _need(
                type_id in known,
                f"{im.name}: a {what} of type id {type_id:#010x} is not one "
                f"{actor_type.__name__} {VERBS.get(what, 'handles')}",
            )
    widest = max(m.slot_words for m in accepted.values())
    for rows, limit, what in ((im.inputs, widest, "queued messages"), (im.routed, widest, "routed messages"),
                              (im.sends, info.send_slot_words, "sent messages"),
                              (im.k2k, widest, "connected messages"), (im.timers, widest, "timers")):
        _need(
            not len(rows) or rows.shape[1] <= limit,
            f"{im.name}: {what} have {rows.shape[1]}-word slots, wider than {actor_type.__name__}'s {limit}",
        )


VERBS = {"reply": "replies with", "sent message": "sends"}


def check_wiring(wiring: Wiring, images: Sequence[Image], types: Sequence[ActorType],
                 group_images: Sequence[GroupImage], group_types: Sequence[ActorType]) -> None:
    """Raises :class:`CheckpointError` unless the file's connections can be made again between
    the classes it restores as (before anything is spawned)."""
    from ringkernel.actors import check_connectable

    singles = {im.name: (t, 1) for im, t in zip(images, types, strict=True)}
    wholes = {g.name: (t, g.count) for g, t in zip(group_images, group_types, strict=True)}
    counts = {**singles, **wholes}
    for up, down in wiring.links:
        pair = (up in singles and down in singles) or (up in wholes and down in wholes
                                                       and wholes[up][1] == wholes[down][1])
        _need(pair and up != down,
              f"link {up} -> {down}: connect() pairs are two single actors, or two groups of one size, "
              "of the file")
        try:
            check_connectable(up, counts[up][0], down, counts[down][0])
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"link {up} -> {down}: {exc}") from None
    _need(len({d for _, d in wiring.links}) == len(wiring.links), "an actor receives two links")
    linked = {d for _, d in wiring.links}
    for im in images:  # K2K messages of an actor saved without its upstream go to its input queue
        _need(im.name in linked or len(im.inputs) + len(im.k2k) <= im.capacity,
              f"{im.name}: {len(im.k2k)} connected messages do not fit its input queue")
    for g in group_images:
        _need(g.name in linked or not len(g.k2k), f"{g.name}: connected messages but no link to it")
    _need(len({u for u, _ in wiring.links}) == len(wiring.links), "an actor sends on two links")
    for src, i, port, dst, j in wiring.ports:
        (src_type, src_count), (dst_type, dst_count) = counts[src], counts[dst]
        declared = src_type.info.ports.get(port)
        _need(declared is not None, f"{src}: {src_type.__name__} has no port {port!r}")
        _need(src_type.ports[port] in dst_type.handlers,
              f"{src}.{port} -> {dst}: {dst_type.__name__} does not handle what the port sends")
        for index, count, name in ((i, src_count, src), (j, dst_count, dst)):
            _need(index is None if count == 1 and name in singles else index is not None and index < count,
                  f"port {src}.{port} -> {dst}: instance {index} of {name}")


def rewire(system: ActorSystem, wiring: Wiring, units: Mapping[str, Any], images: Mapping[str, Image],
           wire: Callable[[Any, Any, int], None],
           group_images: Mapping[str, GroupImage] | None = None) -> None:
    """Makes a restore's connections again (its loops do not run yet): each ``connect`` pair
    with the messages its K2K queue held, then each port target in fan-out order."""
    from ringkernel import groups
    from ringkernel.actors import check_connectable

    for up, down in wiring.links:
        a, b = units[up], units[down]
        slot_words = check_connectable(a.name, a.type, b.name, b.type)
        if hasattr(b, "refs"):  # two groups, instance by instance
            g = (group_images or {})[down]
            queues = groups._queues(b.runtime, b.count, b.capacity, slot_words,
                                    f"the queues from {a.name} to {b.name}")
            _refill(queues.reshape(b.count, -1), g.k2k_counts, g.k2k, g.k2k_counts.astype(np.int64),
                    b.capacity, slot_words)
            groups.join(a, b, queues, slot_words)
            system.admitted_bytes += queues.size * L.WORD
            continue
        wire(a, b, slot_words)
        held = images[down].k2k
        if len(held):
            b.k2k.try_push_many(_rows(held, b.k2k.slot_words))
    downstream = {d for _, d in wiring.links}
    for name, im in images.items():
        if name not in downstream and len(im.k2k):  # (saved alone: its upstream is not in the file)
            ref = units[name]
            ref.h2k.try_push_many(_rows(im.k2k, ref.h2k.slot_words))
    routing = system.routing
    for src, i, port, dst, j in wiring.ports:
        a, b = units[src], units[dst]
        number = a.type.info.ports[port].number
        routing.router.connect(routing.member(a), number, routing.member(b), i, j)


def rearm(system: ActorSystem, units: Mapping[str, Any], images: Sequence[Image],
          group_images: Sequence[GroupImage]) -> None:
    """Hands the router a restore's held timers again (their loops do not run yet), due at
    the absolute times the file holds: one already due goes at the router's next round."""
    held = [(im.name, np.zeros(len(im.timers), np.int64), im.timers, im.timer_due) for im in images]
    held += [(g.name, np.repeat(np.arange(g.count), g.timer_counts.astype(np.int64)), g.timers, g.timer_due)
             for g in group_images]
    for name, instances, rows, due in held:
        if len(rows):
            member = system.routing.member(units[name])
            for instance, row, due_us in zip(instances.tolist(), rows, _due_us(due), strict=True):
                system.routing.router.add_timer(member.base + instance, due_us, row.copy())


def _rows(rows: np.ndarray, slot_words: int) -> np.ndarray:
    """``rows`` in slots of ``slot_words`` words (a wider slot's payload fits: it was checked)."""
    out = np.zeros((len(rows), slot_words), np.uint32)
    width = min(slot_words, rows.shape[1])
    out[:, :width] = rows[:, :width]
    return out


def prepare(im: Image) -> Callable[[ActorRef], None]:
    """What a restore does to a spawned actor before its loop starts."""

    def fill(ref: ActorRef) -> None:
        ref.state_words[: len(im.state)] = im.state
        ref.initial_state[:] = ref.state_words
        for key, value in im.ctrl.items():
            ref.ctrl[L.C[key]] = value
        ref.sequence = im.sequence
        if len(im.inputs):
            rows = np.zeros((len(im.inputs), ref.h2k.slot_words), np.uint32)
            width = min(ref.h2k.slot_words, im.inputs.shape[1])
            rows[:, :width] = im.inputs[:, :width]
            ref.h2k.try_push_many(rows)
        if len(im.outputs):
            rows = np.zeros((len(im.outputs), ref.k2h.slot_words), np.uint32)
            width = min(ref.k2h.slot_words, im.outputs.shape[1])
            rows[:, :width] = im.outputs[:, :width]
            ref.backlog.append(rows)
        stub = len(im.routed) > ref.routed.capacity or im.routed_capacity > ref.routed.capacity
        if stub:  # the router had connected a port to it: full size, so a restored port needs no pause
            ref.make_routed(im.capacity)
        if len(im.routed):
            ref.routed.try_push_many(_rows(im.routed, ref.routed.slot_words))
        if len(im.sends):
            ref.sends.try_push_many(_rows(im.sends, ref.sends.slot_words))

    return fill


# --- actor groups (format version 2) ----------------------------------------------------

GROUP_SECTIONS = ("sequences", "ctrl", "state", "input_counts", "inputs", "output_counts", "outputs")
GROUP_SECTIONS_V3 = (*GROUP_SECTIONS, "routed_counts", "routed")
GROUP_SECTIONS_V4 = (*GROUP_SECTIONS_V3, "timer_counts", "timers", "timer_due", "k2k_counts", "k2k")


@dataclass
class GroupImage:
    """A whole actor group as a checkpoint holds it: every instance's rows stacked."""

    actor: str
    name: str
    fingerprint: str
    state_fields: list[list[str]]
    count: int
    capacity: int
    policy: str
    lanes: int
    priority: int
    sequences: np.ndarray  # (count,) each instance's send counter (its input queue's tail)
    ctrl: np.ndarray  # (count, len(CTRL_WORDS)) the control words of CTRL_WORDS, in that order
    state: np.ndarray  # (count, state words)
    input_counts: np.ndarray  # (count,) queued input slots per instance
    inputs: np.ndarray  # (sum of input_counts, slot_words): instance 0's oldest first, then 1's ...
    output_counts: np.ndarray  # (count,) unreceived replies per instance
    outputs: np.ndarray  # (sum of output_counts, slot_words), ordered as inputs
    # (version 3) messages the router delivered that the instances have not taken, ordered as
    # inputs, and the routed queues' capacity (2, or the capacity once a port feeds the group)
    routed_counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint32))
    routed: np.ndarray = field(default_factory=lambda: np.zeros((0, 8), np.uint32))
    routed_capacity: int = 2
    # (version 4) held `self.schedule` timers per instance, then their rows and due times ordered
    # as inputs (each instance's in due order; see Image)
    timer_counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint32))
    timers: np.ndarray = field(default_factory=lambda: np.zeros((0, 8), np.uint32))
    timer_due: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.uint32))
    # (version 4) messages in the K2K queues from the group connect() joined to it, per instance
    # then stacked as inputs (empty without such an upstream)
    k2k_counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint32))
    k2k: np.ndarray = field(default_factory=lambda: np.zeros((0, 8), np.uint32))

    def as_image(self) -> Image:
        """One :class:`Image` standing for every instance, for :func:`check_compatible`."""
        ctrl = dict(zip(CTRL_WORDS, (int(v) for v in self.ctrl[0]), strict=True))
        return Image(self.actor, self.name, self.fingerprint, self.state_fields, self.capacity,
                     self.policy, self.lanes, int(self.sequences[0]), ctrl, self.state[0],
                     self.inputs, self.outputs, timers=self.timers, timer_due=self.timer_due, k2k=self.k2k)


def group_image(group: Any) -> GroupImage:
    """``group``'s image; its turns must be paused.  Instances addressed as ``group[i]``
    contribute their send counters and host backlogs too."""
    fence()
    count, info = group.count, group.type.info
    rows = group.sends.reshape(count, -1)
    _need(  # (a checkpoint waits for the router to take them: sends_routed)
        bool((rows[:, L.Q_TAIL] == rows[:, L.Q_HEAD]).all()),
        f"group {group.name} holds messages in its sends queues the router has not taken",
    )
    held = held_timers(group.system, group, group.in_words)
    k2k_counts = np.zeros(count, np.uint32)
    k2k_rows = []
    if group.upstream is not None:
        k2k_q = group.k2k.reshape(count, -1)
        for i in np.flatnonzero(k2k_q[:, L.Q_TAIL] != k2k_q[:, L.Q_HEAD]).tolist():
            k2k_rows.append((i, queued(k2k_q[i])))
            k2k_counts[i] = len(k2k_rows[-1][1])
    routed_q = group.routed.reshape(count, -1)
    routed_counts = np.zeros(count, np.uint32)
    routed_rows = []
    for i in np.flatnonzero(routed_q[:, L.Q_TAIL] != routed_q[:, L.Q_HEAD]).tolist():
        routed_rows.append((i, queued(routed_q[i])))
        routed_counts[i] = len(routed_rows[-1][1])
    blocks = group.ctrl.reshape(count, L.CONTROL_WORDS)
    h2k, k2h = group.h2k.reshape(count, -1), group.k2h.reshape(count, -1)
    with group._lock:
        refs = dict(group._refs)
        sequences = h2k[:, L.Q_TAIL].copy()
        inputs, outputs = [], []
        in_counts, out_counts = np.zeros(count, np.uint32), np.zeros(count, np.uint32)
        busy_in = np.flatnonzero(h2k[:, L.Q_TAIL] != h2k[:, L.Q_HEAD])
        busy_out = set(np.flatnonzero(k2h[:, L.Q_TAIL] != k2h[:, L.Q_HEAD]).tolist()) | set(refs)
        for i in busy_in.tolist():
            rows = queued(h2k[i])
            in_counts[i] = len(rows)
            inputs.append((i, rows))
        for i in sorted(busy_out):
            ref = refs.get(i)
            if ref is None:
                rows = queued(k2h[i])
            else:
                with ref.send_lock, ref.receive_lock:
                    sequences[i] = ref.sequence
                    parts = [*ref.backlog, queued(k2h[i])]
                    rows = np.concatenate(parts)
            out_counts[i] = len(rows)
            outputs.append((i, rows))
    return GroupImage(
        actor=actor_key(group.type), name=group.name, fingerprint=actor_fingerprint(group.type),
        state_fields=state_fields(group.type), count=count, capacity=group.capacity,
        policy=group.policy, lanes=group.lanes, priority=group.priority, sequences=sequences,
        ctrl=blocks[:, [L.C[k] for k in CTRL_WORDS]].copy(),
        state=group.state_words.reshape(count, group.state_stride)[:, : info.state.words].copy(),
        input_counts=in_counts, inputs=_stack(inputs, group.in_words),
        output_counts=out_counts, outputs=_stack(outputs, group.out_words),
        routed_counts=routed_counts,
        routed=_stack(routed_rows, group.in_words), routed_capacity=group.routed_shape[0],
        timer_counts=np.bincount(held.instances, minlength=count).astype(np.uint32),
        **_timer_sections(held),
        k2k_counts=k2k_counts, k2k=_stack(k2k_rows, group.k2k_shape[1]),
    )


def _stack(parts: list[tuple[int, np.ndarray]], words: int) -> np.ndarray:
    rows = [r for _, r in parts if len(r)]
    return np.concatenate(rows) if rows else np.zeros((0, words), np.uint32)


def _group_entry(g: GroupImage, body: bytearray) -> dict[str, Any]:
    """``g``'s header entry; its sections are appended to ``body``."""
    sections = {}
    for key in GROUP_SECTIONS_V4:
        words = getattr(g, key)
        sections[key] = {"offset": len(body), "shape": [int(n) for n in words.shape]}
        body += np.ascontiguousarray(words, dtype="<u4").tobytes()
    return {
        "actor": g.actor, "name": g.name, "fingerprint": g.fingerprint, "state_fields": g.state_fields,
        "count": g.count, "capacity": g.capacity, "policy": g.policy, "lanes": g.lanes,
        "priority": g.priority, "sections": sections, "routed_capacity": g.routed_capacity,
    }


def _group_image(entry: Any, body: bytes, version: int = VERSION) -> GroupImage:
    _need(isinstance(entry, dict), "a group is not an object")
    strings = {k: entry.get(k) for k in ("actor", "name", "fingerprint", "policy")}
    for key, value in strings.items():
        _need(isinstance(value, str), f"group field '{key}' is {value!r}, not a string")
    fields = entry.get("state_fields")
    _need(isinstance(fields, list) and all(_is_pair(f) for f in fields),
          "group field 'state_fields' is not a list of [name, type]")
    count = _int(entry, "count", 1, 2**24)
    capacity = _int(entry, "capacity", 2, 2**24)
    _need(capacity & (capacity - 1) == 0, f"capacity {capacity} is not a power of two")
    priority = entry.get("priority")
    in_range = type(priority) is int and -(2**31) <= priority < 2**31
    _need(in_range, f"group priority {priority!r} is not an i32")
    sections = entry.get("sections")
    _need(isinstance(sections, dict), "group field 'sections' is missing")
    keys = GROUP_SECTIONS_V4 if version >= 4 else GROUP_SECTIONS_V3 if version >= 3 else GROUP_SECTIONS
    arrays = {key: _section(sections, key, body) for key in keys}
    if version < 4:
        arrays["timer_counts"] = arrays["k2k_counts"] = np.zeros(count, np.uint32)
    else:
        _check_timers(arrays["timers"], arrays["timer_due"], "the group's")
    if version < 3:
        arrays["routed_counts"] = np.zeros(count, np.uint32)
        arrays["routed"] = np.zeros((0, arrays["inputs"].shape[1] if arrays["inputs"].ndim == 2 else 8),
                                    np.uint32)
    for key in ("sequences", "input_counts", "output_counts", "routed_counts", "timer_counts", "k2k_counts"):
        _need(arrays[key].shape == (count,), f"the group's {key} section does not hold {count} words")
    _need(arrays["ctrl"].shape == (count, len(CTRL_WORDS)), "the group's ctrl section has the wrong shape")
    rows_each = arrays["state"].ndim == 2 and len(arrays["state"]) == count
    _need(rows_each, "the group's state section is not a row per instance")
    fit = bool((arrays["input_counts"] <= capacity).all())
    _need(fit, f"the group's inputs do not fit queues of {capacity}")
    routed_capacity = _routed_capacity(entry, capacity) if version >= 3 else 2
    fit = bool((arrays["routed_counts"] <= routed_capacity).all())
    _need(fit, f"the group's routed messages do not fit queues of {routed_capacity}")
    fit = bool((arrays["k2k_counts"] <= capacity).all())
    _need(fit, f"the group's K2K messages do not fit queues of {capacity}")
    counted = (("inputs", "input_counts"), ("outputs", "output_counts"), ("routed", "routed_counts"),
               *([("timers", "timer_counts"), ("k2k", "k2k_counts")] if version >= 4 else []))
    for key, counts_key in counted:
        rows, counts = arrays[key], arrays[counts_key]
        _need(rows.ndim == 2 and len(rows) == int(counts.astype(np.int64).sum()),
              f"the group's {key} section does not match its counts")
    return GroupImage(
        actor=strings["actor"], name=strings["name"], fingerprint=strings["fingerprint"],
        state_fields=fields, count=count, capacity=capacity, policy=strings["policy"],
        lanes=_int(entry, "lanes", 1, 1024), priority=priority,
        routed_capacity=routed_capacity, **arrays,
    )


def prepare_group(g: GroupImage) -> Callable[[Any], None]:
    """What a restore does to a spawned group before its turns start: state, control words,
    each instance's queued messages (its queue ending at its send counter, so sequence numbers
    go on where they were) and unreceived replies (past a queue's capacity: the host backlog)."""

    def fill(group: Any) -> None:
        count = group.count
        if g.routed_capacity > group.routed_shape[0]:  # a port fed it: full size, as connect made it
            group.make_routed(g.routed_capacity)
        routed_tails = g.routed_counts.astype(np.int64)
        _refill(group.routed.reshape(count, -1), g.routed_counts, g.routed, routed_tails,
                group.routed_shape[0], group.in_words)
        blocks = group.ctrl.reshape(count, L.CONTROL_WORDS)
        blocks[:, [L.C[k] for k in CTRL_WORDS]] = g.ctrl
        group.state_words.reshape(count, group.state_stride)[:, : g.state.shape[1]] = g.state
        group.initial_state[:] = group.state_words
        seq = g.sequences.astype(np.int64)
        _refill(group.h2k.reshape(count, -1), g.input_counts, g.inputs, seq, group.capacity, group.in_words)
        fits = g.output_counts <= group.capacity
        kept = np.where(fits, g.output_counts, 0)
        mask = np.repeat(fits, g.output_counts)
        _refill(group.k2h.reshape(count, -1), kept, g.outputs[mask], kept.astype(np.int64),
                group.capacity, group.out_words)
        starts = np.cumsum(g.output_counts.astype(np.int64)) - g.output_counts
        for i in np.flatnonzero(~fits).tolist():
            rows = _widen(g.outputs[starts[i] : starts[i] + int(g.output_counts[i])], group.out_words)
            group[i].backlog.append(rows)

    return fill


def _widen(rows: np.ndarray, words: int) -> np.ndarray:
    out = np.zeros((len(rows), words), np.uint32)
    width = min(words, rows.shape[1]) if rows.ndim == 2 else 0
    out[:, :width] = rows[:, :width]
    return out


def _refill(queues: np.ndarray, counts: np.ndarray, rows: np.ndarray, tails: np.ndarray, capacity: int,
            words: int) -> None:
    """Queue i holds its ``counts[i]`` rows (in order) ending at ``tails[i]``."""
    counts = counts.astype(np.int64)
    heads = (tails - counts) & 0xFFFFFFFF
    inst = np.repeat(np.arange(len(counts)), counts)
    k = np.arange(len(inst)) - np.repeat(np.cumsum(counts) - counts, counts)
    at = L.QUEUE_HEADER_WORDS + ((heads[inst] + k) & (capacity - 1)) * words
    queues[inst[:, None], at[:, None] + np.arange(words)] = _widen(rows, words)
    queues[:, L.Q_HEAD] = heads.astype(np.uint32)
    queues[:, L.Q_TAIL] = (tails & 0xFFFFFFFF).astype(np.uint32)
    queues[:, L.Q_ENQUEUED] = counts.astype(np.uint32)


# --- periodic checkpoints ---------------------------------------------------------------


def checkpoints(directory: str | os.PathLike[str], name: str) -> list[Path]:
    """The complete checkpoint files of actor ``name`` in ``directory``, oldest first."""
    stem = file_stem(name)
    found = Path(directory).glob(f"{glob.escape(stem)}-*{SUFFIX}")
    return sorted(p for p in found if p.name[len(stem) + 1 : -len(SUFFIX)].isdigit())


def file_stem(name: str) -> str:
    """The file name prefix of actor ``name`` (``Counter#1`` -> ``Counter-1``; a group's
    ``Counter[4]#1`` -> ``Counter-4-1``: no glob pattern characters)."""
    return name.replace("#", "-").replace("[", "-").replace("]", "")


def _number(path: Path, name: str) -> int:
    return int(path.name[len(file_stem(name)) + 1 : -len(SUFFIX)])


@dataclass
class Schedule:
    """One actor's periodic checkpoints: every ``every`` s into ``directory``, the last ``keep`` kept."""

    ref: Any  # an ActorRef, or an ActorGroup (``group``: the whole group in one file)
    every: float
    directory: Path
    keep: int
    due: float = 0.0
    taken: int = 0
    group: bool = False


class Checkpointer:
    """A thread per system that takes the periodic checkpoints until :meth:`close`."""

    def __init__(self, system: ActorSystem) -> None:
        self.system = system
        self.schedules: list[Schedule] = []
        self.closing = threading.Event()
        self.errors: list[BaseException] = []  # the last failures, for the operator
        self.thread = threading.Thread(target=self._run, name="ringkernel-checkpoints", daemon=True)
        self.thread.start()

    def add(self, schedule: Schedule) -> None:
        """Starts ``schedule``; its files number on from those already in its directory."""
        schedule.due = time.monotonic() + schedule.every
        existing = checkpoints(schedule.directory, schedule.ref.name)
        schedule.taken = _number(existing[-1], schedule.ref.name) if existing else 0
        self.schedules.append(schedule)

    def close(self) -> None:
        self.closing.set()
        if self.thread is not threading.current_thread():
            self.thread.join(5.0)

    def _run(self) -> None:
        while not self.closing.wait(self._pause()):
            now = time.monotonic()
            for schedule in [s for s in self.schedules if s.due <= now]:
                schedule.due = now + schedule.every
                try:
                    self.take(schedule)
                except Exception as exc:  # a full disk must not stop the actor; it is reported
                    self.errors = [*self.errors[-9:], exc]

    def _pause(self) -> float:
        """Seconds until the next checkpoint is due (at most ``LOOK_EVERY``: a new schedule may come)."""
        due = min((s.due for s in list(self.schedules)), default=math.inf)
        return max(0.0, min(due - time.monotonic(), LOOK_EVERY))

    def take(self, schedule: Schedule) -> Path | None:
        """One checkpoint of the schedule's actor, then the old ones past ``keep`` go."""
        ref, system = schedule.ref, self.system
        if not system._lock.acquire(timeout=0.1):
            return None
        try:
            flags = ("failed", "restarting", "abandoned", "hung")  # (a group has only `abandoned`)
            if system.closed or any(getattr(ref, flag, False) for flag in flags):
                return None
            schedule.taken += 1
            path = schedule.directory / f"{file_stem(ref.name)}-{schedule.taken:08d}{SUFFIX}"
            grace = min(system.drain_timeout, PERIODIC_GRACE)  # the watchdog waits for the lock meanwhile
            if schedule.group:
                whole = paused(system, ref, lambda: group_image(ref), grace)
                write(path, encode([], system.hlc.last, [whole]))
                ref.checkpointed_state = whole.state
            else:
                taken = paused(system, ref, lambda: image(ref), grace)
                write(path, encode([taken], system.hlc.last))
                ref.checkpointed_state = taken.state
        finally:
            system._lock.release()
        for old in checkpoints(schedule.directory, ref.name)[: -schedule.keep]:
            old.unlink(missing_ok=True)
        return path


__all__ = ["CheckpointError", "Image", "Checkpointer", "Schedule", "checkpoints", "read", "decode", "encode"]
