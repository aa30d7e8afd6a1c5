"""JSON of read-model records kept with what it was rendered from, so a list a dashboard polls is joined,
not rendered and encoded again (``POST :pushes`` with ten tasks spent most of its CPU there).

A record's JSON is a function of its field values (and the live counters read beside it): an entry is
used only while those values are equal to the ones it was rendered from. Field values are compared, not
trusted to a version number, so a record changed in place by its read model is rendered again. Values the
read models share and never edit (frozen specs) compare by identity first, as tuples do.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from kiln.http.envelope import dumps


class RenderedJson:
    """One kind of record's JSON by key; bounded (emptied when full: ids come from clients)."""

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self._kept: dict[Hashable, tuple[tuple[Any, ...], bytes]] = {}

    def get(self, key: Hashable, source: tuple[Any, ...], render: Callable[[], Any]) -> bytes:
        """The JSON of ``render()``, rendered again only when ``source`` differs from last time's."""
        found = self._kept.get(key)
        if found is not None and found[0] == source:
            return found[1]
        body = dumps(render())
        if found is None and len(self._kept) >= self.limit:
            self._kept.clear()
        self._kept[key] = (source, body)
        return body

    def __len__(self) -> int:
        return len(self._kept)


def json_list(items: list[bytes]) -> bytes:
    """The JSON array of already encoded items, as ``dumps`` would write it."""
    return b"[" + b",".join(items) + b"]"
