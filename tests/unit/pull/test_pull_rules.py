"""Pull properties as OME reads them, and what ignoreRtcpSRTimestamp does to timestamps."""

from __future__ import annotations

from fractions import Fraction

from kiln.media.ingest.rtsp.properties import PullProperties, parse_pull_properties
from kiln.media.ingest.rtsp.rebase import PerTrackRebase
from kiln.media.model import Packet

TB = Fraction(1, 90000)


def test_properties_types_defaults_and_the_retry_quirk() -> None:
    assert parse_pull_properties({"name": "s", "urls": ["rtsp://x"]}) == PullProperties()
    assert PullProperties().retries == 2  # nothing said: the config default
    props = parse_pull_properties({"properties": {"persistent": "yes", "noInputFailoverTimeoutMs": 3000,
                                                  "unusedStreamDeletionTimeoutMs": 1.5,
                                                  "ignoreRtcpSRTimestamp": True}})
    assert props.persistent is False  # a string is the wrong type: ignored silently
    assert props.no_input_failover_timeout_ms == 3000 and props.unused_stream_deletion_timeout_ms == -1
    assert props.ignore_rtcp_sr_timestamp is True
    assert props.retry_count == 1  # a properties object without an int retryCount means one retry
    assert parse_pull_properties({"properties": {"retryCount": 5}}).retries == 5


def test_ignoring_sender_reports_puts_each_track_on_its_own_zero_based_clock() -> None:
    rebase = PerTrackRebase()
    video = [Packet(0, 900_000 + 3000 * i + 6000, 900_000 + 3000 * i, TB, b"v") for i in range(3)]
    audio = [Packet(1, 45_000_000 + 1920 * i, 45_000_000 + 1920 * i, TB, b"a") for i in range(3)]
    out = [rebase.apply(p) for pair in zip(video, audio, strict=True) for p in pair]
    assert [(p.track_id, p.dts, p.pts) for p in out if p.track_id == 0] == [(0, 0, 6000), (0, 3000, 9000),
                                                                          (0, 6000, 12000)]
    assert [p.dts for p in out if p.track_id == 1] == [0, 1920, 3840]
