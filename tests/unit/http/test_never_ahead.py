"""An actor is never ahead of its journal: a command whose events the journal cannot store changes nothing.

A JSON string may hold a lone surrogate (``"\\ud800"``), which msgpack cannot encode. Kiln applied a command's
events to its actor before the journal framed them, so such a command answered 500 ("Internal Server Error")
while its actor kept the change: a second try with the same name or id was a 409, a push or record task ran
that no GET listed, and a restart silently forgot it. The events are now encoded before they change anything:
the command answers a 500 naming the failure, GETs show the state before it, the same command with a storable
value then succeeds, and a restart shows what the API showed.

One contract, run per kind of actor a request reaches (server, vhost, app, the app's tasks).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import pytest
from starlette.testclient import TestClient

from tests.unit.http.conftest import Api, start_service

UNSTORABLE = "\ud800"  # a lone surrogate: valid in a JSON string, refused by msgpack (and UTF-8)
PUSH = "/v1/vhosts/default/apps/app"


@contextmanager
def serving(data: Path) -> Iterator[Api]:
    service = start_service(data)
    try:
        with TestClient(service.build_api().starlette, base_url="http://kiln.test") as client:
            yield Api(client)
    finally:
        service.close()


def send(api: Api, method: str, path: str, body: Any) -> Any:
    """The body as raw JSON (httpx's encoder refuses a lone surrogate)."""
    return api.request(method, path, raw=json.dumps(body).encode(), headers={"Content-Type": "application/json"})


class RefusedAppendContract:
    """``setup`` runs first; ``command(value)`` carries ``value`` in a string its events keep; ``observe`` is what
    GETs show of the state the command changes."""

    setup: ClassVar[list[tuple[str, str, Any]]] = []
    method: ClassVar[str] = "POST"
    path: ClassVar[str]

    def command(self, value: str) -> Any:
        raise NotImplementedError

    def observe(self, api: Api) -> Any:
        raise NotImplementedError

    def test_a_command_the_journal_cannot_store_changes_nothing(self, tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
        data = tmp_path / "data"
        with serving(data) as api:
            for method, path, body in self.setup:
                assert send(api, method, path, body).status_code == 200
            before = self.observe(api)
            refused = send(api, self.method, self.path, self.command("bad" + UNSTORABLE))
            assert refused.status_code == 500, refused.text
            message = refused.json()["message"]
            assert message.startswith("[HTTP] Could not journal the command: the journal cannot store ")
            assert "surrogates not allowed; nothing was changed (500)" in message
            assert "journal refused an append it cannot store" in caplog.text
            assert self.observe(api) == before
            done = send(api, self.method, self.path, self.command("good"))  # the same name or id, storable
            assert done.status_code == 200, done.text
            after = self.observe(api)
            assert after != before
            assert send(api, self.method, self.path, self.command("good")).status_code != 200  # now it exists
        with serving(data) as api:
            assert self.observe(api) == after


def names(api: Api, path: str) -> list[Any]:
    response = api.get(path)
    assert response.status_code == 200, response.text
    return sorted(response.json()["response"])


class TestServerActor(RefusedAppendContract):
    path = "/v1/vhosts"

    def command(self, value: str) -> Any:
        return [{"name": "tv", "host": {"names": [f"tv.{value}.example"]}}]

    def observe(self, api: Api) -> Any:
        return names(api, "/v1/vhosts")


class TestVhostActor(RefusedAppendContract):
    setup = [("POST", "/v1/vhosts", [{"name": "tv"}])]
    path = "/v1/vhosts/tv/apps"

    def command(self, value: str) -> Any:
        return [{"name": "live", "type": "live", "outputProfiles": {"outputProfile": [
            {"name": value, "outputStreamName": "${OriginStreamName}", "encodes": {"videos": [{"bypass": True}]}}]}}]

    def observe(self, api: Api) -> Any:
        return names(api, "/v1/vhosts/tv/apps")


class TestAppActor(RefusedAppendContract):
    setup = [("POST", "/v1/vhosts", [{"name": "tv"}]),
             ("POST", "/v1/vhosts/tv/apps", [{"name": "live", "type": "live"}])]
    path = "/v1/vhosts/tv/apps/live/outputProfiles"

    def command(self, value: str) -> Any:
        return [{"name": "extra", "outputStreamName": f"{value}_${{OriginStreamName}}",
                 "encodes": {"videos": [{"bypass": True}]}}]

    def observe(self, api: Api) -> Any:
        return names(api, "/v1/vhosts/tv/apps/live/outputProfiles")


class TestAppActorPatch(RefusedAppendContract):
    setup = [("POST", "/v1/vhosts", [{"name": "tv"}]),
             ("POST", "/v1/vhosts/tv/apps", [{"name": "live", "type": "live"}])]
    method = "PATCH"
    path = "/v1/vhosts/tv/apps/live"

    def command(self, value: str) -> Any:
        return {"publishers": {"llhls": {"crossDomains": {"urls": [f"{value}.example"]}}}}

    def observe(self, api: Api) -> Any:
        response = api.get(self.path)
        assert response.status_code == 200, response.text
        return response.json()["response"]["publishers"]

    def test_a_command_the_journal_cannot_store_changes_nothing(self, tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
        """A PATCH may be repeated: the last line of the contract does not hold, the rest does."""
        data = tmp_path / "data"
        with serving(data) as api:
            for method, path, body in self.setup:
                assert send(api, method, path, body).status_code == 200
            before = self.observe(api)
            refused = send(api, self.method, self.path, self.command("bad" + UNSTORABLE))
            assert refused.status_code == 500 and "nothing was changed" in refused.json()["message"], refused.text
            assert self.observe(api) == before
            assert send(api, self.method, self.path, self.command("good")).status_code == 200
            after = self.observe(api)
            assert after != before
        with serving(data) as api:
            assert self.observe(api) == after


class TestTasksActorPush(RefusedAppendContract):
    path = PUSH + ":startPush"

    def command(self, value: str) -> Any:
        return {"id": "yt", "stream": {"name": f"cam_{value}"}, "protocol": "rtmp", "url": "rtmp://127.0.0.1:9/live"}

    def observe(self, api: Api) -> Any:
        response = api.post(PUSH + ":pushes", {})
        assert response.status_code == 200, response.text
        return sorted((p["id"], p["stream"]["name"]) for p in response.json()["response"])


class TestTasksActorRecord(RefusedAppendContract):
    path = PUSH + ":startRecord"

    def command(self, value: str) -> Any:
        return {"id": "rec", "stream": {"name": f"cam_{value}"}}

    def observe(self, api: Api) -> Any:
        response = api.post(PUSH + ":records", {})
        assert response.status_code == 200, response.text
        return sorted((r["id"], r["stream"]["name"]) for r in response.json()["response"])
