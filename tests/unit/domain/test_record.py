"""Record tasks decided without a clock: create/stop refusals, states, sequence, retry per instance."""

from __future__ import annotations

from kiln.domain.errors import Conflict, Invalid, NotFound
from kiln.domain.record import (
    CreateRecord,
    FileDone,
    OutputDetached,
    Recording,
    RecordingFailed,
    RecordStatus,
    RecordTask,
    RecordTasks,
    RemoveRecord,
    RetryBlocked,
)
from kiln.domain.settings import AppSettings
from kiln.events.base import decode_event
from kiln.events.tasks import RecordCreated, RecordFileFinished, RecordRemoved, RecordSpec, RecordStateChanged
from tests.unit.domain.given import given

FILE_APP = AppSettings.parse({"publishers": {"file": {}}})
BODY = {"id": "r1", "stream": {"name": "cam", "trackIds": [1]}, "interval": 60000, "filePath": "/x.mp4",
        "segmentationRule": "continuity", "metadata": "m"}
SPEC = RecordSpec("vh", "app", "r1", "tx", "cam", [], [1], "/x.mp4", "", 60000, "", "continuity", "m")
CREATED = RecordCreated.of(SPEC, 10.0)


def tasks(settings: AppSettings = FILE_APP) -> RecordTasks:
    return RecordTasks("vh", "app", settings)


def task() -> RecordTask:
    return RecordTask(RecordStatus.created(CREATED))


def changed(state: str, reason: str = "", start_time: float | None = None, file: str = "",
            info: str = "") -> RecordStateChanged:
    return RecordStateChanged("vh", "app", "r1", state, reason, start_time, file, info)


def test_start_record_creates_the_task_with_the_given_transaction_id() -> None:
    given(tasks()).when(CreateRecord(BODY, "tx"), now=10.0).then(CREATED)


def test_duplicate_id_conflicts_and_stop_frees_it() -> None:
    outcome = given(tasks(), CREATED).when(CreateRecord(BODY, "tx2")).refused(Conflict, "Duplicate ID already exists")
    outcome.when(RemoveRecord({"id": "r1"})).then(RecordRemoved("vh", "app", "r1"))
    assert outcome.aggregate.ids == set()


def test_stop_unknown_and_missing_id() -> None:
    given(tasks()).when(RemoveRecord({"id": "r9"})).refused(
        NotFound, "There is no record information related to the ID [r9]")
    given(tasks()).when(RemoveRecord({"id": 5})).refused(Invalid, "There is no required parameter [ id]")


def test_without_file_publisher_every_call_is_app_not_found() -> None:
    for command in (CreateRecord({}, "tx"), RemoveRecord({"id": "r1"})):
        given(tasks(AppSettings.parse({})), CREATED).when(command).refused(
            NotFound, "Could not find application: [vh/app]")


def test_check_order_required_then_interval_with_schedule_then_schedule_then_duplicate() -> None:
    given(tasks(), CREATED).when(CreateRecord({"id": "r1"}, "tx")).refused(
        Invalid, "There is no required parameter [ stream.name]")
    both = {**BODY, "schedule": "61 * *"}
    given(tasks(), CREATED).when(CreateRecord(both, "tx")).refused(
        Invalid, "[Interval] and [Schedule] cannot be used at the same time")
    given(tasks(), CREATED).when(CreateRecord({**both, "interval": 0}, "tx")).refused(
        Invalid, "Invalid [schedule] parameter")


def test_recording_then_files_move_the_sequence_and_totals() -> None:
    outcome = given(task(), CREATED).when(Recording(("no audio",), "/rec/a.mp4", "/rec/a.xml"), now=20.0).then(
        changed("recording", "no audio", 20.0, "/rec/a.mp4", "/rec/a.xml"))
    done = FileDone(0, "/rec/a.mp4", "/rec/a.xml", 500, 1000, 20.0, 21.0, False)
    outcome = outcome.when(done).then(RecordFileFinished("vh", "app", "r1", 0, "/rec/a.mp4", "/rec/a.xml", 500,
                                                         1000, 20.0, 21.0, False))
    outcome.when(FileDone(1, "b", "c", 5, 10, 21.0, 22.0, False))
    s = outcome.aggregate.status
    assert (s.sequence, s.total_record_bytes, s.total_record_time_ms, s.finish_time) == (2, 505, 1010, 22.0)
    assert (s.state, s.start_time, s.output_file_path) == ("recording", 20.0, "/rec/a.mp4")


def test_a_failure_is_not_retried_on_the_same_stream_instance() -> None:
    outcome = given(task()).when(RecordingFailed("Permission denied", "inst-1")).then(
        changed("error", "Permission denied"), RetryBlocked("inst-1"))
    agg = outcome.aggregate
    assert not agg.may_record("inst-1") and agg.may_record("inst-2")
    outcome.when(OutputDetached("stream ended")).then(changed("ready", "stream ended"), RetryBlocked(None))
    assert agg.may_record("inst-1") and agg.status.state == "ready"


def test_stop_answers_stopping_without_output_paths() -> None:
    agg = given(task(), changed("recording", "", 20.0, "/rec/a.mp4", "/rec/a.xml")).aggregate
    view = agg.stopping_view()
    assert (view.state, view.output_file_path, view.output_info_path, view.start_time) == ("stopping", "", "", 20.0)
    assert agg.status.state == "recording"


def test_status_restores_from_old_flat_snapshots() -> None:
    status = RecordStatus.created(CREATED)
    saved = status.snapshot()
    flat = {**saved["spec"], **{k: v for k, v in saved.items() if k != "spec"}}
    assert RecordStatus.restore(flat) == status == RecordStatus.restore(saved)


def test_a_journaled_record_created_payload_replays_into_the_same_spec() -> None:
    stored = CREATED.payload()
    assert set(stored) == {"vhost", "app", "id", "transaction_id", "stream_name", "variant_names", "track_ids",
                           "file_path", "info_path", "interval", "schedule", "segmentation_rule", "metadata",
                           "created_time"}
    replayed = decode_event("RecordCreated", 1, stored)
    assert isinstance(replayed, RecordCreated) and replayed.spec == SPEC and replayed == CREATED
