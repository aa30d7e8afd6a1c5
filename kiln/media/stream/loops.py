"""Channels that would feed themselves: the one rule scheduled channels and multiplex channels both follow.

A scheduled channel takes the stream its ``stream://`` item on air names; a multiplex channel takes every source it
names. When what a channel would take leads back to it, directly or through any mix of other channels (``a -> m ->
a``, ``m1 -> m2 -> m1``, ``a -> b -> m -> a``), taking it would make the channel replay what it sent a moment ago,
for ever (the last GOP, echoed round the loop). The channel that would close such a loop does not: a schedule item
counts as failing (its fallback plays), a multiplex waits for its sources as for one that is not there. Each
channel says here what it takes (:class:`ChannelFeeds`) and asks :func:`loop_back` before it takes anything; since
a channel says so before it asks, of two channels closing a loop at the same moment at least one sees the other.
"""

from __future__ import annotations

import threading

from kiln.media.stream.tap import Outputs

Key = tuple[str, str, str]  # (vhost, app, stream)


class ChannelFeeds:
    """What each channel takes now, by its stream's key: a scheduled channel the stream its item on air plays
    (nothing while a file plays), a multiplex every source it names, while it waits for them too (a multiplex that
    waits for another that waits for it is a loop, which none of them would ever leave). Written by each channel's
    thread, read by the others' under a lock: a read never waits on a channel."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._takes: dict[Key, tuple[object, tuple[Key, ...]]] = {}

    def set(self, key: Key, owner: object, takes: tuple[Key, ...]) -> None:
        """``owner`` (the channel's worker) says what ``key`` takes; a worker replacing another under the same name
        takes the entry over, and the one it replaced can no longer clear it (:meth:`clear`)."""
        with self._lock:
            self._takes[key] = (owner, takes)

    def clear(self, key: Key, owner: object) -> None:
        with self._lock:
            found = self._takes.get(key)
            if found is not None and found[0] is owner:
                del self._takes[key]

    def takes(self, key: Key) -> tuple[Key, ...]:
        with self._lock:
            found = self._takes.get(key)
        return found[1] if found is not None else ()


def loop_back(me: Key, own: object | None, target: Key, outputs: Outputs, feeds: ChannelFeeds) -> str | None:
    """The loop, as ``me -> ... -> me`` (each stream as ``vhost/app/stream``), when the stream ``target`` names (an
    output's name, as a ``stream://`` URL gives it) is this channel or takes it, directly or through other channels;
    None when it does not. ``own``: this channel's live stream, when it has one (its outputs may have other names).

    A named stream that is live is known by its input stream's key; one that is not is known by the name (a
    multiplex waiting for its sources, whose output when it relays is named as its stream)."""

    def resolve(name: Key) -> tuple[Key, bool]:
        found = outputs.find_output(*name)
        if found is None:
            return name, name == me
        return found[0].key, found[0].key == me or (own is not None and found[0] is own)

    seen: set[Key] = set()
    stack: list[tuple[Key, tuple[Key, ...]]] = [(target, (me,))]  # depth first, without recursion (no depth limit)
    while stack:
        name, path = stack.pop()
        key, is_me = resolve(name)
        if is_me:
            return " -> ".join("/".join(k) for k in (*path, me))
        if key in seen:
            continue
        seen.add(key)
        stack.extend((following, (*path, key)) for following in reversed(feeds.takes(key)))
    return None
