"""What HTTP reads of a push's sessions while a session ends: the ended session is counted exactly
once whether or not the read model has its PushSessionEnded yet, so totals never dip or double."""

from __future__ import annotations

from kiln.actors.push import SessionCounters
from kiln.domain.push import PushStatus
from kiln.events.tasks import PushCreated, PushProgress, PushSessionEnded, PushSpec
from kiln.http.push import push_json

SPEC = PushSpec("vh", "app", "p1", "cam", [], [], "rtmp", "rtmp://h/live", "k")


def read_model() -> PushStatus:
    return PushStatus.created(PushCreated.of(SPEC, 10.0))


def shown(status: PushStatus, sessions: SessionCounters) -> tuple[int, int]:
    out = push_json(status, sessions)
    return out["totalsentBytes"], out["sentBytes"]


def test_a_session_end_is_counted_once_before_and_after_the_read_model_has_it() -> None:
    status, sessions = read_model(), SessionCounters(0)
    sessions.live.sent_bytes = 900
    status.fold(PushProgress("vh", "app", "p1", 600, 600))
    assert shown(status, sessions) == (900, 900)
    sessions.session_ended(900, 1000)  # decided; PushSessionEnded still on its way to the journal
    assert shown(status, sessions) == (900, 900)
    sessions.live.sent_bytes = 50  # the next session already sends
    assert shown(status, sessions) == (900, 900)
    status.fold(PushSessionEnded("vh", "app", "p1", 900, 1000, "stream ended"))
    assert shown(status, sessions) == (950, 50)


def test_after_a_restart_the_live_counters_follow_the_recovered_sequence() -> None:
    status = read_model()
    for ev in (PushSessionEnded("vh", "app", "p1", 700, 700, ""), PushSessionEnded("vh", "app", "p1", 300, 300, "")):
        status.fold(ev)
    sessions = SessionCounters(status.sequence)
    sessions.live.sent_bytes = 10
    assert shown(status, sessions) == (1010, 10)
    assert shown(status, SessionCounters(0)) == (1000, 0)  # counters of another sequence are never added
