"""The chaos checker itself must be able to fail: a lost acknowledged command, a phantom and a half-applied
unanswered command are each reported (no sockets: plain state maps)."""

from __future__ import annotations

from kiln.timefmt import format_time
from tests.chaos.observe import PullFate, compare, fate_from
from tests.chaos.workload import Command, State, without

BEFORE: State = {("vhost", "cv0"): "cv0", ("app", "cv0", "ca0"): "ca0", ("profile", "cv0", "ca0", "default"): "x",
          ("push", "cv0", "ca0", "cu0"): "rtmp://a"}


def test_equal_state_passes() -> None:
    assert compare(BEFORE, dict(BEFORE), None, cam_live=False, pulls_final=True).problems == []


def test_a_lost_acknowledged_push_is_reported() -> None:
    seen = {k: v for k, v in BEFORE.items() if k[0] != "push"}
    problems = compare(BEFORE, seen, None, cam_live=False, pulls_final=True).problems
    assert len(problems) == 1 and "cu0" in problems[0]


def test_a_phantom_is_reported() -> None:
    seen: State = {**BEFORE, ("record", "cv0", "ca0", "cr0"): "f.mp4"}
    assert compare(BEFORE, seen, None, cam_live=False, pulls_final=True).problems


def test_an_unanswered_delete_may_have_happened_wholly_or_not_at_all() -> None:
    delete = Command("delete vhost", "DELETE", "/v1/vhosts/cv0", None, BEFORE, without(BEFORE, ("cv0",)))
    done = compare(BEFORE, {}, delete, cam_live=False, pulls_final=True)
    assert done.problems == [] and done.adopted == {}
    not_done = compare(BEFORE, dict(BEFORE), delete, cam_live=False, pulls_final=True)
    assert not_done.problems == [] and not_done.adopted == BEFORE


def test_an_unanswered_delete_half_applied_is_reported() -> None:
    delete = Command("delete vhost", "DELETE", "/v1/vhosts/cv0", None, BEFORE, without(BEFORE, ("cv0",)))
    half: State = {("push", "cv0", "ca0", "cu0"): "rtmp://a"}  # the vhost is gone but its app's push is still listed
    problems = compare(BEFORE, half, delete, cam_live=False, pulls_final=True).problems
    assert len(problems) == 1 and "half-exists" in problems[0]


def test_dumps_are_only_compared_while_their_stream_is_live() -> None:
    expected: State = {("dump", "default", "app", "cam", "cd0"): "/d"}
    assert compare(expected, {}, None, cam_live=False, pulls_final=True).problems == []
    assert compare(expected, {}, None, cam_live=True, pulls_final=True).problems


DUMP = ("dump", "default", "app", "cam", "cd1")


def test_an_unanswered_dump_stop_stays_in_doubt_until_its_stream_is_seen() -> None:
    """The CI report of an "acknowledged :stopHlsDump running again" (seed 536381485): the stop's answer
    was lost in the kill, and the restart's check, made before the publisher was back, could not see the
    dump; the checker took the stop as done and later saw the dump running, as it was all along."""
    running: State = {DUMP: "/d"}
    stop = Command("stop dump", "POST", "/v1/vhosts/default/apps/app/streams/cam:stopHlsDump", {}, running,
                   {DUMP: "/d (stopped)"})
    blind = compare(running, {}, stop, cam_live=False, pulls_final=True)
    assert blind.problems == [] and blind.unresolved == {DUMP: ("/d", "/d (stopped)")}
    # the stop never reached the journal: running is one of the two outcomes, not a lost acknowledgement
    seen = compare(blind.adopted, {DUMP: "/d"}, None, cam_live=True, pulls_final=True, unresolved=blind.unresolved)
    assert seen.problems == [] and seen.adopted == {DUMP: "/d"} and seen.unresolved == {}
    done = compare(blind.adopted, {DUMP: "/d (stopped)"}, None, cam_live=True, pulls_final=True,
                   unresolved=blind.unresolved)
    assert done.problems == [] and done.adopted == {DUMP: "/d (stopped)"} and done.unresolved == {}
    # still unseen: still in doubt
    later = compare(blind.adopted, {}, None, cam_live=False, pulls_final=True, unresolved=blind.unresolved)
    assert later.problems == [] and later.unresolved == blind.unresolved
    # neither outcome: reported
    other = compare(blind.adopted, {}, None, cam_live=True, pulls_final=True, unresolved={DUMP: ("/d", "/e")})
    assert other.problems


def test_an_acknowledged_dump_stop_seen_running_is_a_lost_command() -> None:
    stopped: State = {DUMP: "/d (stopped)"}
    assert compare(stopped, {DUMP: "/d"}, None, cam_live=True, pulls_final=True).problems


def _rec(kind: str, at: float, **payload: object) -> dict[str, object]:
    return {"type": kind, "time": format_time(at), "payload": payload}


def test_a_pull_not_live_is_explained_only_by_its_journal() -> None:
    url = "rtsp://127.0.0.1:1/s"
    defined = _rec("PullDefined", 100.0, urls=[url], source_url="")
    retrying = PullFate("retrying", url)
    assert fate_from([defined, _rec("PullFailed", 205.0, reason="no answer")], 200.0) == retrying
    # tried only by an earlier process: Kiln may have forgotten it at this restart
    assert fate_from([defined, _rec("PullFailed", 150.0, reason="no answer")], 200.0) is None
    assert fate_from([defined], 200.0) is None  # never tried at all
    # Kiln ended it because its source failed (OME deletes such a pull stream)
    gone = [defined, _rec("PullRemoved", 180.0, reason="could not connect to any url (Connection refused)")]
    assert fate_from(gone, 200.0) == PullFate("ended", "could not connect to any url (Connection refused)")
    # deleted through the API, then a later create that failed (502): nothing explains a missing pull
    deleted = [defined, _rec("PullRemoved", 180.0, reason="deleted by API"), _rec("PullFailed", 205.0, reason="x")]
    assert fate_from(deleted, 200.0) is None
    # defined again after a removal, and tried since the start
    again = [*deleted, _rec("PullDefined", 210.0, urls=[url], source_url=url), _rec("PullFailed", 215.0, reason="x")]
    assert fate_from(again, 200.0) == retrying
