"""Domain events. Importing this package registers every event type."""

from kiln.events import (  # noqa: F401  (registration)
    admission,
    catalog,
    playback,
    server,
    streams,
    subscriptions,
    tasks,
)
from kiln.events.base import Event, UnknownEventError, decode_event, registered_types

__all__ = ["Event", "UnknownEventError", "decode_event", "registered_types"]
