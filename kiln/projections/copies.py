"""Copies the read models hand out: shallow, fast, and sharing what events replace rather than edit."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")

_new = object.__new__


def shallow(view: T) -> T:
    """A copy of a (non-slots) dataclass instance sharing its field values. ``copy.copy`` goes through
    ``__reduce_ex__`` and took 5x longer; listing ten push tasks copied each one per request."""
    found = _new(type(view))
    found.__dict__.update(view.__dict__)
    return found
