"""``kiln serve`` sets the collector once startup is done: what startup built is frozen (no full collection
walks it again); the thresholds stay CPython's (cycles of ended sessions are collected as soon as before)."""

from __future__ import annotations

import gc

from kiln.collector import tune_for_serving


def test_startup_objects_are_frozen_and_the_thresholds_kept() -> None:
    before = gc.get_threshold()
    built_at_startup = [object(), {"held": [1, 2]}]  # a container startup keeps
    try:
        tune_for_serving()
        assert gc.get_threshold() == before
        assert gc.get_freeze_count() > 0
        assert all(o is not built_at_startup for o in gc.get_objects())  # in the permanent generation
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
