"""OME's track groups: output tracks sharing a variant name (a bypassed simulcast input's layers) are told
apart by their index in the group, which a playlist's rendition names with ``VideoIndexHint``/``AudioIndexHint``.

Kiln orders a group's layers largest first, so index 0 (the default) is the full-size layer."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kiln.media.model import Track


def index_hint(value: Any) -> int | None:
    """A rendition's ``videoIndexHint``/``audioIndexHint``: 0 when absent, None when it is not an index."""
    if value is None or value == "":
        return 0
    try:
        index = int(str(value).strip())
    except ValueError:
        return None
    return index if index >= 0 else None


def named_track(tracks: Iterable[Track], name: str, hint: Any = None) -> Track | None:
    """The track of the group ``name`` that ``hint`` selects (None: no such track or index)."""
    index = index_hint(hint)
    group = [t for t in tracks if t.name == name]
    return group[index] if index is not None and index < len(group) else None
