"""The server's vhost set: create (apps inside included), delete, read-only vhosts from Server.xml."""

from __future__ import annotations

from typing import Any

import pytest

from kiln.config.validate import fill_app_defaults
from kiln.domain.aggregate import decide_and_apply
from kiln.domain.app_config import require_array
from kiln.domain.batch import ItemResult, decide_each
from kiln.domain.errors import ConfigInvalid, Conflict, Invalid, NotFound, ReadOnly
from kiln.domain.server import AppState, CreateVhost, DeleteVhost, Server, VhostState, created_vhost
from kiln.events import catalog as ce
from kiln.events.base import Event
from tests.unit.domain.given import given

NOW = 1_000.0


def server() -> Server:
    """A server started with the Server.xml vhost ``default`` (read-only) and nothing else."""
    return Server.starting_with([VhostState("default", {"name": "default"}, True,
                                            (AppState("app", {"name": "app"}, True),))])


def test_create_journals_the_vhost_without_its_apps_then_each_app_with_defaults() -> None:
    app = {"name": "x", "type": "live"}
    body = {"name": "v", "host": {"names": ["v.example"]}}
    outcome = given(server()).when(CreateVhost({**body, "applications": {"application": [app]}}), NOW).then(
        ce.VhostCreated("v", body, NOW),
        ce.AppCreated("v", "x", fill_app_defaults(app), NOW),
    )
    assert created_vhost(outcome.events) == VhostState("v", body, False, (AppState("x", fill_app_defaults(app)),))
    assert outcome.aggregate.vhost("v") == VhostState("v", body)


def test_apps_inside_a_vhost_must_be_an_array() -> None:
    given(server()).when(CreateVhost({"name": "v", "applications": {"application": {"name": "x"}}})).refused(
        ConfigInvalid, "application must be an array")


@pytest.mark.parametrize(("body", "text"), [
    ("v", "virtualHost must be an object"),
    ([{"name": "v"}], "virtualHost must be an object"),
    ({"host": {"names": ["*"]}}, "virtualHost.name is not optional"),
    ({"name": "h", "host": {}}, "virtualHost.host.names is not optional"),
    ({"name": "h", "host": {"names": ["*"], "bogus": 1}}, "Unknown item found: virtualHost.host.bogus"),
    ({"name": "h", "nope": True}, "Unknown item found: virtualHost.nope"),
    ({"name": "h", "applications": {"application": [{"name": "x", "type": "LIVE2"}]}}, "Unknown type: LIVE2"),
])
def test_an_invalid_vhost_is_a_config_error(body: Any, text: str) -> None:
    given(server()).when(CreateVhost(body)).refused(ConfigInvalid, text)


def test_an_existing_name_conflicts_whether_from_server_xml_or_the_api() -> None:
    given(server()).when(CreateVhost({"name": "default"})).refused(
        Conflict, "The virtual host already exists: [default]")
    given(server(), ce.VhostCreated("v", {"name": "v"}, NOW)).when(CreateVhost({"name": "v"})).refused(
        Conflict, "The virtual host already exists: [v]")


def test_delete_an_api_vhost_then_its_name_is_free_again() -> None:
    outcome = given(server(), ce.VhostCreated("v", {"name": "v"}, NOW)).when(DeleteVhost("v")).then(
        ce.VhostDeleted("v"))
    outcome.when(CreateVhost({"name": "v"})).then(ce.VhostCreated("v", {"name": "v"}, NOW))


def test_delete_refuses_an_unknown_vhost_before_a_read_only_one() -> None:
    given(server()).when(DeleteVhost("nope")).refused(NotFound, "Could not find the virtual host: [nope]")
    given(server()).when(DeleteVhost("default")).refused(ReadOnly, "The VirtualHost is read-only: [default]")


def test_post_vhosts_body_must_be_an_array() -> None:
    for body in ({"name": "v"}, None, "x", 5):
        with pytest.raises(Invalid) as refused:
            require_array(body)
        assert refused.value.text == "Request body must be an array"


def _config_of(events: list[Event]) -> Any:
    created = events[0]
    assert isinstance(created, ce.VhostCreated)
    return created.config


def test_post_vhosts_decides_each_item_on_its_own() -> None:
    agg = server()
    batch = decide_each(agg, [CreateVhost({"name": "good"}), CreateVhost({"name": "bad", "nope": True}),
                              CreateVhost({"name": "twin"}), CreateVhost({"name": "twin"})],
                        NOW, list, respond=_config_of, per_item=(Invalid, Conflict))
    assert batch.stopped_by is None
    assert [r.response for r in batch.results] == [{"name": "good"}, None, {"name": "twin"}, None]
    errors = [r.error for r in batch.results]
    assert errors[0] is None and errors[2] is None
    assert isinstance(errors[1], ConfigInvalid) and errors[1].text == "Unknown item found: virtualHost.nope"
    assert isinstance(errors[3], Conflict) and errors[3].text == "The virtual host already exists: [twin]"
    assert batch.events == [ce.VhostCreated("good", {"name": "good"}, NOW),
                            ce.VhostCreated("twin", {"name": "twin"}, NOW)]
    assert list(agg.vhosts) == ["default", "good", "twin"]
    assert batch.results[0] == ItemResult(response={"name": "good"})


def test_a_vhost_whose_host_names_an_earlier_vhost_all_matches_is_shadowed_by_it() -> None:
    agg = Server.starting_with([VhostState("default", {"name": "default", "host": {"names": ["*"]}}, True)])
    decide_and_apply(agg, CreateVhost({"name": "tv", "host": {"names": ["tv.example.com"]}}), NOW, list)
    assert agg.shadowed("tv") == {"tv.example.com": "default"}
    assert agg.shadowed("default") == {}


def test_a_vhost_with_one_reachable_name_is_not_shadowed() -> None:
    agg = Server.starting_with([VhostState("site", {"name": "site", "host": {"names": ["*.example.com"]}}, True)])
    decide_and_apply(agg, CreateVhost({"name": "tv", "host": {"names": ["tv.example.com", "tv.example.org"]}}), NOW,
                     list)
    decide_and_apply(agg, CreateVhost({"name": "any", "host": {"names": ["*"]}}), NOW, list)
    assert agg.shadowed("tv") == {}
    assert agg.shadowed("any") == {}
