"""Freezing the start-up heap: what is alive then is out of the collector's reach, what comes later is not."""

from __future__ import annotations

import gc

from worker.startup_heap import freeze_startup_heap


def tracked(obj: object) -> bool:
    return any(o is obj for o in gc.get_objects())


def test_objects_alive_at_start_are_frozen_and_later_ones_are_not() -> None:
    gc.unfreeze()
    before: list[object] = []
    assert tracked(before)
    assert freeze_startup_heap() > 0  # (the count then falls as frozen temporaries are freed)
    assert not tracked(before)  # in the permanent generation, which collections skip
    after: list[object] = []
    assert tracked(after)
