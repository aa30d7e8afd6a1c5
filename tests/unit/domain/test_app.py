"""An app's configuration and output profiles: PATCH merge, add/replace/delete profiles, refusals
with OME's texts, read-only apps of Server.xml vhosts."""

from __future__ import annotations

from typing import Any

import pytest

from kiln.config.validate import fill_app_defaults
from kiln.domain.app import (
    AddOutputProfile,
    App,
    DeleteOutputProfile,
    PatchApp,
    ReplaceOutputProfile,
    one_addition,
    profile_commands,
)
from kiln.domain.app_config import profiles_of
from kiln.domain.batch import decide_each
from kiln.domain.errors import ConfigInvalid, Conflict, Invalid, NotFound, ReadOnly
from kiln.events import catalog as ce
from kiln.events.base import Event
from tests.unit.domain.given import given

NOW = 1_000.0
CONFIG = fill_app_defaults({"name": "live", "type": "live"})
EXTRA = {"name": "extra", "outputStreamName": "${OriginStreamName}_x",
         "encodes": {"videos": [{"name": "v", "bypass": True}]}}


def live() -> App:
    return App("vh", "live", CONFIG)


def names(app: App) -> list[Any]:
    return [p.get("name") for p in profiles_of(app.config)]


# -- PATCH --

def test_patch_merges_objects_replaces_arrays_and_null_removes() -> None:
    body = {"publishers": {"webrtc": None, "push": {}}, "providers": {"srt": None}}
    outcome = given(live()).when(PatchApp(body), NOW)
    (patched,) = outcome.events
    assert isinstance(patched, ce.AppPatched) and patched.patch == body
    assert patched.config["publishers"] == {"llhls": {}, "ovt": {}, "push": {}}
    assert "srt" not in patched.config["providers"]
    assert outcome.aggregate.config == patched.config


@pytest.mark.parametrize("body", [[1], "x", 5, None])
def test_patch_body_must_be_an_object(body: Any) -> None:
    given(live()).when(PatchApp(body)).refused(Invalid, "Request body must be an object")


def test_patch_forbidden_keys_are_checked_in_omes_order() -> None:
    given(live()).when(PatchApp({"outputProfiles": {}, "dynamic": True, "name": "x"})).refused(
        Invalid, "Cannot change [name] using this API")
    given(live()).when(PatchApp({"outputProfiles": {}, "dynamic": True})).refused(
        Invalid, "Cannot change [dynamic] using this API")
    given(live()).when(PatchApp({"outputProfiles": None})).refused(
        Invalid, "Cannot change [outputProfiles] using this API")


@pytest.mark.parametrize(("body", "text"), [
    ({"type": "bogus"}, "Unknown type: bogus"),
    ({"type": None}, "application.type is not optional"),
    ({"providers": {"nope": {}}}, "Unknown item found: application.providers.nope"),
])
def test_patch_whose_result_is_invalid_is_a_config_error_and_changes_nothing(body: Any, text: str) -> None:
    assert given(live()).when(PatchApp(body)).refused(ConfigInvalid, text).aggregate.config == CONFIG


# -- POST outputProfiles --

def test_add_a_profile_appends_it() -> None:
    outcome = given(live()).when(AddOutputProfile(EXTRA)).then(ce.OutputProfilesAdded("vh", "live", [EXTRA]))
    assert names(outcome.aggregate) == ["default", "extra"]


def test_add_an_existing_name_conflicts() -> None:
    given(live()).when(AddOutputProfile({**EXTRA, "name": "default"})).refused(
        Conflict, 'The output profile "default" already exists')
    given(live(), ce.OutputProfilesAdded("vh", "live", [EXTRA])).when(AddOutputProfile(EXTRA)).refused(
        Conflict, 'The output profile "extra" already exists')


def test_add_a_profile_the_schema_refuses_is_a_wrapped_config_error() -> None:
    bad = {"name": "x", "outputStreamName": "o", "encodes": {"videos": [{"bypass": False, "codec": "h264"}]}}
    given(live()).when(AddOutputProfile(bad)).refused(
        Invalid, "[Config] Bitrate must be specified when bypass is false")
    given(live()).when(AddOutputProfile({**EXTRA, "foo": 1})).refused(
        Invalid, "[Config] Unknown item found: application.outputProfiles.outputProfile.foo")


@pytest.mark.parametrize(("element", "text"), [
    (5, '"name", "outputStreamName", "encodes" are required'),
    ({"name": "x", "outputStreamName": "o"}, '"name", "outputStreamName", "encodes" are required'),
    ({"name": "x", "outputStreamName": 1, "encodes": {"videos": [{"bypass": True}]}},
     '"name" must be a string and "encodes" must be an object'),
    ({"name": "x", "outputStreamName": "o", "encodes": []}, '"name" must be a string and "encodes" must be an object'),
    ({"name": "x", "outputStreamName": "o", "encodes": {"images": []}},
     '"encodes" must have at least one item (videos array or audios array)'),
    ({"name": "x", "outputStreamName": "o", "encodes": {"videos": {}}}, '"encodes.videos" must be an array'),
    ({"name": "x", "outputStreamName": "o", "encodes": {"audios": []}},
     '"encodes" must have at least one item (videos array or audios array) and each item must have at least one '
     "item"),
])
def test_post_profiles_checks_every_element_shape_before_deciding_any(element: Any, text: str) -> None:
    with pytest.raises(Invalid) as refused:
        profile_commands([EXTRA, element, {"bogus": 1}])
    assert refused.value.text == f"Invalid request body: {text}"


