"""What the API's handlers read of the process: read models, metrics and where to send commands.

Declared here, where it is consumed, so HTTP depends on no actor module; the service's context
object satisfies it structurally.
"""

from __future__ import annotations

from typing import Protocol

from kiln.http.lookups import Lookups
from kiln.metrics.tree import MetricsTree
from kiln.projections.tasks import TasksProjection


class ApiContext(Lookups, Protocol):
    @property
    def tasks(self) -> TasksProjection: ...

    @property
    def stats(self) -> MetricsTree: ...
