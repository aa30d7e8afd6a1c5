"""GET /v1/openapi.json against the running router: every route described, no description without a
route, and a document openapi-spec-validator accepts. A new route fails here until it has its line in
``kiln/http/openapi.py: OPERATIONS``."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

from kiln.http.api import ApiApp
from kiln.http.openapi import OPERATIONS, UNDESCRIBED, operations_of
from kiln.service import KilnService
from tests.unit.http.conftest import Api


def served(api: Api) -> dict:  # type: ignore[type-arg]
    r = api.get("/v1/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    return r.json()  # type: ignore[no-any-return]


def test_the_document_lists_exactly_the_running_routes_each_described(api: Api, service: KilnService) -> None:
    router = service.api.router if service.api is not None else None
    assert isinstance(service.api, ApiApp) and router is not None
    running = set(operations_of(router))
    doc = served(api)
    listed = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    outside = {("GET", "/metrics")} if service.api.metrics is not None else set()
    assert listed == running | outside
    undescribed = sorted(f"{m} {p}" for p, ops in doc["paths"].items() for m, o in ops.items()
                         if o["summary"] == UNDESCRIBED)
    assert not undescribed, "routes without a line in kiln/http/openapi.py OPERATIONS: " + ", ".join(undescribed)
    stale = sorted(f"{m} {p}" for m, p in set(OPERATIONS) - running)
    assert not stale, "OPERATIONS describes routes the router does not have: " + ", ".join(stale)
    assert {("GET", "/v1/journal"), ("GET", "/v1/status"), ("GET", "/v1/openapi.json"),
            ("POST", "/v1/vhosts/{vhost}/apps/{app}:startPush")} <= listed


def test_the_document_is_valid_openapi(api: Api) -> None:
    doc = served(api)
    validate(doc)  # raises with the first problem
    assert doc["openapi"].startswith("3.1")
    journal = doc["paths"]["/v1/journal"]["get"]
    assert {p["name"] for p in journal["parameters"]} == {"entity", "type", "since", "after", "limit"}


def test_templates_hold_no_regex_and_name_every_path_parameter(api: Api) -> None:
    for path, ops in served(api)["paths"].items():
        assert not re.search(r"[\\()\[\]^$?*+]", path), path
        for op in ops.values():
            names = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert names == set(re.findall(r"{(\w+)}", path)), path


def test_a_route_added_without_a_description_is_reported(service: KilnService) -> None:
    from kiln.http.openapi import document

    app = service.build_api()

    async def handler(call: object) -> None:
        raise AssertionError("not called")

    app.router.add("GET", r"/v1/vhosts/(?P<vhost>[^/]*)/brandNew", handler)  # type: ignore[arg-type]
    doc = document(app.router)
    assert doc["paths"]["/v1/vhosts/{vhost}/brandNew"]["get"]["summary"] == UNDESCRIBED
