"""When a member snapshots (raftstore/_node.py ``snapshot_due``): about every
``--snapshot-count`` entries, with the members' snapshots spread apart."""

from __future__ import annotations

import itertools

import pytest

from raftstore._node import snapshot_due

COUNT = 10_000


@pytest.mark.parametrize(("snap_index", "slot", "due"), [
    (0, (0, 1), 10_000),       # a lone member: every count entries, as before
    (10_000, (0, 1), 20_000),
    (0, (0, 3), 10_000),       # three members, a third of count apart
    (0, (1, 3), 13_333),
    (0, (2, 3), 6_666),
    (6_666, (2, 3), 16_666),   # then every count entries, keeping the phase
    (13_333, (1, 3), 23_333),
    (12_345, (0, 3), 20_000),  # after a snapshot off phase (installed from the leader):
    (17_000, (0, 3), 30_000),  # back on phase, never sooner than count / 2 later
])
def test_snapshot_points(snap_index: int, slot: tuple[int, int], due: int) -> None:
    assert snapshot_due(snap_index, COUNT, slot) == due


@pytest.mark.parametrize("n", [1, 3, 5])
def test_each_member_snapshots_once_per_count_entries_and_never_together(n: int) -> None:
    points = []
    for place in range(n):
        index, mine = 0, []
        while index < 20 * COUNT:
            index = snapshot_due(index, COUNT, (place, n))
            mine.append(index)
        gaps = {b - a for a, b in itertools.pairwise(mine)}
        assert gaps == {COUNT}
        points.append(set(mine))
    for a in range(n):
        for b in range(a + 1, n):
            assert not points[a] & points[b]
