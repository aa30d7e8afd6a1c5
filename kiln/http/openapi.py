"""``GET /v1/openapi.json``: an OpenAPI 3.1 document of the routes this process really answers.

Paths come from the running router (each route's regex turned back into a template), and what a
route means comes from ``OPERATIONS`` below: the one place to describe a route. A route the table
does not describe still appears (marked undescribed) and ``tests/unit/http/test_openapi.py`` fails
for it, as it does for a description whose route is gone; so the document cannot drift.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from kiln import __version__
from kiln.http.envelope import json_response
from kiln.http.router import Call, Route, Router

UNDESCRIBED = "(undescribed route)"


@dataclass(frozen=True)
class Operation:
    """What a person needs to call a route: a summary, a group, what it takes and what it answers."""

    summary: str
    tag: str
    body: str | None = None  # a schema in ``SCHEMAS`` for the request body
    response: str = "Any"  # the schema of the envelope's ``response``
    query: tuple[tuple[str, str, str], ...] = ()  # (name, JSON type, description)
    description: str = ""
    raw: bool = False  # answered as is, not in OME's envelope
    media: str = "application/json"


V, A, S = "/v1/vhosts/{vhost}", "/v1/vhosts/{vhost}/apps/{app}", "/v1/vhosts/{vhost}/apps/{app}/streams/{stream}"
STATS = "/v1/stats/current"

# (METHOD, path template) -> Operation. Add a route here when you add it to the router.
OPERATIONS: dict[tuple[str, str], Operation] = {
    ("GET", "/v1/version"): Operation("Kiln's version and the OME API it is compatible with", "server"),
    ("POST", "/v1/managers/api:reloadCertificate"): Operation("Reload the API port's TLS certificate", "server"),
    ("GET", "/v1/vhosts"): Operation("List virtual host names", "vhosts", response="Names"),
    ("POST", "/v1/vhosts"): Operation("Create virtual hosts (durable)", "vhosts", body="ObjectList",
                                      response="MultiStatus"),
    ("GET", "/v1/vhosts:"): Operation("OME quirk: an empty action on the vhost list (always 500)", "vhosts"),
    ("POST", "/v1/vhosts:reloadAllCertificates"): Operation("Reload every vhost's TLS certificate", "vhosts"),
    ("POST", "/v1/vhosts:reloadCertificate"): Operation(
        "OME quirk: reloadCertificate without a vhost (always 500)", "vhosts"),
    ("GET", V): Operation("A virtual host's configuration", "vhosts", response="Object"),
    ("DELETE", V): Operation("Delete a virtual host created through the API", "vhosts"),
    ("POST", f"{V}:reloadCertificate"): Operation("Reload one vhost's TLS certificate", "vhosts"),
    ("POST", f"{V}:reloadAllCertificates"): Operation("Reload every vhost's TLS certificate", "vhosts"),
    ("GET", f"{V}/apps"): Operation("List application names of a vhost", "apps", response="Names"),
    ("POST", f"{V}/apps"): Operation("Create applications (durable)", "apps", body="ObjectList",
                                     response="MultiStatus"),
    ("GET", A): Operation("An application's configuration", "apps", response="Object"),
    ("GET", f"{A}:"): Operation("OME quirk: an application's raw configuration (no `dynamic`)", "apps",
                                response="Object"),
    ("PATCH", A): Operation("Change an application's configuration", "apps", body="Object", response="Object"),
    ("DELETE", A): Operation("Delete an application", "apps"),
    ("GET", f"{A}/outputProfiles"): Operation("List an application's output profile names", "apps",
                                              response="Names"),
    ("POST", f"{A}/outputProfiles"): Operation("Create output profiles", "apps", body="ObjectList",
                                               response="MultiStatus"),
    ("GET", f"{A}/outputProfiles/{{profile}}"): Operation("One output profile", "apps", response="Object"),
    ("PATCH", f"{A}/outputProfiles/{{profile}}"): Operation("Change an output profile", "apps", body="Object",
                                                            response="Object"),
    ("DELETE", f"{A}/outputProfiles/{{profile}}"): Operation("Delete an output profile", "apps"),
    ("GET", f"{A}/scheduledChannels"): Operation("List scheduled channel names of an application", "streams",
                                                 response="Names"),
    ("POST", f"{A}/scheduledChannels"): Operation(
        "Create a scheduled channel (files played as a live stream; 201)", "streams", body="Object",
        description="403 without a Schedule provider, 409 for a taken name, 400 for a schedule Kiln cannot play"),
    ("GET", f"{A}/scheduledChannels/{{stream}}"): Operation("A scheduled channel's schedule and currentProgram",
                                                           "streams", response="Object"),
    ("PATCH", f"{A}/scheduledChannels/{{stream}}"): Operation(
        "Replace a channel's fallbackProgram or programs (201)", "streams", body="Object"),
    ("DELETE", f"{A}/scheduledChannels/{{stream}}"): Operation("Delete a scheduled channel (and its .sch file)",
                                                              "streams"),
    ("GET", f"{A}/multiplexChannels"): Operation("List multiplex channel names of an application", "streams",
                                                 response="Names",
                                                 description="404 without a Multiplex provider"),
    ("POST", f"{A}/multiplexChannels"): Operation(
        "Create a multiplex channel (tracks of other live streams as one stream; 201)", "streams", body="Object",
        description="403 without a Multiplex provider, 409 for a taken name, 400 for a profile Kiln cannot read"),
    ("GET", f"{A}/multiplexChannels/{{stream}}"): Operation(
        "A multiplex channel's profile, state and pullingMessage", "streams", response="Object"),
    ("DELETE", f"{A}/multiplexChannels/{{stream}}"): Operation("Delete a multiplex channel (and its .mux file)",
                                                              "streams"),
    ("GET", f"{A}/streams"): Operation("List live input stream names of an application", "streams",
                                       response="Names"),
    ("POST", f"{A}/streams"): Operation("Pull a stream (RTSP) into the application", "streams", body="Object",
                                        response="Object"),
    ("GET", S): Operation("A live stream: input tracks, outputs, playlists", "streams", response="Object"),
    ("DELETE", S): Operation("Stop a live stream (and delete its pull)", "streams"),
    ("POST", f"{S}:sendEvent"): Operation("Insert a timed ID3 event into the LL-HLS parts", "streams",
                                          body="Object"),
    ("POST", f"{S}:sendEvents"): Operation("Insert several timed events", "streams", body="Object"),
    ("POST", f"{S}:concludeHlsLive"): Operation("End the LL-HLS presentation (ENDLIST)", "streams"),
    ("POST", f"{S}:sendSubtitles"): Operation("Subtitles (answers as OME does when they are not enabled)",
                                              "streams", body="Object"),
    ("POST", f"{S}:startHlsDump"): Operation("Start dumping an output stream's LL-HLS to files", "dumps",
                                             body="Object", response="Object"),
    ("POST", f"{S}:stopHlsDump"): Operation("Stop an HLS dump", "dumps", body="Object"),
    ("POST", f"{S}:hlsDumps"): Operation("List HLS dumps of an output stream", "dumps", body="Object",
                                         response="ObjectList"),
    ("POST", f"{A}:startPush"): Operation("Start pushing a stream to RTMP, SRT or MPEG-TS", "tasks",
                                          body="Object", response="Object"),
    ("POST", f"{A}:stopPush"): Operation("Stop a push", "tasks", body="Object"),
    ("POST", f"{A}:pushes"): Operation("List pushes (optionally one id)", "tasks", body="Object",
                                       response="ObjectList"),
    ("GET", f"{A}:pushes"): Operation("List pushes", "tasks", response="ObjectList"),
    ("POST", f"{A}:startRecord"): Operation("Start recording a stream to MP4 or TS files", "tasks",
                                            body="Object", response="Object"),
    ("POST", f"{A}:stopRecord"): Operation("Stop a recording", "tasks", body="Object"),
    ("POST", f"{A}:records"): Operation("List recordings (optionally one id)", "tasks", body="Object",
                                        response="ObjectList"),
    ("GET", f"{A}:records"): Operation("List recordings", "tasks", response="ObjectList"),
    ("GET", STATS): Operation("Server statistics", "stats", response="Object"),
    ("GET", f"{STATS}/internals"): Operation("Which internal statistics exist", "stats", response="Names"),
    ("GET", f"{STATS}/internals/queues"): Operation("Internal queue sizes and drops", "stats",
                                                   response="ObjectList"),
    ("GET", f"{STATS}/vhosts/{{vhost}}"): Operation("A vhost's statistics", "stats", response="Object"),
    ("GET", f"{STATS}/vhosts/{{vhost}}/apps/{{app}}"): Operation("An application's statistics", "stats",
                                                                 response="Object"),
    ("GET", f"{STATS}/vhosts/{{vhost}}/apps/{{app}}/streams/{{stream}}"): Operation(
        "A stream's statistics (bytes in/out, connections per publisher)", "stats", response="Object"),
    ("GET", "/v1/journal"): Operation(
        "Kiln: the event journal, filtered (the console's timeline)", "kiln", response="JournalPage",
        query=(("entity", "string", "entity id prefix, e.g. push:default/app"),
               ("type", "string", "event type; repeat for several"),
               ("since", "string", "ISO time: records at or after it"),
               ("after", "integer", "sequence number: the records after it, oldest first (for polling)"),
               ("limit", "integer", "1..1000, default 100; without after, the newest matches")),
        description="Records as `kiln journal show --json` prints them, secrets masked. Poll with "
                    "`after=<lastSeq>`."),
    ("GET", "/v1/status"): Operation("Kiln: listeners, journal size, uptime and counts of this process", "kiln",
                                     response="Status"),
    ("GET", "/v1/openapi.json"): Operation("Kiln: this document", "kiln", response="Any", raw=True,
                                           description="Answered as the bare document, not in OME's envelope."),
    ("GET", "/v1/events"): Operation(
        "Kiln: journal records as Server-Sent Events", "kiln", response="Any", raw=True, media="text/event-stream",
        query=(("from", "integer", "first sequence number (default: the next record)"),
               ("entity", "string", "entity id prefix"), ("type", "string", "event types, comma-separated")),
        description="Each event: `id` the sequence number, `event` the type, `data` a journal record. "
                    "`Last-Event-ID` resumes right after that record."),
    ("GET", "/v1/subscriptions"): Operation("Kiln: webhook subscriptions with their delivery state", "kiln",
                                            response="ObjectList"),
    ("POST", "/v1/subscriptions"): Operation(
        "Kiln: create a webhook subscription (durable)", "kiln", body="Object", response="Object",
        description="`{id, url, secretKey?, from?, filter?: {entity, types}}`; records are POSTed in order, "
                    "signed with `X-OME-Signature`, retried with backoff."),
    ("GET", "/v1/subscriptions/{id}"): Operation("Kiln: one subscription and its delivery state", "kiln",
                                                 response="Object"),
    ("DELETE", "/v1/subscriptions/{id}"): Operation("Kiln: delete a subscription", "kiln"),
}

# Served on the API port outside the router (own auth rules); listed when the app serves them.
OUTSIDE_ROUTER: dict[tuple[str, str], Operation] = {
    ("GET", "/metrics"): Operation("Prometheus metrics (text exposition format)", "kiln", response="Any", raw=True,
                                   media="text/plain",
                                   description="Needs the token unless Managers/Metrics/Auth is off."),
}

_OBJ: dict[str, Any] = {"type": "object"}
SCHEMAS: dict[str, Any] = {
    "Any": {},
    "Object": _OBJ,
    "ObjectList": {"type": "array", "items": _OBJ},
    "Names": {"type": "array", "items": {"type": "string"}},
    "Error": {"type": "object", "required": ["message", "statusCode"],
              "properties": {"message": {"type": "string"}, "statusCode": {"type": "integer"}}},
    "MultiStatus": {"type": "array", "items": {"$ref": "#/components/schemas/Error"}},
    "JournalRecord": {"type": "object", "required": ["seq", "time", "entity", "type", "version", "payload"],
                      "properties": {"seq": {"type": "integer"}, "time": {"type": "string"},
                                     "entity": {"type": "string"}, "type": {"type": "string"},
                                     "version": {"type": "integer"}, "payload": _OBJ}},
    "JournalPage": {"type": "object", "required": ["records", "lastSeq", "more"],
                    "properties": {"records": {"type": "array",
                                               "items": {"$ref": "#/components/schemas/JournalRecord"}},
                                   "lastSeq": {"type": "integer"}, "more": {"type": "boolean"}}},
    "Status": {"type": "object", "required": ["version", "pid", "listeners", "journal", "counts"],
               "properties": {"version": {"type": "string"}, "pid": {"type": "integer"},
                              "startTime": {"type": "string"}, "uptimeSeconds": {"type": "number"},
                              "dataDir": {"type": "string"}, "config": {"type": "string"},
                              "listeners": {"type": "object", "additionalProperties": {
                                  "type": "object", "properties": {"host": {"type": "string"},
                                                                   "port": {"type": "integer"}}}},
                              "journal": _OBJ, "counts": _OBJ}},
}

_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")


def template_of(route: Route) -> str:
    """``/v1/vhosts/(?P<vhost>[^/]*)`` -> ``/v1/vhosts/{vhost}`` (escapes dropped)."""
    return _GROUP.sub(r"{\1}", route.pattern.pattern.removeprefix("^").removesuffix("$")).replace("\\", "")


def operations_of(router: Router) -> list[tuple[str, str]]:
    """(METHOD, template) of every route, in registration order; the HEAD every GET gets is left out."""
    found: list[tuple[str, str]] = []
    for route in router.routes:
        methods = route.methods - {"HEAD"} if "GET" in route.methods else route.methods
        path = template_of(route)
        found += [(m, path) for m in sorted(methods) if (m, path) not in found]
    return found


def _envelope(schema: str) -> dict[str, Any]:
    if schema == "MultiStatus":
        return {"$ref": "#/components/schemas/MultiStatus"}
    return {"type": "object", "required": ["message", "statusCode"],
            "properties": {"message": {"type": "string"}, "statusCode": {"type": "integer"},
                           "response": {"$ref": f"#/components/schemas/{schema}"}}}


def _operation_id(method: str, path: str) -> str:
    """Unique per operation: ``…/apps/{app}:`` and ``…/apps/{app}`` differ by the action colon."""
    words = re.sub(r"[^A-Za-z0-9:]+", "_", path).strip("_").replace(":", "_action_")
    return f"{method.lower()}_{words}"


def _operation(method: str, path: str, op: Operation | None) -> dict[str, Any]:
    op = op or Operation(UNDESCRIBED, "undescribed")
    params: list[dict[str, Any]] = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                                    for name in re.findall(r"{(\w+)}", path)]
    params += [{"name": name, "in": "query", "required": False, "schema": {"type": kind}, "description": text}
               for name, kind, text in op.query]
    ok_schema = {"$ref": f"#/components/schemas/{op.response}"} if op.raw else _envelope(op.response)
    error = {"description": "OME's error envelope",
             "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    out: dict[str, Any] = {
        "summary": op.summary, "tags": [op.tag],
        "operationId": _operation_id(method, path),
        "responses": {"200": {"description": "OK", "content": {op.media: {"schema": ok_schema}}},
                      "401": error, "404": error, "default": error},
    }
    if op.description:
        out["description"] = op.description
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {"required": False, "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{op.body}"}}}}
    return out


def document(router: Router, outside: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    """``outside``: the ``OUTSIDE_ROUTER`` operations this app serves."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path in operations_of(router):
        paths.setdefault(path, {})[method.lower()] = _operation(method, path, OPERATIONS.get((method, path)))
    for method, path in outside:
        paths.setdefault(path, {})[method.lower()] = _operation(method, path, OUTSIDE_ROUTER[(method, path)])
    return {
        "openapi": "3.1.0",
        "info": {"title": "Kiln REST API", "version": __version__,
                 "description": "OvenMediaEngine's REST API v1 as Kiln answers it, plus Kiln's own routes "
                                "(tag `kiln`). Authentication: HTTP Basic with the whole access token as "
                                "user:password, as OME does."},
        "servers": [{"url": "/"}],
        "security": [{"accessToken": []}],
        "tags": [{"name": t} for t in dict.fromkeys(o.tag for o in [*OPERATIONS.values(), *OUTSIDE_ROUTER.values()])],
        "paths": paths,
        "components": {"schemas": SCHEMAS,
                       "securitySchemes": {"accessToken": {"type": "http", "scheme": "basic"}}},
    }


def register(router: Router, api: Any) -> None:
    async def openapi(call: Call) -> Response:
        outside = (("GET", "/metrics"),) if getattr(api, "metrics", None) is not None else ()
        return json_response(200, document(router, outside))

    router.add("GET", r"/v1/openapi\.json", openapi)
