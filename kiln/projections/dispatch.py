"""Which handler of a projection takes which event type, found once per class."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Handler = Callable[[Any, Any], None]


def handlers_of(cls: type) -> dict[str, Handler]:
    """``_on_<TYPE>`` methods of ``cls`` (and its bases) by event type name. Replay applies millions of
    events; a dict lookup per event costs a fraction of building ``"_on_" + TYPE`` and a getattr."""
    found: dict[str, Handler] = {}
    for klass in reversed(cls.__mro__):
        for name, fn in vars(klass).items():
            if name.startswith("_on_") and callable(fn):
                found[name[len("_on_"):]] = fn
    return found
