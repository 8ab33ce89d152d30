"""The one description of actor memory: envelope, queue header, control block, payloads.

``docs/layout.md`` is the normative prose; this module is its executable form.
The host (numpy dtypes, word indices) and the actor-lowering pass (word
offsets baked into RingIR) both read these tables, so they cannot drift.

All actor memory is little-endian 32-bit words: queues, control blocks and
actor state are ``uint32`` arrays.  64-bit quantities (the HLC, 64-bit
fields) take two words, low word first, 8-byte aligned.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from ringkernel.ringir.types import BOOL, U32, U64, ScalarType, StructType

WORD = 4

# --- message envelope -------------------------------------------------------------------

# (name, type, word offset) -- 24 bytes, then the payload
ENVELOPE = (
    ("type_id", U32, 0),
    ("source", U32, 1),
    ("target", U32, 2),
    ("sequence", U32, 3),
    ("hlc", U64, 4),  # words 4 (low) and 5 (high)
)
ENVELOPE_WORDS = 6
ENV_TYPE_ID, ENV_SOURCE, ENV_TARGET, ENV_SEQUENCE, ENV_HLC_LO, ENV_HLC_HI = 0, 1, 2, 3, 4, 5
MIN_SLOT_BYTES = 32

# --- queue ------------------------------------------------------------------------------

# Consumer-owned words come first, producer-owned words start a new 64-byte line.
QUEUE_HEADER = (
    ("head", 0),  # consumer: messages taken so far (mod 2**32)
    ("capacity", 1),  # slots, a power of two (written once, before use)
    ("mask", 2),  # capacity - 1
    ("slot_words", 3),  # words per slot, a power of two
    ("dequeued", 4),  # consumer: messages taken (statistics)
    ("drops_done", 5),  # consumer: drop-oldest requests honoured
    ("parked", 6),  # consumer loop: 1 while it is about to park or parked on ``bell``
    ("tail", 16),  # producer: messages published so far (mod 2**32)
    ("enqueued", 17),  # producer: messages published (statistics)
    ("rejected", 18),  # producer: sends refused because the queue was full
    ("dropped", 19),  # messages discarded by the drop-oldest policy
    ("drop_requests", 20),  # producer: drop-oldest requests made
    ("bell", 21),  # producer or host (atomic +1): wakes the consumer loop parked on it
    # --- a `sends` queue only (the producer is the actor's loop: docs/layout.md, "Sends") ---
    ("bad_target", 22),  # producer: send_to(i, ...) calls whose i was outside the group
    ("sent", 23),  # producer (atomic or), instance 0's header: 1 once a handler published sends
    ("staged", 24),  # producer: slots the running handler reserved (atomic add), from `tail` on
    ("room", 25),  # producer: free slots when the running handler started (staging stops there)
    ("send_hlc_lo", 26),  # producer: the actor's clock when the running handler started (u64)
    ("send_hlc_hi", 27),
    ("source", 28),  # producer: the actor's id (the `source` of its sends)
    ("index", 29),  # producer: the instance's index in its group (0 for a single actor)
    ("group_size", 30),  # producer: instances in its group (1 for a single actor)
    ("direct", 31),  # producer: sends the loop delivered straight into the target's `routed`
)
QUEUE_HEADER_WORDS = 32
Q = {name: index for name, index in QUEUE_HEADER}
Q_HEAD, Q_CAPACITY, Q_MASK, Q_SLOT_WORDS = Q["head"], Q["capacity"], Q["mask"], Q["slot_words"]
Q_DEQUEUED, Q_DROPS_DONE, Q_TAIL, Q_ENQUEUED = Q["dequeued"], Q["drops_done"], Q["tail"], Q["enqueued"]
Q_REJECTED, Q_DROPPED, Q_DROP_REQUESTS = Q["rejected"], Q["dropped"], Q["drop_requests"]
Q_PARKED, Q_BELL = Q["parked"], Q["bell"]
Q_BAD_TARGET, Q_SENT, Q_STAGED, Q_ROOM = Q["bad_target"], Q["sent"], Q["staged"], Q["room"]
Q_SEND_HLC_LO, Q_SEND_HLC_HI = Q["send_hlc_lo"], Q["send_hlc_hi"]
Q_SOURCE, Q_INDEX, Q_GROUP_SIZE = Q["source"], Q["index"], Q["group_size"]
Q_DIRECT = Q["direct"]

# --- sends (docs/layout.md, "Sends"): the `target` word of a message on a `sends` queue ---
TARGET_KIND_SHIFT = 24
TARGET_INDEX_MASK = (1 << TARGET_KIND_SHIFT) - 1
# kinds: a port (index: its number), send_to (index: the instance), schedule (to itself);
# DELIVERED marks a send the loop already delivered directly (the router frees it, counts nothing)
SEND_DELIVERED, SEND_PORT, SEND_TO, SEND_TIMER = 0, 1, 2, 3
MAX_TIMER_DELAY_US = 0xFFFFFFFF  # a timer's delay travels in `sequence`: schedule clamps to ~71 minutes
MAX_PORTS = TARGET_INDEX_MASK + 1
MAX_GROUP_SIZE = TARGET_INDEX_MASK + 1  # send_to's index travels in the 24 low bits of `target`


def send_target(kind: int, index: int) -> int:
    """The `target` word of a send: ``kind << 24 | index``."""
    return kind << TARGET_KIND_SHIFT | index & TARGET_INDEX_MASK


def split_target(word: int) -> tuple[int, int]:
    """(kind, index) of a send's `target` word."""
    return word >> TARGET_KIND_SHIFT, word & TARGET_INDEX_MASK

