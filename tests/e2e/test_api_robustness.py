"""Bad input against a real ``kiln serve``: OME's envelope every time, nothing half-applied."""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from kiln.journal.cli import run
from tests.e2e.kiln_process import KilnProcess

pytestmark = pytest.mark.e2e


def journal_types(k: KilnProcess, entity: str) -> list[str]:
    out = io.StringIO()
    run(["show", "-d", str(k.data_dir), "--entity", entity, "--json"], out)
    return [json.loads(line)["type"] for line in out.getvalue().splitlines()]


def test_concurrent_conflicting_creates_make_exactly_one(kiln: KilnProcess) -> None:
    def create(_: int) -> httpx.Response:
        with httpx.Client(base_url=str(kiln.api.base_url), headers=kiln.api.headers, timeout=30) as c:
            return c.post("/v1/vhosts", json=[{"name": "race", "host": {"names": ["race.example"]}}])

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(create, range(32)))
    def code(r: httpx.Response) -> int:
        body = r.json()  # 200 → envelope with a response array; otherwise the array of item results
        return (body["response"] if isinstance(body, dict) else body)[0]["statusCode"]

    codes = sorted(code(r) for r in answers)
    assert codes == [200] + [409] * 31
    assert journal_types(kiln, "vhost:race") == ["VhostCreated"]


@pytest.mark.parametrize(("method", "path", "body", "status", "message"), [
    ("POST", "/v1/vhosts", b"{not json", 400, None),
    ("POST", "/v1/vhosts", b'{"name": "x"}', 400, None),
    ("GET", "/v1/vhosts/%00bad", None, 404, None),
    ("GET", "/v1/vhosts/" + "x" * 5000, None, 404, None),
    ("GET", "/v1/vhosts/default/apps/app/streams/%F0%9F%94%A5", None, 404, None),
    ("DELETE", "/v1/vhosts/default/apps/app/streams/..%2F..%2Fetc", None, 404, None),
    ("PATCH", "/v1/vhosts/default/apps/app", b"[1, 2, 3]", 403, None),  # read-only is checked first
    ("POST", "/v1/vhosts/default/apps/app:startPush", b'{"id": 7, "stream": "s"}', 400, None),
    ("GET", "/v1/nothing/here", None, 404, "[HTTP] Controller not found (404)"),
])
def test_bad_requests_get_an_envelope_never_a_500(kiln: KilnProcess, method: str, path: str, body: bytes | None,
                                                 status: int, message: str | None) -> None:
    r = kiln.api.request(method, path, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    envelope = r.json()
    assert envelope["statusCode"] == status and envelope["message"].startswith("[")
    if message is not None:
        assert envelope["message"] == message
    if body == b"{not json":
        assert envelope["message"].startswith("[HTTP] [JSON] * Line 1, Column 2")
    assert "Traceback" not in kiln.log_tail(200)


def test_a_huge_body_is_refused_and_nothing_changes(kiln: KilnProcess) -> None:
    huge = json.dumps([{"name": f"v{i}", "host": {"names": ["x" * 200]}} for i in range(20_000)]).encode()
    r = kiln.api.post("/v1/vhosts", content=huge, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["statusCode"] == 413
    assert kiln.api.get("/v1/vhosts").json()["response"] == ["default"]
