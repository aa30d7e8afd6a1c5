"""The ``session=<id>_<key>`` query value LL-HLS and HLS v3 players carry in every child URL.

The value is the client's to choose, so the id is taken only when it is ASCII digits of a bounded length:
``str.isdigit`` also accepts characters ``int`` refuses (``²``, ``①``) and ``int`` refuses more than 4,300
digits, and either reached ``int()`` as a ValueError (a 500 with a traceback, and a lease that could
never be pruned again).
"""

from __future__ import annotations

from collections.abc import Mapping

MAX_ID_DIGITS = 18  # Kiln counts its sessions from 0: an id this long was never handed out


def parse_session(value: str | None) -> tuple[int, str] | None:
    """(id, key) of ``<id>_<key>``, or None when it is absent or malformed."""
    sid_text, sep, key = (value or "").partition("_")
    if not sep or not key or not sid_text.isascii() or not sid_text.isdigit() or len(sid_text) > MAX_ID_DIGITS:
        return None
    return int(sid_text), key


def next_free_id(start: int, in_use: Mapping[int, object]) -> int:
    """The first id from ``start`` no session holds. A player may bring back an id Kiln forgot (a restart) and keep
    it; the counter is not moved to it: a client's '999999999999999999' would have made every later id too long
    for :func:`parse_session`, and, before that bound, a 4,300-digit one made every later player's request a 500."""
    while start in in_use:
        start += 1
    return start
