"""``memory_groups``: which array arguments share memory."""

from __future__ import annotations

import numpy as np

from ringkernel.runtime.aliasing import memory_groups


def test_distinct_arrays_are_groups_of_one() -> None:
    a, b = np.zeros(4, np.float32), np.zeros(4, np.float32)
    groups = memory_groups([a, b], [0, 1])
    assert [g.members for g in groups] == [(0,), (1,)]
    assert all(g.identical for g in groups)


def test_the_same_array_twice_is_one_identical_group() -> None:
    a = np.zeros(4, np.float32)
    (group,) = memory_groups([a, 7, a], [0, 2])
    assert group.members == (0, 2)
    assert group.identical and group.offsets == (0, 0) and group.nbytes == 16


def test_partial_overlap_joins_and_records_offsets() -> None:
    base = np.zeros(10, np.int32)
    (group,) = memory_groups([base[3:8], base[0:5]], [0, 1])
    assert group.members == (1, 0)
    assert group.offsets == (0, 12)
    assert group.nbytes == 32 and not group.identical
    span = group.span([base[3:8], base[0:5]])
    span[:] = 1
    assert base[:8].view(np.uint8).all() and not base[8:].any()


def test_chains_of_overlaps_are_one_group_and_touching_views_are_not() -> None:
    base = np.zeros(12, np.float32)
    args = [base[0:4], base[3:7], base[6:10], base[10:12]]
    groups = memory_groups(args, [0, 1, 2, 3])
    assert [g.members for g in groups] == [(0, 1, 2), (3,)]


def test_same_memory_with_another_dtype_is_not_identical() -> None:
    a = np.zeros(4, np.float32)
    (group,) = memory_groups([a, a.view(np.int32)], [0, 1])
    assert not group.identical


def test_empty_arrays_share_nothing() -> None:
    a = np.zeros(0, np.float32)
    groups = memory_groups([a, a], [0, 1])
    assert len(groups) == 2
