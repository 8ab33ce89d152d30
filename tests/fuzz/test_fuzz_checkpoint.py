"""The checkpoint reader's fuzz target (issue 20): its seeds are real checkpoints that restore,
and byte-level damage to them, resealed or not, is refused or restored without a finding."""

from __future__ import annotations

import hashlib
import random
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from fuzz import fuzz_checkpoint  # noqa: E402
from fuzz.run import TARGETS  # noqa: E402
from ringkernel import durability  # noqa: E402


def test_the_target_is_registered_and_its_valid_seeds_are_current():
    assert "checkpoint" in TARGETS
    corpus = REPO / "fuzz" / "corpus" / "checkpoint"
    for name, data in fuzz_checkpoint.seed_files().items():
        images, _ = durability.decode((corpus / name).read_bytes())
        assert len(images) == len(durability.decode(data)[0])


def test_a_valid_seed_restores_with_its_state_and_replies():
    data = fuzz_checkpoint.seed_files()["one.rkc"]
    images, _ = durability.decode(data)
    fuzz_checkpoint.restore(data, images)  # raises Finding on a mismatch


@pytest.mark.parametrize("seed", range(40))
def test_damaged_checkpoints_are_refused_cleanly(seed):
    rng = random.Random(seed)
    data = bytearray(fuzz_checkpoint.seed_files()[rng.choice(["one.rkc", "two.rkc"])])
    for _ in range(rng.randint(1, 4)):
        data[rng.randrange(len(data) - 32)] = rng.randrange(256)
    body = bytes(data[:-32])
    resealed = body + hashlib.sha256(body).digest()
    with pytest.raises(durability.CheckpointError):
        durability.decode(bytes(data))  # the checksum catches every change
    fuzz_checkpoint.test_one_input(bytes(data))  # resealed too: refused or restored, never a finding
    try:
        durability.decode(resealed)
    except durability.CheckpointError as exc:
        assert str(exc)  # the reason is said
