"""What the actor tree is built with: the journal, where actors register, counters, files, media.

Not a locator: no read model is in it (actors never read projections), and every actor declares,
as a Protocol in its own module, the part of this it uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kiln.actors.directory import Directory
from kiln.config.write_roots import WriteRoots
from kiln.eventlog import EventLog
from kiln.media.runtime import MediaRuntime
from kiln.metrics.tree import MetricsTree


@dataclass(frozen=True)
class ActorRuntime:
    events: EventLog
    directory: Directory
    stats: MetricsTree
    data_dir: Path
    media: MediaRuntime | None = None  # absent in control-plane-only tests
    config_dir: Path | None = None  # the configuration file's directory (relative Schedule paths)
    write_roots: WriteRoots | None = None  # where API-chosen paths may make Kiln write (None: anywhere)
