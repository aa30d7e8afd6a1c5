"""Fuzz target for every JSON request body: each POST/PATCH route the router has (taken from the
router itself, so a new route is fuzzed without editing this file) gets generated bodies through the
Starlette app in-process, on a real control plane (actors, journal, projections) in a temp data dir.

Bodies are JSON built from OME's own keys (the config table's and the task/event keys) with values
chosen to hurt (huge and negative numbers, wrong types, deep nesting, path traversal), or raw bytes
(comments, trailing commas, bad UTF-8, truncated JSON). Path names are the ones that exist (the
read-only config vhost, an API-created one) or not.

Property: every answer is OME's envelope (``statusCode`` equal to the HTTP status, a ``message``),
never a 5xx, never an ERROR or traceback in the log, within the bounds of tests/fuzz/budget.py.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from kiln.config.schema import SERVER, Node
from tests.fuzz.budget import bounded, fuzz
from tests.fuzz.strategies import mutated
from tests.unit.http.conftest import AUTH, start_service

# OME's own 5xx answers, kept on purpose (rest-spec §14): route pattern -> the status and text
OME_5XX = {r"^/v1/vhosts:reloadCertificate$": (500, "Could not find the virtual host regex group")}
DEAD_END = "127.0.0.1:9"  # a loopback port nobody listens on: pulls and pushes fail fast and stay local


def _config_keys(node: Node, seen: set[str]) -> set[str]:
    for fld in (*node.fields, *([node.item] if node.item else [])):
        if fld.key not in seen:
            seen.add(fld.key)
            _config_keys(fld.node, seen)
    return seen


TASK_KEYS = ["id", "stream", "name", "urls", "url", "protocol", "streamKey", "interval", "schedule",
             "segmentationRule", "filePath", "infoPath", "metadata", "trackIds", "variantNames", "properties",
             "persistent", "noInputFailoverTimeoutMs", "unusedStreamDeletionTimeoutMs", "ignoreRtcpSRTimestamp",
             "eventFormat", "eventType", "events", "frameType", "info", "data", "urgent", "cueType", "duration",
             "spliceCommand", "type", "outputStreamName", "playlists", "infoFile", "userData", "outputPath",
             "subtitles", "label", "text", "startTime", "host", "names", "outputProfile", "encodes", "videos",
             "audios", "bypass", "codec", "bitrate", "width", "height", "framerate"]
KEYS = st.sampled_from(sorted(_config_keys(SERVER, set()) | set(TASK_KEYS)))
STRINGS = st.one_of(
    st.sampled_from(["", "default", "app", "sx", "live", "bypass", "push1", "rec1", "cam", "id3v2", "TXXX", "PRIV",
                     "TIT2", "T", "video", "audio", "event", "cue", "scte35", "out", "in", "rtmp", "srt", "mpegts",
                     "h264", "aac", "opus", "vp8", "jpeg", "true", "1K", "${OriginStreamName}", "${Sequence}.ts",
                     "../../../../tmp/kiln-fuzz-escape", "/tmp/kiln-fuzz-abs/x.mp4", "0 0 * * *", "*/5 * * * * *",
                     "interval", "continuity", "discontinuity", f"rtmp://{DEAD_END}/app", f"rtsp://{DEAD_END}/cam",
                     f"srt://{DEAD_END}?streamid=a/b/c", f"udp://{DEAD_END}", "é", "\u0000", "%2F"]),
    st.text(max_size=16),
)
NUMBERS = st.one_of(st.sampled_from([0, 1, -1, 2**31, 2**63, 10**30, -(10**30)]), st.integers(-1000, 100000),
                    st.floats(allow_nan=False, allow_infinity=False))
LEAVES = st.one_of(st.none(), st.booleans(), NUMBERS, STRINGS)
JSON = st.recursive(LEAVES, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=6)), max_leaves=30)


def _nested(value: Any, depth: int) -> Any:
    for _ in range(depth):
        value = [value]
    return value


BODIES = st.one_of(
    JSON,
    st.lists(st.dictionaries(KEYS, JSON, max_size=6), max_size=3),        # the multi-item POSTs
    st.dictionaries(KEYS, JSON, min_size=1, max_size=8),
    st.tuples(st.dictionaries(KEYS, JSON, max_size=3), KEYS, st.integers(0, 900)).map(
        lambda t: {**t[0], t[1]: _nested({}, t[2])}),                       # deep nesting under a known key
)
_APP = {"name": "fz", "type": "live", "providers": {"rtmp": {}, "srt": {}}, "persistentStreams": {"a": 1},
        "outputProfiles": {"mediaOptions": {"a": 1},
                           "outputProfile": [{"name": "p", "outputStreamName": "${OriginStreamName}_p",
                                              "encodes": {"videos": [{"name": "v", "bypass": True}]}}]},
        "publishers": {"llhls": {}, "push": {}, "file": {"filePath": "${Sequence}.ts"}}}
# A body each route accepts, by route pattern (regex): fuzzed by changing one key deep inside, which
# gets past the first checks that reject almost every random body
REALISTIC: list[tuple[str, Any]] = [
    (r"/vhosts\$", [{"name": "fv", "host": {"names": ["fv.example"]}, "crossDomains": {"urls": ["*"]}}]),
    (r"/apps\$", [_APP]),
    (r"/apps/\(\?P<app>[^)]*\)\$", {"providers": _APP["providers"], "publishers": _APP["publishers"],
                                    "persistentStreams": {"a": 1}}),
    (r"/outputProfiles", [_APP["outputProfiles"]["outputProfile"][0]]),
    (r":startPush", {"id": "fp", "stream": {"name": "cam", "trackIds": [0]}, "protocol": "rtmp",
                     "url": f"rtmp://{DEAD_END}/app", "streamKey": "k"}),
    (r":startRecord", {"id": "fr", "stream": {"name": "cam"}, "interval": 60000, "filePath": "${Id}.ts",
                       "metadata": "m"}),
    (r":(stop|pushes|records)", {"id": "fp"}),
    (r"/streams\$", {"name": "fpull", "urls": [f"rtsp://{DEAD_END}/cam"], "properties": {"persistent": False}}),
    (r":sendEvents?\$", {"eventFormat": "id3v2", "eventType": "video",
                         "events": [{"frameType": "TXXX", "info": "i", "data": "d"}]}),
    (r":startHlsDump", {"id": "fd", "outputPath": "dump/${Sequence}", "playlist": ["llhls.m3u8"]}),
    (r":sendSubtitles", {"subtitles": [{"label": "en", "text": "hi", "startTime": 0, "duration": 1000}]}),
]


@st.composite
def realistic(draw: st.DrawFn, pattern: str) -> Any:
    """The route's realistic body with one container inside it given a new key or value (JSON, or a
    value nested hundreds deep), or unchanged."""
    base = next((body for regex, body in REALISTIC if re.search(regex, pattern)), {})
    body = json.loads(json.dumps(base))
    holders: list[Any] = []
    stack = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, dict | list):
            holders.append(item)
            stack.extend(item.values() if isinstance(item, dict) else item)
    holder = draw(st.sampled_from(holders))
    value = draw(st.one_of(JSON, st.sampled_from([2, 16, 600, 900]).map(lambda n: _nested({}, n))))
    if isinstance(holder, dict):
        holder[draw(st.one_of(st.sampled_from(sorted(holder) or ["id"]), KEYS))] = value
    elif holder:
        holder[draw(st.integers(0, len(holder) - 1))] = value
    return body


RAW = mutated([b'{"id":"push1","stream":{"name":"cam"},"protocol":"rtmp","url":"rtmp://127.0.0.1:9/app"}',
               b'[{"name":"v", /* c */ "host":{"names":["a",],},},]', b"// only a comment\n", b"\xef\xbb\xbf{}",
               b"[" * 5000 + b"]" * 5000, b'{"a":' * 3000 + b"1" + b"}" * 3000, b'"\xff\xfe"',
               b'{"id":"push1","stream":{"name":"cam"},"x":' + b"9" * 5000 + b"}",  # more digits than int() reads
               b'[{"name":"v","segmentCount":' + b"9" * 30 + b"}]",  # beyond 64 bits: what msgpack stores
               b'{"publishers":{"llhls":{"chunkDuration":NaN,"segmentDuration":Infinity,"partHoldBack":1e400}}}'],
          max_mutations=3)


def _loopback(value: Any, depth: int = 0) -> Any:
    """Generated URLs never leave the machine: any other host becomes the dead-end loopback port."""
    if isinstance(value, str) and "://" in value:
        try:
            parts = urlsplit(value)
            if parts.hostname not in (None, "127.0.0.1", "localhost"):
                return urlunsplit((parts.scheme, DEAD_END, parts.path, parts.query, parts.fragment))
        except ValueError:
            return value
    if depth > 20:  # the deep-nesting bodies hold no URL down there
        return value
    if isinstance(value, list):
        return [_loopback(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {k: _loopback(v, depth + 1) for k, v in value.items()}
    return value


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage() + (f" {record.exc_info[1]!r}" if record.exc_info else ""))


class Target:
    def __init__(self, client: TestClient, data_dir: Path) -> None:
        self.client = client
        self.data_dir = data_dir
        self.routes: list[tuple[str, str]] = []

    def ensure(self) -> None:
        """The API-created vhost and app fuzzed requests may have deleted (names as in the schema check)
        are there again, and what the realistic bodies create is gone, so the next one succeeds too."""
        for path in ("/v1/vhosts/fv", "/v1/vhosts/sx/apps/fz", "/v1/vhosts/sx/apps/live/outputProfiles/p",
                     "/v1/vhosts/sx/apps/live/streams/fpull", "/v1/vhosts/default/apps/app/streams/fpull"):
            self.client.delete(path, headers=AUTH)
        for base in ("/v1/vhosts/sx/apps/live", "/v1/vhosts/default/apps/app"):
            self.client.post(base + ":stopPush", headers=AUTH, json={"id": "fp"})
            self.client.post(base + ":stopRecord", headers=AUTH, json={"id": "fr"})
        self.client.post("/v1/vhosts", headers=AUTH, json=[{"name": "sx", "host": {"names": ["sx.example"]}}])
        self.client.post("/v1/vhosts/sx/apps", headers=AUTH, json=[
            {"name": "live", "type": "live", "providers": {"rtmp": {}}, "outputProfiles": {"outputProfile": [
                {"name": "p1", "outputStreamName": "${OriginStreamName}",
                 "encodes": {"videos": [{"name": "v", "bypass": True}]}}]},
             "publishers": {"llhls": {}, "push": {}, "file": {"rootPath": str(self.data_dir / "api-records")}}}])


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    data = tmp_path_factory.mktemp("fuzz-api") / "data"
    service = start_service(data)
    app = service.build_api()
    try:
        with TestClient(app.starlette, base_url="http://kiln.test") as client:
            t = Target(client, data)
            t.routes = [(method, route.pattern.pattern) for route in app.router.routes if route.takes_body
                        for method in sorted(route.methods & {"POST", "PATCH"})]
            t.ensure()
            yield t
    finally:
        service.close()


# mostly names that exist (the writable API vhost most), so bodies reach the code behind the lookups
NAMES = {"vhost": ["sx", "sx", "sx", "default", "default", "nope", "", "%2F", "d%C3%A9"],
         "app": ["live", "live", "live", "app", "app", "nope", "a:b"],
         "stream": ["cam", "cam", "nostream", ""], "profile": ["p1", "p1", "bypass", "nope"]}


def _path(pattern: str, draw: st.DrawFn) -> str:
    path = pattern.strip("^$")
    for name, choices in NAMES.items():
        path = re.sub(rf"\(\?P<{name}>[^)]*\)", lambda m, c=choices: draw(st.sampled_from(c)), path)
    return path


@fuzz(1.0)
@given(data=st.data())
def test_json_bodies(target: Target, data: st.DataObject) -> None:
    method, pattern = data.draw(st.sampled_from(target.routes), label="route")
    path = _path(pattern, data.draw)
    kind = data.draw(st.integers(0, 3), label="kind")
    if kind == 0:
        content = data.draw(RAW, label="raw body")
    else:
        body = data.draw(BODIES if kind == 1 else realistic(pattern), label="body")
        content = json.dumps(_loopback(body)).encode()
    errors = _Errors()
    logging.getLogger("kiln").addHandler(errors)
    try:
        with bounded(seconds=30):
            response = target.client.request(method, quote(path, safe="/:%"), content=content, headers=AUTH)
    finally:
        logging.getLogger("kiln").removeHandler(errors)
    status = response.status_code
    expected_5xx = OME_5XX.get(pattern, (502, "Could not pull the stream"))  # a pull of a dead source: 502
    assert status < 500 or (status, expected_5xx[1] in response.text) == (expected_5xx[0], True), \
        f"{method} {path} -> {status}: {response.text[:300]}"
    envelope = response.json()
    assert isinstance(envelope, (dict, list))
    if isinstance(envelope, dict):
        assert envelope.get("statusCode") == status and isinstance(envelope.get("message"), str)
    assert not errors.messages, errors.messages[0]
    target.ensure()


def _holders(body: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every container inside ``body``."""
    if isinstance(body, dict | list):
        yield path
        for key, value in (body.items() if isinstance(body, dict) else enumerate(body)):
            yield from _holders(value, (*path, key))


