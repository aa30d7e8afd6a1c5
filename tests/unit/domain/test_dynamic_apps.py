"""Dynamic applications: a Server.xml vhost's ``*`` application is the template a pull on demand copies for an app
the vhost does not have (OME's ``RequestPullStreamWithUrls``), and DynamicAppRemoval removes one that has had no
stream for 60 s, looked at every 10 s (OME's orchestrator)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from freezegun import freeze_time

from kiln.domain.dynamic_apps import IDLE_S, SWEEP_S, IdleApps, Seen
from kiln.domain.errors import Conflict, Invalid, NotFound, ReadOnly
from kiln.domain.server import AppState
from kiln.domain.vhost import CreateDynamicApp, DeleteApp, RemoveDynamicApp, Vhost
from kiln.events import catalog as ce
from kiln.timefmt import now
from tests.unit.domain.given import given

NOW = 1_000.0
TEMPLATE: dict[str, Any] = {
    "name": "*", "type": "live", "providers": {"ovt": {}},
    "publishers": {"llhls": {"chunkDuration": 0.5}, "ovt": {}},
}


def edge(template: dict[str, Any] | None = TEMPLATE) -> Vhost:
    return Vhost.starting_with("default", True, [AppState("fixed", {"name": "fixed", "type": "live"}, True)],
                               template)


def test_a_pull_for_an_app_the_vhost_lacks_makes_a_dynamic_copy_of_the_template() -> None:
    outcome = given(edge()).when(CreateDynamicApp("app", "stream"), NOW).then(
        ce.AppCreated("default", "app", {**TEMPLATE, "name": "app"}, NOW, dynamic=True))
    made = outcome.aggregate.apps["app"]
    assert made.dynamic is True and made.read_only is True  # the vhost's configuration made concrete
    assert made.config["publishers"] == TEMPLATE["publishers"] and TEMPLATE["name"] == "*"  # a copy
    assert outcome.aggregate.dynamic_apps() == ["app"]


def test_without_a_template_the_pull_fails_as_omes_does() -> None:
    given(edge(None)).when(CreateDynamicApp("app", "stream")).refused(
        NotFound, "Could not find application template for the stream: [default/app/stream]")


def test_the_second_of_two_concurrent_first_viewers_finds_the_app_made() -> None:
    made = given(edge(), ce.AppCreated("default", "app", {**TEMPLATE, "name": "app"}, NOW, dynamic=True))
    made.when(CreateDynamicApp("app", "other")).refused(Conflict)
    given(edge()).when(CreateDynamicApp("fixed", "s")).refused(Conflict)  # a configured app is never replaced


@pytest.mark.parametrize("name", ["", "*", "a/b", "a\x00b", "x" * 256])
def test_a_name_no_app_can_have_is_refused(name: str) -> None:
    given(edge()).when(CreateDynamicApp(name, "s")).refused(Invalid)


def test_removal_takes_only_dynamic_apps_and_delete_keeps_the_vhost_read_only() -> None:
    made = given(edge(), ce.AppCreated("default", "app", {**TEMPLATE, "name": "app"}, NOW, dynamic=True))
    made.when(DeleteApp("app")).refused(ReadOnly)
    made.when(RemoveDynamicApp("fixed")).refused(Invalid, "The application is not dynamic: [default/fixed]")
    made.when(RemoveDynamicApp("gone")).refused(NotFound)
    assert made.when(RemoveDynamicApp("app")).then(ce.AppDeleted("default", "app")).aggregate.apps.keys() == {"fixed"}


# -- DynamicAppRemoval's timing, on a frozen clock ------------------------------------------------------------


def _sweeps(idle: IdleApps, frozen: Any, apps: list[Seen], seconds: float) -> list[tuple[float, list[Any]]]:
    """Sweep every SWEEP_S for ``seconds``; (time since the first sweep, what was due) for each."""
    out = []
    start = now()
    while now() - start <= seconds:
        out.append((now() - start, idle.due(apps, now())))
        frozen.tick(datetime.timedelta(seconds=SWEEP_S))
    return out


def test_an_app_with_no_stream_is_due_60_s_after_it_was_made() -> None:
    with freeze_time("2026-12-07 12:00:00") as frozen:
        made = now()
        idle = IdleApps(started=made - 3600)
        due = _sweeps(idle, frozen, [Seen("default", "app", made, False)], 70)
        assert [t for t, d in due if d] == [60, 70] and due[-1][1] == [("default", "app")]
        assert IDLE_S == 60 and SWEEP_S == 10  # OME's IsUnusedFor(60), checked by a 10000 ms timer


def test_a_stream_keeps_it_and_its_end_starts_the_60_s_again() -> None:
    with freeze_time("2026-12-07 12:00:00") as frozen:
        made = now()
        idle = IdleApps(started=made)
        playing = [Seen("default", "app", made, True)]
        assert all(not d for _t, d in _sweeps(idle, frozen, playing, 300))  # five minutes with a stream
        ended = [Seen("default", "app", made, False)]
        due = _sweeps(idle, frozen, ended, 60)
        assert [t for t, d in due if d] == [60]


def test_after_a_restart_an_app_is_counted_from_the_restart_not_its_creation() -> None:
    with freeze_time("2026-12-07 12:00:00") as frozen:
        idle = IdleApps(started=now())
        long_ago = now() - 86400
        due = _sweeps(idle, frozen, [Seen("default", "old", long_ago, False)], 60)
        assert [t for t, d in due if d] == [60]


def test_an_app_removed_or_deleted_meanwhile_is_forgotten() -> None:
    with freeze_time("2026-12-07 12:00:00") as frozen:
        idle = IdleApps(started=now() - 3600)
        made = now()
        idle.due([Seen("default", "app", made, False)], now())
        frozen.tick(datetime.timedelta(seconds=30))
        assert idle.due([], now()) == []
        frozen.tick(datetime.timedelta(seconds=40))
        # made again under the same name 70 s after the first: counted from its own creation
        assert idle.due([Seen("default", "app", now() - 5, False)], now()) == []


def test_a_post_vhosts_body_with_an_application_named_star_sets_the_vhosts_template() -> None:
    """OME's CreateVirtualHost treats ``*`` in a vhost made through the API as it does in Server.xml."""
    from kiln.config.validate import fill_app_defaults
    from kiln.domain.server import CreateVhost, Server, created_vhost

    star, live = {"name": "*", "type": "live", "providers": {"ovt": {}}}, {"name": "live", "type": "live"}
    outcome = given(Server()).when(CreateVhost({"name": "vh", "applications": {"application": [star, live]}}), NOW)
    outcome.then(ce.VhostCreated("vh", {"name": "vh"}, NOW),
                 ce.AppCreated("vh", "live", fill_app_defaults(live), NOW),
                 ce.VhostTemplateSet("vh", fill_app_defaults(star)))
    state = created_vhost(outcome.events)
    assert [a.name for a in state.apps] == ["live"] and state.template == fill_app_defaults(star)
    vhost = Vhost.starting_with(state.name, state.read_only, state.apps, state.template)
    made = given(vhost).when(CreateDynamicApp("cam", "s"), NOW)
    assert made.aggregate.apps["cam"].dynamic and not made.aggregate.apps["cam"].read_only  # an API vhost's app
    assert made.when(DeleteApp("cam")).then(ce.AppDeleted("vh", "cam"))  # deletable, as any app of an API vhost
