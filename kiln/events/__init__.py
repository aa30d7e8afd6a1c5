"""Domain events. Importing this package registers every event type."""

from kiln.events import admission, catalog, server, streams, subscriptions, tasks  # noqa: F401  (registration)
from kiln.events.base import Event, UnknownEventError, decode_event, registered_types

__all__ = ["Event", "UnknownEventError", "decode_event", "registered_types"]
