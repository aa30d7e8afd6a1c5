"""A vhost's app set: create with OME's defaults, conflicts, delete, read-only Server.xml vhosts."""

from __future__ import annotations

from typing import Any

import pytest

from kiln.config.validate import fill_app_defaults
from kiln.domain.batch import decide_each
from kiln.domain.errors import ConfigInvalid, Conflict, NotFound, ReadOnly
from kiln.domain.server import AppState
from kiln.domain.vhost import CreateApp, DeleteApp, Vhost
from kiln.events import catalog as ce
from kiln.events.base import Event
from tests.unit.domain.given import given

NOW = 1_000.0


def vh() -> Vhost:
    return Vhost.starting_with("vh", False, [])


def config_vhost() -> Vhost:
    return Vhost.starting_with("default", True, [AppState("app", {"name": "app"}, True)])


def test_create_fills_omes_defaults_for_absent_sections_and_keeps_given_ones() -> None:
    body = {"name": "live", "type": "live", "providers": {"rtmp": {}}}
    outcome = given(vh()).when(CreateApp(body), NOW).then(ce.AppCreated("vh", "live", fill_app_defaults(body), NOW))
    created = outcome.aggregate.apps["live"]
    assert created.config["providers"] == {"rtmp": {}}
    assert created.config["publishers"] == {"llhls": {}, "webrtc": {}, "ovt": {}}
    assert created.read_only is False


@pytest.mark.parametrize(("body", "text"), [
    ("live", "application must be an object"),
    ({"type": "live"}, "application.name is not optional"),
    ({"name": "x", "type": "LIVE2"}, "Unknown type: LIVE2"),
    ({"name": "x", "type": "live", "foo": 1}, "Unknown item found: application.foo"),
    ({"name": "x", "type": "live", "dynamic": True}, "Unknown item found: application.dynamic"),
    ({"name": "x", "type": "live", "outputProfiles": {"outputProfile": [
        {"name": "p", "outputStreamName": "o", "encodes": {"videos": [{"codec": "h264", "bypass": False}]}}]}},
     "Bitrate must be specified when bypass is false"),
])
def test_an_invalid_app_is_a_config_error(body: Any, text: str) -> None:
    given(vh()).when(CreateApp(body)).refused(ConfigInvalid, text)


def test_an_existing_name_conflicts() -> None:
    existing = given(vh(), ce.AppCreated("vh", "live", {"name": "live"}, NOW))
    existing.when(CreateApp({"name": "live", "type": "live"})).refused(
        Conflict, "Could not create the application: [vh/live] already exists")


def test_a_server_xml_vhost_takes_no_new_app_and_loses_none() -> None:
    given(config_vhost()).when(CreateApp({"name": "x", "type": "live"})).refused(
        ReadOnly, "The VirtualHost is read-only: [default]")
    given(config_vhost()).when(DeleteApp("app")).refused(ReadOnly, "The VirtualHost is read-only: [default]")


def test_delete_refuses_an_unknown_app_first() -> None:
    given(vh()).when(DeleteApp("nope")).refused(NotFound, "Could not find the application: [vh/nope]")
    given(config_vhost()).when(DeleteApp("nope")).refused(NotFound, "Could not find the application: [default/nope]")


def test_delete_then_the_name_is_free_again() -> None:
    outcome = given(vh(), ce.AppCreated("vh", "live", {"name": "live"}, NOW)).when(DeleteApp("live")).then(
        ce.AppDeleted("vh", "live"))
    assert outcome.aggregate.apps == {}
    outcome.when(CreateApp({"name": "live", "type": "live"}), NOW).then(
        ce.AppCreated("vh", "live", fill_app_defaults({"name": "live", "type": "live"}), NOW))


def test_events_of_another_vhost_are_not_this_vhosts() -> None:
    agg = given(vh(), ce.AppCreated("other", "live", {"name": "live"}, NOW)).aggregate
    assert agg.apps == {}


def _name_of(events: list[Event]) -> str:
    created = events[0]
    assert isinstance(created, ce.AppCreated)
    return created.name


def test_post_apps_an_invalid_item_stops_the_rest_and_earlier_items_stay() -> None:
    agg = vh()
    before = CreateApp({"name": "before", "type": "live"})
    batch = decide_each(agg, [before, before, CreateApp({"name": "x", "type": "LIVE2"}),
                              CreateApp({"name": "after", "type": "live"})],
                        NOW, list, respond=_name_of, per_item=(Conflict,))
    assert isinstance(batch.stopped_by, ConfigInvalid) and batch.stopped_by.text == "Unknown type: LIVE2"
    assert [r.response for r in batch.results] == ["before", None]
    second = batch.results[1].error
    assert isinstance(second, Conflict)
    assert second.text == "Could not create the application: [vh/before] already exists"
    assert list(agg.apps) == ["before"]