# --- control block ----------------------------------------------------------------------

CONTROL = (
    ("state", 0),  # ACTOR_CREATED / ACTOR_RUNNING / ACTOR_EXITED, written by the kernel
    ("stop", 1),  # host: 1 = leave the loop now (STOP_WATCHDOG: and abort the handler as hung)
    ("drain", 2),  # host: 1 = leave once every input queue is empty
    ("errors", 3),  # kernel: messages with a type id no handler takes
    ("heartbeat", 4),  # kernel: +1 per loop iteration
    ("processed", 5),  # kernel: messages handled
    ("hlc_lo", 6),  # kernel: the actor's hybrid logical clock (u64, words 6-7)
    ("hlc_hi", 7),
    ("now_lo", 8),  # host: wall clock as an HLC value, for targets without a clock
    ("now_hi", 9),
    ("actor_id", 10),  # host: this actor's id (envelope source of its replies)
    ("out_target", 11),  # host: id of the actor (or 0 = host) its replies go to
    ("sequence", 12),  # kernel: replies sent
    ("last_bad_type", 13),  # kernel: type id of the last rejected message
    ("batch", 14),  # host: messages per dispatch (non-persistent targets)
    ("idle_ns", 15),  # host: backoff sleep when idle, in nanoseconds
    ("clock_refused", 16),  # kernel: messages whose HLC stamp was too far ahead to merge
    ("progress", 17),  # kernel, block 0 of a group: non-zero once a turn handled or dropped a message
    ("parked", 18),  # kernel: 1 while the loop is about to park or parked on the doorbell
    ("host_waiting", 19),  # host (atomic +1/-1): host threads waiting for a reply on reply_bell
    ("reply_bell", 20),  # kernel: +1 after a reply is published while host_waiting is not 0
    ("budget", 21),  # host: loop iterations a handler may run per message (0 = no limit)
    ("ticks", 22),  # kernel: loop iterations the current handler has run (flushed at each poll)
    ("serial", 23),  # kernel: messages whose handler has started (mod 2**32)
    ("abort_at", 24),  # host: abort the handler of message `serial` == this (watchdog)
    ("aborting", 25),  # kernel: the abort reason while an aborted handler unwinds (0 = none)
    ("aborted", 26),  # kernel: messages whose handler was aborted
    ("last_abort", 27),  # kernel: reason of the last abort
    ("state_words", 28),  # host: words of state the loop shadows before each message
    ("instances", 29),  # host, block 0 of a group: N, the group's instances (0 in a single actor)
    ("quantum", 30),  # host, block 0 of a group: messages one instance may handle per turn (>= 1)
    ("state_stride", 31),  # host, block 0 of a group: words of each instance's state region
    # handler timing on the device clock (targets with one: cpu, cuda); see HANDLER_BUCKETS
    ("handler_us_lo", 32),  # kernel: microseconds its handlers took in all (u64, words 32-33)
    ("handler_us_hi", 33),
    *((f"handler_bucket_{k}", 34 + k) for k in range(16)),  # kernel: handlers per duration bucket
    ("timing_mask", 50),  # host: a handler is timed when processed & timing_mask == 0 (a sample)
    # the trace ring (docs/layout.md, "Trace ring"): an entry per handled message
    ("trace_at", 51),  # host: word offset of the ring in the actor's state region
    ("trace_mask", 52),  # host: ring entries - 1 (a power of two less one); 0: no ring
    ("trace_head", 53),  # kernel: entries written so far (wraps)
)
# Words a group's kernels read from block 0 only (docs/layout.md, "Actor groups"); each
# instance's own block has every other word.
GROUP_WORDS = ("stop", "drain", "batch", "idle_ns", "now_lo", "now_hi", "progress", "instances", "quantum",
               "state_stride")
