"""Everything an actor needs from the process: the event log, the directory, the read models."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiln.actors.directory import Directory
from kiln.eventlog import EventLog
from kiln.metrics.tree import MetricsTree
from kiln.projections.catalog import CatalogProjection
from kiln.projections.tasks import TasksProjection


@dataclass
class Context:
    events: EventLog
    directory: Directory
    catalog: CatalogProjection
    tasks: TasksProjection
    stats: MetricsTree
    data_dir: Path
    media: Any = None  # the media runtime (hubs, servers); absent in control-plane-only tests

