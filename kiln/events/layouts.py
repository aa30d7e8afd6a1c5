"""The field order of each event schema version that the journal stores positionally.

A record of a (type, version) listed here is stored with its payload as a list of values in this order
instead of a map: half the decoding work at replay and a third fewer bytes (no key names in every
frame). This table is part of the journal's format: an entry is never edited or removed, since
journals written with it must still read. When an event's fields change, bump its VERSION (with an
upcaster in base.UPCASTERS) and add the new version's entry; tests/unit/events/test_layouts.py checks
that every event's current version is listed with its current fields. A payload whose keys are not
exactly its layout (or with no layout) is stored as a map, as every record was before this table.
"""

from __future__ import annotations

LAYOUTS: dict[tuple[str, int], tuple[str, ...]] = {
    ("AdmissionAllowed", 1): (
        "vhost", "app", "stream", "protocol", "direction", "client", "url", "rule", "new_url",
        "lifetime_ms", "stream_expire_ms", "reason",
    ),
    ("AdmissionDenied", 1): ("vhost", "app", "stream", "protocol", "direction", "client", "url", "rule", "reason"),
    ("AppCreated", 1): ("vhost", "name", "config", "created_time"),
    ("AppCreated", 2): ("vhost", "name", "config", "created_time", "dynamic"),
    ("AppDeleted", 1): ("vhost", "name"),
    ("AppPatched", 1): ("vhost", "name", "config", "patch"),
    ("DumpFileWritten", 1): ("vhost", "app", "output_stream", "id", "path", "seq", "extra"),
    ("DumpRemoved", 1): ("vhost", "app", "output_stream", "id"),
    ("DumpStarted", 1): (
        "vhost", "app", "stream", "output_stream", "id", "output_path", "playlists", "info_file",
        "user_data", "created_time",
    ),
    ("DumpStopped", 1): ("vhost", "app", "output_stream", "id", "reason"),
    ("HlsLiveConcluded", 1): ("vhost", "app", "name", "instance"),
    ("MultiplexDefined", 1): ("vhost", "app", "name", "multiplex", "created_time", "source"),
    ("MultiplexRemoved", 1): ("vhost", "app", "name", "reason"),
    ("OutputProfileDeleted", 1): ("vhost", "app", "name"),
    ("OutputProfileReplaced", 1): ("vhost", "app", "profile"),
    ("OutputProfilesAdded", 1): ("vhost", "app", "profiles"),
    ("PlaybackSessionClosed", 1): (
        "vhost", "app", "stream", "protocol", "session", "client", "reason", "bytes_out", "seconds",
    ),
    ("PlaybackSessionOpened", 1): (
        "vhost", "app", "stream", "protocol", "session", "client", "playlist", "rendition", "tracks",
    ),
    ("PullDefined", 1): (
        "vhost", "app", "name", "urls", "properties", "persistent", "created_time", "cause", "source_url",
    ),
    ("PullFailed", 1): ("vhost", "app", "name", "reason", "cause"),
    ("PullRemoved", 1): ("vhost", "app", "name", "reason"),
    ("PullSourceChanged", 1): ("vhost", "app", "name", "source_url", "cause"),
    ("PushCreated", 1): (
        "vhost", "app", "id", "stream_name", "variant_names", "track_ids", "protocol", "url", "stream_key",
        "created_time",
    ),
    ("PushProgress", 1): ("vhost", "app", "id", "sent_bytes", "sent_time_ms"),
    ("PushRemoved", 1): ("vhost", "app", "id", "reason"),
    ("PushSessionEnded", 1): ("vhost", "app", "id", "sent_bytes", "sent_time_ms", "reason"),
    ("PushStateChanged", 1): ("vhost", "app", "id", "state", "reason", "start_time"),
    ("RecordCreated", 1): (
        "vhost", "app", "id", "transaction_id", "stream_name", "variant_names", "track_ids", "file_path",
        "info_path", "interval", "schedule", "segmentation_rule", "metadata", "created_time",
    ),
    ("RecordFileFinished", 1): (
        "vhost", "app", "id", "sequence", "file_path", "info_path", "record_bytes", "record_time_ms",
        "start_time", "finish_time", "last_sequence", "recovered",
    ),
    ("RecordFileLost", 1): ("vhost", "app", "id", "sequence", "record_bytes", "record_time_ms", "reason"),
    ("RecordProgress", 1): ("vhost", "app", "id", "sequence", "record_bytes", "record_time_ms"),
    ("RecordRemoved", 1): ("vhost", "app", "id", "reason"),
    ("RecordStateChanged", 1): (
        "vhost", "app", "id", "state", "reason", "start_time", "output_file_path", "output_info_path",
    ),
    ("ScheduleDefined", 1): ("vhost", "app", "name", "schedule", "created_time", "source"),
    ("ScheduleRemoved", 1): ("vhost", "app", "name", "reason"),
    ("ServerStarted", 1): ("version", "pid", "config", "recovered_events", "snapshot_seq", "notes"),
    ("ServerStopped", 1): ("reason",),
    ("StreamEnded", 1): ("vhost", "app", "name", "instance", "reason", "bytes_in"),
    ("StreamEventSent", 1): ("vhost", "app", "name", "event_format", "event_type", "events", "urgent"),
    ("StreamStarted", 1): ("vhost", "app", "name", "instance", "source_type", "source_url", "created_time"),
    ("StreamTracksDescribed", 1): ("vhost", "app", "name", "instance", "tracks"),
    ("SubscriptionCreated", 1): (
        "id", "url", "secret_key", "from_seq", "entity_prefix", "types", "source", "created_time",
        "declared_from",
    ),
    ("SubscriptionDeleted", 1): ("id", "reason"),
    ("SubscriptionDelivered", 1): ("id", "cursor", "delivered"),
    ("SubscriptionStateChanged", 1): ("id", "state", "reason"),
    ("VhostCreated", 1): ("name", "config", "created_time"),
    ("VhostDeleted", 1): ("name",),
    ("VhostTemplateSet", 1): ("vhost", "config"),
}
