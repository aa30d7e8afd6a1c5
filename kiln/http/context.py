"""What the API's handlers read of the process: read models, metrics and where to send commands.

Declared here, where it is consumed, so HTTP depends on no actor module; the service's context
object satisfies it structurally.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from kiln.http.lookups import ActorDirectory, Lookups
from kiln.metrics.tree import MetricsTree
from kiln.projections.catalog import CatalogProjection
from kiln.projections.tasks import TasksProjection


class ApiContext(Lookups, Protocol):
    @property
    def tasks(self) -> TasksProjection: ...

    @property
    def stats(self) -> MetricsTree: ...


@dataclass(frozen=True)
class ApiReads:
    """The service's answer to ``ApiContext``: the read models, the metrics, where to send commands
    and the media runtime's live-stream lookup."""

    catalog: CatalogProjection
    tasks: TasksProjection
    stats: MetricsTree
    directory: ActorDirectory
    media: Any = None  # the media runtime (``media.streams``, ``media.llhls``); None without media
    feed: Any = None  # the journal feed (``kiln.http.events.EventFeed``) behind ``/v1/events``
    subscriptions: Any = None  # the subscriptions read model (``kiln.http.subscriptions.SubscriptionReads``)
    deliveries: Any = None  # live webhook delivery states (``kiln.metrics.deliveries.DeliveryStates``)
    secret_payloads: Any = None  # () -> payloads holding every secret known now, for an event stream's redactor
    journal: Any = None  # ``http/journal.py: JournalReads`` (GET /v1/journal); None: the route answers 404
    server: Any = None  # ``http/status.py: ServerStatus`` (GET /v1/status); None: the route answers 404
