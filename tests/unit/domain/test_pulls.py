"""Pull definitions: durable from the first connection, removed when the pull gives up."""

from __future__ import annotations

from kiln.domain.pulls import SERVER_STOPPING, AppPulls, PullConnected, PullGaveUp
from kiln.events.streams import PullDefined, PullFailed, PullRemoved, PullSourceChanged
from tests.unit.domain.given import given

PROPS = {"persistent": True, "retryCount": 3}


def defined(name: str = "cam", now: float = 1_000.0) -> PullDefined:
    return PullDefined("default", "app", name, ["rtsp://h/a"], PROPS, True, now)


def test_the_first_connection_defines_the_pull() -> None:
    given(AppPulls("default", "app")).when(PullConnected("cam", ("rtsp://h/a",), PROPS, True), now=1_000.0).then(
        defined())


def test_a_reconnection_or_a_resumed_pull_defines_nothing_new() -> None:
    given(AppPulls("default", "app"), defined()).when(PullConnected("cam", ("rtsp://h/a",), PROPS, True)).then()


def test_giving_up_removes_the_definition() -> None:
    pulls = AppPulls("default", "app")
    given(pulls, defined()).when(PullGaveUp("cam", "source lost, retries exhausted")).then(
        PullRemoved("default", "app", "cam", "source lost, retries exhausted"))
    assert pulls.to_resume() == []


def test_a_pull_that_never_connected_journals_why_and_defines_nothing() -> None:
    pulls = AppPulls("default", "app")
    reason = "could not connect to any url (Server returned 401 Unauthorized (authorization failed))"
    given(pulls).when(PullGaveUp("cam", reason)).then(PullFailed("default", "app", "cam", reason))
    assert pulls.to_resume() == []
    given(pulls).when(PullGaveUp("cam", SERVER_STOPPING)).then()  # stopped while connecting: not a failure


def test_a_server_stop_keeps_the_definition_for_the_next_start() -> None:
    pulls = AppPulls("default", "app")
    given(pulls, defined()).when(PullGaveUp("cam", SERVER_STOPPING)).then()
    assert pulls.to_resume() == [defined()]


def test_only_this_apps_definitions_are_folded() -> None:
    pulls = AppPulls("default", "app")
    given(pulls, defined(), PullDefined("default", "other", "cam2", ["rtsp://h/b"], {}, False, 1.0),
          PullRemoved("default", "other", "cam", "gone"))
    assert pulls.to_resume() == [defined()]


def test_where_a_pull_comes_from_and_why_is_journaled_and_a_failover_too() -> None:
    pulls = AppPulls("default", "app")
    cause = "OriginMapStore key=app/cam"
    first = PullDefined("default", "app", "cam", ["ovt://o1:9000/app/cam"], PROPS, True, 1_000.0, cause,
                        "ovt://o1:9000/app/cam")
    given(pulls).when(PullConnected("cam", ("ovt://o1:9000/app/cam",), PROPS, True, "ovt://o1:9000/app/cam",
                                    cause), now=1_000.0).then(first)
    given(pulls).when(PullConnected("cam", ("ovt://o1:9000/app/cam",), PROPS, True, "ovt://o1:9000/app/cam",
                                    cause)).then()  # the same origin again: nothing new
    given(pulls).when(PullConnected("cam", ("ovt://o2:9000/app/cam",), PROPS, True, "ovt://o2:9000/app/cam",
                                    cause)).then(
        PullSourceChanged("default", "app", "cam", "ovt://o2:9000/app/cam", cause))
    assert pulls.sources == {"cam": "ovt://o2:9000/app/cam"}
    given(pulls).when(PullGaveUp("never", "could not connect to any url (404)", cause)).then(
        PullFailed("default", "app", "never", "could not connect to any url (404)", cause))
