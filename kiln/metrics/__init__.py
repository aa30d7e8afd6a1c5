"""Runtime metrics, apart from control and media: counters owned by whoever produces them.

- ``tree``/``node``: the server/vhost/app/stream metrics OME shows under ``/v1/stats/current``
  (rest-spec §13). A stream owns its node and counts its input there; parents are composed from
  their children when read, or when a throughput window closes (at most once a second per node).
- ``track``: a track's bitrate, frame rate and GOP (streams API), owned by that track.
- ``queue``: a hub subscriber's queue counters (internal queues API), owned by that subscriber.
- ``sessions``: the live counters of running push and record sessions, found by task key.

Concurrency, and why the packet path takes no shared lock: every counter cell has one writer.
A stream node's input total is written only by that stream's ingest thread; output bytes go to a
cell per writing thread inside the node (a push or record session's thread, the event loop of the
LL-HLS or thumbnail server). In CPython an ``int`` attribute or dict-item store is atomic under the
GIL, and a read-modify-write by the only writer of a cell cannot lose an update; readers sum the
cells (``tuple(dict.values())`` is one step under the GIL) and may see a value one packet old.
The tree's one lock guards the control plane (structure, session connects and disconnects,
snapshots); the packet path only tries it, without waiting, when a throughput window is due (at
most once a second per node): a busy lock defers that close to the next packet. Metrics are runtime
state, not journaled: they restart with the process, as OME's do.
"""

from kiln.metrics.connections import CONNECTION_TYPES, push_kind
from kiln.metrics.node import NodeSnapshot
from kiln.metrics.queue import QueueCounters, queue_json
from kiln.metrics.sessions import SessionCounters
from kiln.metrics.track import TrackMeter
from kiln.metrics.tree import MetricsTree

__all__ = ["CONNECTION_TYPES", "MetricsTree", "NodeSnapshot", "QueueCounters", "SessionCounters", "TrackMeter",
           "push_kind", "queue_json"]
