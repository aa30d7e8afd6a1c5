"""Kiln's two additions to OME's record object: why a task failed, and which tracks it leaves out."""

from __future__ import annotations

from dataclasses import replace

from kiln.domain.record import RecordStatus
from kiln.domain.record_request import parse_start_record
from kiln.http.record import record_json

SKIPPED = "track 2 (opus_audio, OPUS) cannot be stored in mp4"


def status(state: str, reason: str) -> RecordStatus:
    spec = parse_start_record({"id": "r1", "stream": {"name": "s"}, "filePath": "x.mp4"}, "default", "app",
                              "tx", ())
    return replace(RecordStatus(spec, 1_700_000_000.0), state=state, reason=reason, start_time=1_700_000_001.0)


def test_a_recording_names_the_tracks_it_leaves_out() -> None:
    for state in ("recording", "stopping"):
        out = record_json(status(state, SKIPPED))
        assert out["lastWarning"] == SKIPPED and "lastError" not in out


def test_no_warning_when_every_track_is_kept_or_the_reason_is_not_about_tracks() -> None:
    assert "lastWarning" not in record_json(status("recording", ""))
    assert "lastWarning" not in record_json(status("ready", "stream ended"))
    assert "lastWarning" not in record_json(status("stopped", "stream ended"))


def test_an_error_is_shown_as_last_error_only() -> None:
    out = record_json(status("error", "Permission denied"))
    assert out["lastError"] == "Permission denied" and "lastWarning" not in out
