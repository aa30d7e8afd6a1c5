"""``kiln serve`` sets the collector once startup is done: what startup built is frozen (no full collection
walks it again) and the young generation waits for 10,000 net allocations instead of 700."""

from __future__ import annotations

import gc

from kiln.collector import YOUNG_THRESHOLD, tune_for_serving


def test_startup_objects_are_frozen_and_the_young_threshold_raised() -> None:
    before = gc.get_threshold()
    built_at_startup = [object(), {"held": [1, 2]}]  # a container startup keeps
    try:
        tune_for_serving()
        assert gc.get_threshold() == (YOUNG_THRESHOLD, before[1], before[2])
        assert gc.get_freeze_count() > 0
        assert all(o is not built_at_startup for o in gc.get_objects())  # in the permanent generation
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