MAX_THREADS = 1024  # lanes of a cooperative handler (@rk.actor(threads=)): every target's block limit
CONTROL_WORDS = 64  # words 54-63 are reserved (zero)
TRACE_ENTRY_WORDS = 4  # a trace ring entry: start µs (u64: low, high word), µs taken, message sequence
C = {name: index for name, index in CONTROL}
# Handler durations (``ringkernel_handler_seconds``): bucket k counts handlers that took
# fewer than 2**k microseconds on the device clock and, for k > 0, at least 2**(k-1); the
# last bucket takes every longer one.  Bucket k's upper bound is 2**k µs (1 µs .. 16.4 ms, +Inf).
HANDLER_BUCKETS = 16
HANDLER_BUCKET_0 = C["handler_bucket_0"]
# Two clock reads per message cost a small handler about half its time on cpu: by default
# one handler in 64 is timed (under 1% of a 170 ns message), 0 times every one.
TIMING_MASK_DEFAULT = 63


def handler_bucket(micros: int) -> int:
    """The bucket of a handler that took ``micros`` µs (as the loops count it)."""
    return min(max(int(micros), 0).bit_length(), HANDLER_BUCKETS - 1)
# the words only the loop writes: a host that mirrors device memory copies these back
CONTROL_KERNEL_WORDS = (
    "state",
    "errors",
    "heartbeat",
    "processed",
    "hlc_lo",
    "hlc_hi",
    "sequence",
    "last_bad_type",
    "clock_refused",
    "parked",
    "ticks",
    "serial",
    "aborting",
    "aborted",
    "last_abort",
    "handler_us_lo",
    "handler_us_hi",
    *(f"handler_bucket_{k}" for k in range(16)),
    "trace_head",
)
ACTOR_CREATED, ACTOR_RUNNING, ACTOR_EXITED = 0, 1, 2
# Handler aborts (docs/layout.md, "Budget checks"): the reason codes, and the
# type id of the record an aborted message leaves in a K2H queue instead of a reply.
ABORT_BUDGET, ABORT_STOPPED, ABORT_WATCHDOG = 1, 2, 3
ABORT_REASONS = {ABORT_BUDGET: "budget", ABORT_STOPPED: "stopped", ABORT_WATCHDOG: "watchdog"}
ABORT_TYPE_ID = 0xFFFFFFFF
# A `routed` slot whose producer reserved it but had nothing to put in it (docs/layout.md,
# "Routed queue (MPSC)"): the consumer frees it without handling or counting it.
SKIP_TYPE_ID = 0xFFFFFFFE
ABORT_REASON_WORD, ABORT_MESSAGE_WORD = 6, 7  # payload of the abort record: reason, the message's type id
# `stop` values: every non-zero one makes the loop leave before its next message;
# a handler polling aborts on STOP_NOW (reason stopped) and STOP_WATCHDOG (reason
# watchdog: a restart), and runs to its end on STOP_PAUSE (a rewiring).
STOP_NOW, STOP_WATCHDOG, STOP_PAUSE = 1, 2, 3
POLL_EVERY = 1024  # loop iterations between two looks at the stop and watchdog flags
IDLE_SPINS = 64  # empty polls before the loop parks, and at least ...
IDLE_SPIN_US = 100  # ... this long after its last work (persistent loop): the next message of a
# round trip finds it awake, so neither side pays a wake-up

# --- the loop kernel's arguments --------------------------------------------------------

# The word arrays an actor's loop kernel takes, in parameter order: the
# actor-lowering pass declares the kernel's params from this, and every host
# passes its ActorMemory in this order.
KERNEL_PARAMS = ("ctrl", "state", "h2k", "k2k", "out", "sends", "routed")

# --- hybrid logical clock ---------------------------------------------------------------