def test_every_container_of_every_body_nested_deep(target: Target) -> None:
    """A sweep rather than a random search (deep nesting in one spot of one route is too rare a
    draw): each container of each realistic body gets a value nested 600 levels deep; no 5xx."""
    failures = []
    for method, pattern in target.routes:
        base = next((body for regex, body in REALISTIC if re.search(regex, pattern)), None)
        if base is None:
            continue
        for holder_path in _holders(base):
            body = json.loads(json.dumps(base))
            holder = body
            for key in holder_path:
                holder = holder[key]
            if isinstance(holder, dict):
                holder["deep"] = _nested({}, 600)
            else:
                holder.append(_nested({}, 600))
            for vhost, app in (("sx", "live"), ("default", "app")):
                path = pattern.strip("^$")
                for name, value in (("vhost", vhost), ("app", app), ("stream", "cam"), ("profile", "p1")):
                    path = re.sub(rf"\(\?P<{name}>[^)]*\)", value, path)
                with bounded(seconds=30):
                    response = target.client.request(method, path, content=json.dumps(body).encode(), headers=AUTH)
                if response.status_code >= 500 and "Could not pull the stream" not in response.text:
                    failures.append(f"{method} {path} {holder_path}: {response.status_code} {response.text[:120]}")
                target.ensure()
    assert not failures, "\n".join(failures[:10])
