"""An actor is never ahead of its journal: a command whose events the journal cannot store changes nothing.

A JSON string could hold a lone surrogate (``"\\ud800"``), which msgpack cannot encode. Kiln applied a command's
events to its actor before the journal framed them, so such a command answered 500 ("Internal Server Error")
while its actor kept the change: a second try with the same name or id was a 409, a push or record task ran
that no GET listed, and a restart silently forgot it. The events are now encoded before they change anything:
the command is refused with ``NotJournaled`` (HTTP: a 500 naming the failure), GETs show the state before it, the
same command with a storable value then succeeds, and a restart shows what the API showed.

The request bodies no longer carry a lone surrogate (the parser refuses it, as jsoncpp does), so the contract
sends each actor the command its route sends, with the value in it, and reads the result through the API. One
contract, run per kind of actor a request reaches (server, vhost, app, the app's tasks).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import pykka
import pytest
from starlette.testclient import TestClient

from kiln.actors.base import ask_blocking
from kiln.actors.commands import AddOutputProfiles, CreateApps, CreateVhosts, PatchApp, StartPush, StartRecord
from kiln.domain.errors import Conflict, DomainError, NotJournaled
from kiln.http.errors import api_error
from kiln.service import KilnService
from tests.unit.http.conftest import Api, start_service

UNSTORABLE = "\ud800"  # a lone surrogate: refused by msgpack (and UTF-8)


@contextmanager
def serving(data: Path) -> Iterator[tuple[KilnService, Api]]:
    service = start_service(data)
    try:
        with TestClient(service.build_api().starlette, base_url="http://kiln.test") as client:
            yield service, Api(client)
    finally:
        service.close()


class RefusedAppendContract:
    """``setup`` (requests) runs first; ``command(value)`` is what the route sends ``actor``, with ``value`` in a
    string its events keep; ``observe`` is what GETs show of the state the command changes."""

    setup: ClassVar[list[tuple[str, str, Any]]] = []
    repeatable: ClassVar[bool] = False  # the same command twice is refused the second time

    def actor(self, service: KilnService) -> pykka.ActorRef[Any]:
        raise NotImplementedError

    def command(self, value: str) -> Any:
        raise NotImplementedError

    def observe(self, api: Api) -> Any:
        raise NotImplementedError

    def test_a_command_the_journal_cannot_store_changes_nothing(self, tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
        data = tmp_path / "data"
        with serving(data) as (service, api):
            for method, path, body in self.setup:
                assert api.request(method, path, body).status_code == 200
            before = self.observe(api)
            with pytest.raises(NotJournaled) as refused:
                ask_blocking(self.actor(service), self.command("bad" + UNSTORABLE))
            assert refused.value.text.startswith("Could not journal the command: the journal cannot store ")
            assert refused.value.text.endswith("surrogates not allowed; nothing was changed")
            assert api_error(refused.value).status == 500  # in OME's envelope: "[HTTP] Could not journal ... (500)"
            assert "journal refused an append it cannot store" in caplog.text
            assert self.observe(api) == before
            ask_blocking(self.actor(service), self.command("good"))  # the same name or id, storable
            after = self.observe(api)
            assert after != before
            if not self.repeatable:  # now it exists: refused, or (a request of many items) that item refused
                try:
                    again = ask_blocking(self.actor(service), self.command("good"))
                except DomainError:
                    pass
                else:
                    assert [type(item.error) for item in again] == [Conflict], again
        with serving(data) as (service, api):
            assert self.observe(api) == after


def listed(api: Api, method: str, path: str) -> list[Any]:
    response = api.request(method, path, {} if method == "POST" else None)
    assert response.status_code == 200, response.text
    return sorted(json.dumps(item, sort_keys=True) for item in response.json()["response"])


def ref(found: pykka.ActorRef[Any] | None) -> pykka.ActorRef[Any]:
    assert found is not None
    return found


class TestServerActor(RefusedAppendContract):
    def actor(self, service: KilnService) -> pykka.ActorRef[Any]:
        return ref(service.directory.server())

    def command(self, value: str) -> Any:
        return CreateVhosts([{"name": "tv", "host": {"names": [f"tv.{value}.example"]}}])

    def observe(self, api: Api) -> Any:
        return listed(api, "GET", "/v1/vhosts")


TV = [("POST", "/v1/vhosts", [{"name": "tv"}])]
LIVE = [*TV, ("POST", "/v1/vhosts/tv/apps", [{"name": "live", "type": "live"}])]


class TestVhostActor(RefusedAppendContract):
    setup = TV

    def actor(self, service: KilnService) -> pykka.ActorRef[Any]:
        return ref(service.directory.vhost("tv"))

    def command(self, value: str) -> Any:
        return CreateApps([{"name": "live", "type": "live", "outputProfiles": {"outputProfile": [
            {"name": value, "outputStreamName": "${OriginStreamName}", "encodes": {"videos": [{"bypass": True}]}}]}}])

    def observe(self, api: Api) -> Any:
        return listed(api, "GET", "/v1/vhosts/tv/apps")


class TestAppActor(RefusedAppendContract):
    setup = LIVE

    def actor(self, service: KilnService) -> pykka.ActorRef[Any]:
        return ref(service.directory.app("tv", "live"))

    def command(self, value: str) -> Any:
        return AddOutputProfiles([{"name": "extra", "outputStreamName": f"{value}_${{OriginStreamName}}",
                                   "encodes": {"videos": [{"bypass": True}]}}])

    def observe(self, api: Api) -> Any:
        return listed(api, "GET", "/v1/vhosts/tv/apps/live/outputProfiles")


class TestAppActorPatch(RefusedAppendContract):
    setup = LIVE
    repeatable = True

    def actor(self, service: KilnService) -> pykka.ActorRef[Any]:
        return ref(service.directory.app("tv", "live"))

    def command(self, value: str) -> Any:
        """The refused PATCH sets the LL-HLS CrossDomains; the good one another section: an app actor ahead of
        its journal would carry the refused CrossDomains into it (a PATCH journals the whole configuration)."""
        if value == "good":
            return PatchApp({"providers": {"webrtc": {"timeout": 60000}}})
        return PatchApp({"publishers": {"llhls": {"crossDomains": {"urls": [f"{value}.example"]}}}})

    def observe(self, api: Api) -> Any:
        response = api.get("/v1/vhosts/tv/apps/live")
        assert response.status_code == 200, response.text
        app = response.json()["response"]
        return app["providers"], app["publishers"]


class TestTasksActorPush(RefusedAppendContract):
    def actor(self, service: KilnService) -> pykka.ActorRef[Any]:
        return ref(service.directory.tasks("default", "app"))

    def command(self, value: str) -> Any:
        return StartPush({"id": "yt", "stream": {"name": f"cam_{value}"}, "protocol": "rtmp",
                          "url": "rtmp://127.0.0.1:9/live"})

    def observe(self, api: Api) -> Any:
        return listed(api, "POST", "/v1/vhosts/default/apps/app:pushes")


class TestTasksActorRecord(RefusedAppendContract):
    def actor(self, service: KilnService) -> pykka.ActorRef[Any]:
        return ref(service.directory.tasks("default", "app"))

    def command(self, value: str) -> Any:
        return StartRecord({"id": "rec", "stream": {"name": f"cam_{value}"}})

    def observe(self, api: Api) -> Any:
        return listed(api, "POST", "/v1/vhosts/default/apps/app:records")