def test_post_profiles_body_must_be_an_array() -> None:
    with pytest.raises(Invalid) as refused:
        profile_commands(EXTRA)
    assert refused.value.text == "Request body must be an array"


def _profile(events: list[Event]) -> Any:
    added = events[0]
    assert isinstance(added, ce.OutputProfilesAdded)
    return added.profiles[0]


def test_post_profiles_on_a_trial_copy_duplicates_answer_per_item_and_the_app_is_untouched() -> None:
    app = live()
    trial = app.trial()
    batch = decide_each(trial, profile_commands([EXTRA, {**EXTRA, "outputStreamName": "o"}]), NOW, list,
                        respond=_profile, per_item=(Conflict,))
    assert batch.stopped_by is None
    assert batch.results[0].response == EXTRA
    error = batch.results[1].error
    assert isinstance(error, Conflict) and error.text == 'The output profile "extra" already exists'
    assert batch.events == [ce.OutputProfilesAdded("vh", "live", [EXTRA])]
    assert names(trial) == ["default", "extra"] and names(app) == ["default"]


def test_profiles_added_one_by_one_are_journaled_as_one_addition_that_applies_the_same() -> None:
    other = {**EXTRA, "name": "other"}
    trial = live().trial()
    batch = decide_each(trial, profile_commands([EXTRA, {**EXTRA, "name": "default"}, other]), NOW, list,
                        respond=_profile, per_item=(Conflict,))
    (joined,) = one_addition(batch.events)
    assert joined == ce.OutputProfilesAdded("vh", "live", [EXTRA, other])
    replayed = given(live(), joined).aggregate
    assert replayed.config == trial.config and names(replayed) == ["default", "extra", "other"]
    assert one_addition([]) == []


# -- PATCH outputProfile --

def test_replace_is_a_full_replacement_that_keeps_the_name() -> None:
    body = {"outputStreamName": "${OriginStreamName}_x", "encodes": {"audios": [{"name": "a", "bypass": True}]}}
    outcome = given(live()).when(ReplaceOutputProfile("default", body)).then(
        ce.OutputProfileReplaced("vh", "live", {"name": "default", **body}))
    assert outcome.aggregate.profile("default") == {"name": "default", **body}


def test_replace_refusals_in_omes_order() -> None:
    given(live()).when(ReplaceOutputProfile("nope", [1])).refused(Invalid, "Request body must be an object")
    given(live()).when(ReplaceOutputProfile("nope", {"name": "x"})).refused(
        NotFound, "Could not find the output profile: [vh/live/nope]")
    for key in ("name", "Name", "nAmE"):
        given(live()).when(ReplaceOutputProfile("default", {"outputStreamName": "x", key: "default"})).refused(
            Invalid, f"The {key} entry cannot be specified in the modification")
    given(live()).when(ReplaceOutputProfile("default", {"encodes": {"videos": [{"bypass": True}]}})).refused(
        Invalid, "[Config] application.outputProfiles.outputProfile.outputStreamName is not optional")


# -- DELETE outputProfile --

def test_delete_a_profile() -> None:
    outcome = given(live(), ce.OutputProfilesAdded("vh", "live", [EXTRA])).when(DeleteOutputProfile("default")).then(
        ce.OutputProfileDeleted("vh", "live", "default"))
    assert names(outcome.aggregate) == ["extra"]
    outcome.when(DeleteOutputProfile("default")).refused(
        NotFound, "Could not find the output profile: [vh/live/default]")


# -- read-only --

@pytest.mark.parametrize("command", [
    PatchApp([1]), AddOutputProfile(EXTRA), ReplaceOutputProfile("nope", [1]), DeleteOutputProfile("nope"),
])
def test_an_app_of_a_server_xml_vhost_refuses_every_change_first(command: Any) -> None:
    given(App("default", "app", CONFIG, read_only=True)).when(command).refused(
        ReadOnly, "The VirtualHost is read-only: [default]")


def test_events_replayed_rebuild_the_configuration() -> None:
    replaced = {"name": "extra", "outputStreamName": "o", "encodes": {"audios": [{"name": "a", "bypass": True}]}}
    agg = given(App("vh", "live", {}),
                ce.AppCreated("vh", "live", CONFIG, NOW),
                ce.AppPatched("vh", "live", {**CONFIG, "type": "vod"}, {"type": "vod"}),
                ce.OutputProfilesAdded("vh", "live", [EXTRA]),
                ce.OutputProfileReplaced("vh", "live", replaced),
                ce.OutputProfileDeleted("vh", "live", "default")).aggregate
    assert agg.config == {**CONFIG, "type": "vod", "outputProfiles": {"outputProfile": [replaced]}}