HLC_LOGICAL_BITS = 16
HLC_EPOCH_US = 1_735_689_600_000_000  # 2025-01-01T00:00:00Z; 48 bits of µs last ~8.9 years
HLC_PHYSICAL_MASK = (1 << 48) - 1
HLC_MAX = (1 << 64) - 1  # clocks saturate here instead of wrapping to 0
# A received stamp whose physical part runs further ahead of the receiver's wall
# clock than this is handled but not merged (Kulkarni et al.'s epsilon): one
# corrupt stamp near 2**64 must not exhaust a clock.  Host and device use it.
MAX_CLOCK_DRIFT_US = 60_000_000


def next_power_of_two(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


def check_capacity(capacity: int) -> int:
    """``capacity`` if it is a power of two >= 2; ``ValueError`` otherwise."""
    if (
        isinstance(capacity, bool)
        or not isinstance(capacity, int)
        or capacity < 2
        or capacity & (capacity - 1)
    ):
        raise ValueError(f"queue capacity must be a power of two (2, 4, 8, ...), got {capacity!r}")
    if capacity > 1 << 24:
        raise ValueError(f"queue capacity {capacity} is too large (at most 2**24 slots)")
    return capacity


# --- records: message payloads and actor state ------------------------------------------


@dataclass(frozen=True)
class FieldSlot:
    """Where one field lives: its first word; 64-bit scalars take two words each.

    ``length`` is None for a scalar and N for a ``Vec[T, N]`` field, whose
    elements follow each other (each one as a scalar field of ``type`` would be).
    """

    name: str
    type: ScalarType
    word: int
    length: int | None = None

    @property
    def scalar_words(self) -> int:
        """Words one element takes."""
        return 2 if self.type.bits == 64 else 1

    @property
    def words(self) -> int:
        return self.scalar_words * (self.length or 1)

    @property
    def spelled(self) -> str:
        """The field's type as written: ``u32`` or ``Vec[u32, 256]``."""
        return str(self.type) if self.length is None else f"Vec[{self.type}, {self.length}]"

    def elements(self) -> tuple[tuple[str, ScalarType], ...]:
        """The field as scalar fields: itself, or ``name_0 .. name_{N-1}`` for a Vec.

        RingIR's struct of a record lists these, and the type id is computed
        over them, so a module's text gives back the same layout and id.
        """
        if self.length is None:
            return ((self.name, self.type),)
        return tuple((f"{self.name}_{k}", self.type) for k in range(self.length))


@dataclass(frozen=True)
class RecordLayout:
    """Word layout of a record of scalar and Vec fields (a message payload or an actor's state)."""

    name: str
    fields: tuple[FieldSlot, ...]
    words: int

    def field(self, name: str) -> FieldSlot:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def struct_type(self) -> StructType:
        """The RingIR struct naming these fields (printed in the actor's module; Vecs expanded)."""
        return StructType(self.name, tuple(e for f in self.fields for e in f.elements()))

    def dtype(self, base_word: int = 0) -> np.dtype:
        """numpy structured dtype of the record, placed at ``base_word`` (bool as u32 0/1;
        a Vec field as a subarray)."""
        names = [f.name for f in self.fields]
        formats: list[Any] = []
        for f in self.fields:
            scalar = np.dtype(np.uint32) if f.type == BOOL else np.dtype(f.type.numpy_dtype)
            formats.append(scalar if f.length is None else (scalar, (f.length,)))
        offsets = [(base_word + f.word) * WORD for f in self.fields]
        return np.dtype(
            {
                "names": names,
                "formats": formats,
                "offsets": offsets,
                "itemsize": (base_word + self.words) * WORD,
            }
        )


RecordField = tuple[str, ScalarType] | tuple[str, ScalarType, int]
"""A record field as declared: ``(name, type)``, or ``(name, element type, N)`` for a ``Vec[T, N]``."""


def record_layout(name: str, fields: tuple[RecordField, ...]) -> RecordLayout:
    """Fields in declaration order, each naturally aligned (64-bit fields on even words);
    a Vec's elements follow each other from an aligned first one."""
    slots = []
    word = 0
    taken = {f[0] for f in fields}
    for field in fields:
        field_name, ty = field[0], field[1]
        length = field[2] if len(field) == 3 else None
        if ty.bits == 64 and word % 2:
            word += 1
        slot = FieldSlot(field_name, ty, word, length)
        clash = [n for n, _ in slot.elements() if n in taken] if length is not None else []
        if clash:
            raise ValueError(f"record '{name}': field '{clash[0]}' has the name RingIR gives element "
                             f"{clash[0].rsplit('_', 1)[1]} of Vec field '{field_name}'; rename it")
        slots.append(slot)
        word += slot.words
    return RecordLayout(name, tuple(slots), word)


def slot_words_for(payload_words: int) -> int:
    """Words per queue slot: envelope + payload rounded up to a power of two (>= 32 bytes)."""
    return max(MIN_SLOT_BYTES // WORD, next_power_of_two(ENVELOPE_WORDS + payload_words))


def type_id_of(layout: RecordLayout) -> int:
    """A message type's id: CRC-32 of its name and fields, never 0 (0 means 'no reply', and a
    free `routed` slot), the abort record's or the skipped slot's id."""
    elements = (e for f in layout.fields for e in f.elements())
    text = layout.name + "{" + ",".join(f"{name}:{ty}" for name, ty in elements) + "}"
    crc = zlib.crc32(text.encode())
    return crc if crc not in (0, ABORT_TYPE_ID, SKIP_TYPE_ID) else 1


# --- numpy views of the headers ---------------------------------------------------------


def _header_dtype(table: tuple[tuple[str, int], ...], words: int, wide: dict[str, str]) -> np.dtype:
    names, formats, offsets = [], [], []
    for name, index in table:
        if name.endswith("_hi"):
            continue
        key = name[:-3] if name.endswith("_lo") else name
        names.append(key)
        formats.append(np.uint64 if key in wide else np.uint32)
        offsets.append(index * WORD)
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": words * WORD})


ENVELOPE_DTYPE = np.dtype(
    {
        "names": [n for n, _, _ in ENVELOPE],
        "formats": [np.uint64 if t == U64 else np.uint32 for _, t, _ in ENVELOPE],
        "offsets": [w * WORD for _, _, w in ENVELOPE],
        "itemsize": ENVELOPE_WORDS * WORD,
    }
)
QUEUE_HEADER_DTYPE = _header_dtype(QUEUE_HEADER, QUEUE_HEADER_WORDS, {"send_hlc": ""})
CONTROL_DTYPE = _header_dtype(CONTROL, CONTROL_WORDS, {"hlc": "", "now": ""})


def queue_words(capacity: int, slot_words: int) -> int:
    return QUEUE_HEADER_WORDS + check_capacity(capacity) * slot_words


def group_queue_words(capacity: int, slot_words: int, count: int) -> int:
    """Words of the array holding ``count`` equal queues of a group, instance i's at ``i * stride``."""
    return count * queue_words(capacity, slot_words)


def envelope_struct() -> StructType:
    return StructType("Envelope", tuple((n, t) for n, t, _ in ENVELOPE))


__all__ = [
    "ENVELOPE",
    "ENVELOPE_WORDS",
    "ENVELOPE_DTYPE",
    "QUEUE_HEADER",
    "QUEUE_HEADER_WORDS",
    "QUEUE_HEADER_DTYPE",
    "CONTROL",
    "CONTROL_WORDS",
    "CONTROL_DTYPE",
    "CONTROL_KERNEL_WORDS",
    "TRACE_ENTRY_WORDS",
    "GROUP_WORDS",
    "MAX_THREADS",
    "group_queue_words",
    "RecordLayout",
    "FieldSlot",
    "RecordField",
    "record_layout",
    "slot_words_for",
    "type_id_of",
    "check_capacity",
    "send_target",
    "split_target",
    "SEND_PORT",
    "SEND_TO",
    "SEND_TIMER",
    "SEND_DELIVERED",
    "MAX_GROUP_SIZE",
    "SKIP_TYPE_ID",
    "queue_words",
    "HLC_EPOCH_US",
    "HLC_LOGICAL_BITS",
    "HLC_MAX",
    "MAX_CLOCK_DRIFT_US",
    "ACTOR_CREATED",
    "ACTOR_RUNNING",
    "ACTOR_EXITED",
    "ABORT_BUDGET",
    "ABORT_STOPPED",
    "ABORT_WATCHDOG",
    "ABORT_REASONS",
    "ABORT_TYPE_ID",
    "POLL_EVERY",
    "STOP_NOW",
    "STOP_WATCHDOG",
    "STOP_PAUSE",
]
