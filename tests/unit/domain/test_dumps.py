"""HLS dumps of an app: duplicate id, duplicate info file, stop, and forgetting stopped dumps."""

from __future__ import annotations

from kiln.domain.dumps import AppDumps, DumpStatus, ForgetStoppedDumps, StartDump, StopDumps
from kiln.domain.errors import Failed
from kiln.events.tasks import DumpRemoved, DumpSpec, DumpStarted, DumpStopped
from tests.unit.domain.given import given


def start(dump_id: str, info: str = "", output: str = "cam") -> StartDump:
    return StartDump(DumpSpec("vh", "app", "cam", output, dump_id, f"/d/{dump_id}", ["llhls.m3u8"], info, "u"))


def started(dump_id: str, info: str = "", output: str = "cam", at: float = 1_000.0) -> DumpStarted:
    return DumpStarted("vh", "app", "cam", output, dump_id, f"/d/{dump_id}", ["llhls.m3u8"], info, "u", at)


def dumps() -> AppDumps:
    return AppDumps("vh", "app")


def test_start_journals_the_dump() -> None:
    given(dumps()).when(start("d1", "i.xml"), now=5.0).then(started("d1", "i.xml", at=5.0))


def test_duplicate_id_on_the_same_output_fails_even_when_stopped() -> None:
    stopped = DumpStopped("vh", "app", "cam", "d1")
    given(dumps(), started("d1"), stopped).when(start("d1")).refused(
        Failed, "Could not start dump: [vh/app/cam] (Duplicate ID)")
    given(dumps(), started("d1", output="other")).when(start("d1"), now=5.0).then(started("d1", at=5.0))


def test_duplicate_info_file_fails() -> None:
    given(dumps(), started("d1", "i.xml")).when(start("d2", "i.xml")).refused(
        Failed, "Could not start dump: [vh/app/cam] (Duplicate info file)")
    given(dumps(), started("d1", "")).when(start("d2", ""), now=5.0).then(started("d2", at=5.0))


def test_stop_one_or_all_running_dumps() -> None:
    outcome = given(dumps(), started("d1"), started("d2", "x")).when(StopDumps("cam", "d1")).then(
        DumpStopped("vh", "app", "cam", "d1"))
    outcome.when(StopDumps("cam", None)).then(DumpStopped("vh", "app", "cam", "d2"))
    outcome.when(StopDumps("cam", None)).then()  # nothing left running: nothing to stop, no refusal


def test_stop_unknown_or_already_stopped_id_fails() -> None:
    text = "Could not stop dump: [vh/app/cam] (Could not find dump info)"
    given(dumps()).when(StopDumps("cam", "zz")).refused(Failed, text)
    given(dumps(), started("d1"), DumpStopped("vh", "app", "cam", "d1")).when(StopDumps("cam", "d1")).refused(
        Failed, text)


def test_stream_end_forgets_stopped_dumps_only_and_frees_their_ids() -> None:
    outcome = given(dumps(), started("d1"), started("d2"), DumpStopped("vh", "app", "cam", "d1"),
                    started("d3", output="other")).when(ForgetStoppedDumps(("cam",))).then(
        DumpRemoved("vh", "app", "cam", "d1"))
    outcome.when(start("d1"), now=7.0).then(started("d1", at=7.0))
    assert sorted(d.id for d in outcome.aggregate.on("cam")) == ["d1", "d2"]


def test_status_restores_from_old_flat_snapshots() -> None:
    status = DumpStatus.started(started("d1", "i.xml"))
    status.fold(DumpStopped("vh", "app", "cam", "d1"))
    saved = status.snapshot()
    flat = {**saved["spec"], **{k: v for k, v in saved.items() if k != "spec"}}
    assert set(flat) == {"vhost", "app", "stream", "output_stream", "id", "output_path", "playlists", "info_file",
                         "user_data", "created_time", "enabled", "files_written"}  # the old flat DumpTask
    assert DumpStatus.restore(flat) == status == DumpStatus.restore(saved)
    assert (status.id, status.info_file, status.enabled) == ("d1", "i.xml", False)
