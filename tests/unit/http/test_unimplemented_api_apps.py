"""An app configured through the API is told what Kiln does not run, as one from Server.xml is at startup: one
WARNING line per element, in the same words; the API's answer stays OME's."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.unit.http.conftest import Api, start_service

DRM = ("configuration vhost vh app live: Application.Publishers.LLHLS.DRM: not implemented by Kiln, LL-HLS DRM: "
       "streams are sent in the clear")
TEMPLATE = ("configuration vhost vh app live: Application.OutputProfiles.OutputProfile.Playlist.RenditionTemplate: "
            "not implemented by Kiln, rendition templates: only a playlist's Rendition elements make renditions")
PROFILE = {"name": "abr", "outputStreamName": "${OriginStreamName}_abr",
           "encodes": {"videos": [{"name": "v", "bypass": True}]},
           "playlists": [{"name": "abr", "fileName": "abr",
                          "renditionTemplates": [{"name": "${Height}p", "videoTemplate": {"encodingType": "all"}}]}]}


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "not implemented" in
            r.getMessage()]


def test_api_apps_and_profiles_warn_what_kiln_does_not_run(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    assert api.post("/v1/vhosts", [{"name": "vh", "host": {"names": ["vh.example"]}}]).status_code == 200
    plain = api.post("/v1/vhosts/vh/apps", [{"name": "live", "type": "live"}])
    assert plain.status_code == 200 and _warnings(caplog) == []
    patched = api.patch("/v1/vhosts/vh/apps/live", {"publishers": {"llhls": {"drm": {"enable": True}}}})
    assert patched.status_code == 200, patched.text
    assert _warnings(caplog) == [DRM]
    caplog.clear()
    r = api.post("/v1/vhosts/vh/apps/live/outputProfiles", [PROFILE])
    assert r.status_code == 200, r.text
    assert _warnings(caplog) == [TEMPLATE]
    caplog.clear()
    r = api.patch("/v1/vhosts/vh/apps/live/outputProfiles/abr", {k: v for k, v in PROFILE.items() if k != "name"})
    assert r.status_code == 200, r.text
    assert _warnings(caplog) == [TEMPLATE]
    caplog.clear()
    made = api.post("/v1/vhosts/vh/apps", [{"name": "other", "type": "live",
                                            "publishers": {"llhls": {"drm": {"enable": True}}}}])
    assert made.status_code == 200, made.text
    assert _warnings(caplog) == [DRM.replace("app live", "app other")]


def test_api_vhosts_warn_what_kiln_does_not_run(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    assert api.post("/v1/vhosts", [{"name": "plain", "host": {"names": ["p.example"]}}]).status_code == 200
    assert _warnings(caplog) == []
    r = api.post("/v1/vhosts", [{"name": "cors", "host": {"names": ["c.example"]}, "crossDomains": {"urls": ["*"]}}])
    assert r.status_code == 200, r.text
    assert _warnings(caplog) == ["configuration vhost cors: VirtualHost.CrossDomains: not implemented by Kiln, no "
                                 "default CORS for the vhost's apps: set CrossDomains in each app's publishers"]


def test_recovered_api_apps_are_warned_at_every_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Server.xml's apps are warned at each start by ``kiln serve``; API-made ones, recovered from the journal, by the
    service as it opens (the config's read-only ones are not repeated)."""
    data = tmp_path / "data"
    first = start_service(data)
    try:
        app = first.build_api()
        with TestClient(app.starlette, base_url="http://kiln.test") as client:
            api = Api(client)
            assert api.post("/v1/vhosts", [{"name": "vh", "host": {"names": ["vh.example"]},
                                            "crossDomains": {"urls": ["*"]}}]).status_code == 200
            assert api.post("/v1/vhosts/vh/apps", [{"name": "live", "type": "live", "publishers": {
                "llhls": {"drm": {"enable": True}}}}]).status_code == 200
    finally:
        first.close()
    caplog.clear()
    caplog.set_level(logging.WARNING)
    again = start_service(data)
    try:
        assert _warnings(caplog) == [
            "configuration vhost vh: VirtualHost.CrossDomains: not implemented by Kiln, no default CORS for the "
            "vhost's apps: set CrossDomains in each app's publishers", DRM]
    finally:
        again.close()


def test_an_api_app_named_star_is_told_it_is_no_template(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    """A vhost's template comes with the vhost (Server.xml, POST vhosts); an app named ``*`` added later through
    POST apps is an app of that name, as in OME, and the warning says so."""
    caplog.set_level(logging.WARNING)
    assert api.post("/v1/vhosts", [{"name": "vh", "host": {"names": ["vh.example"]}}]).status_code == 200
    assert api.post("/v1/vhosts/vh/apps", [{"name": "*", "type": "live"}]).status_code == 200
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [line for line in said if "Name (*)" in line] == [
        "configuration vhost vh app *: Application.Name (*): an app added to a vhost through POST apps is an app named "
        "'*', not a template (as in OME: a vhost's template for dynamic applications comes from Server.xml or its "
        "POST vhosts body)"]
    assert api.get("/v1/vhosts/vh/apps").json()["response"] == ["*"]
