"""How a cycle's plan is cut into batch activities (workflows.common.even_batches)."""

from __future__ import annotations

import pytest

from workflows.common import even_batches


@pytest.mark.parametrize(
    ("count", "max_size", "parallel", "sizes"),
    [
        (225, 100, 4, [57, 56, 56, 56]),  # a full UK crawl: one batch per slot
        (229, 25, 4, [23] * 9 + [22]),  # more than the slots: as few as max_size allows
        (10, 100, 4, [3, 3, 2, 2]),  # a small cycle still uses every slot
        (3, 100, 4, [1, 1, 1]),  # never an empty batch
        (1, 100, 4, [1]),
        (0, 100, 4, []),
        (400, 100, 4, [100, 100, 100, 100]),
        (401, 100, 4, [81, 80, 80, 80, 80]),
        (7, 1, 1, [1] * 7),
    ],
)
def test_batches_are_even_and_bounded(
    count: int, max_size: int, parallel: int, sizes: list[int]
) -> None:
    items = list(range(count))
    batches = even_batches(items, max_size=max_size, parallel=parallel)
    assert [len(b) for b in batches] == sizes
    assert [i for b in batches for i in b] == items  # every item once, in order
    assert all(len(b) <= max_size for b in batches)


@pytest.mark.parametrize(("max_size", "parallel"), [(0, 4), (25, 0), (-1, -1)])
def test_nonsense_shapes_are_refused(max_size: int, parallel: int) -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        even_batches([1, 2], max_size=max_size, parallel=parallel)
