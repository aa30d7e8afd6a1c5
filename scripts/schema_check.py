#!/usr/bin/env python3
"""Fuzz a live Kiln with schemathesis against OME's own OpenAPI file (``ome.yml``).

    .venv/bin/python scripts/schema_check.py [--schema PATH] [--max-examples N] [--seed N] [-v]

Skipped (exit 0) when the schema file is absent: it lives outside the repository
(``../shared/ref/ome.yml``) and is never copied in. Otherwise a real ``kiln serve`` is started on
free ports with a Server.xml and a known AccessToken (the e2e helpers); a writable API-created vhost,
a push task, a record task and, when ffmpeg is installed, a live RTMP stream are set up; and every
operation of the schema except EXCLUDED gets generated requests (valid and invalid ones, path names
biased towards things that exist, plus a few realistic bodies). Each response is checked: no 5xx,
body matching the schema, status code listed in the schema.

ome.yml is partial and has mistakes where OME's code (and the API pages Kiln follows) answer
otherwise; those are fixed in memory by CORRECTIONS before the run, so the rest of each response is
still checked. Failures matching KNOWN_DIFFERENCES are reported but do not fail the run. Both lists
are explained in scripts/SCHEMA_EXCEPTIONS.md. Anything else fails the run (exit 1).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
SCHEMA_IN_SHARED = Path("shared") / "ref" / "ome.yml"


def default_schema(repo: Path = REPO) -> Path:
    """``<repo>/../shared/ref/ome.yml``; in a git worktree (``.git`` is a file naming the main
    repository's git dir), the main checkout's ``../shared/ref/ome.yml`` when the first is absent."""
    first = repo.parent / SCHEMA_IN_SHARED
    git = repo / ".git"
    if first.is_file() or not git.is_file():
        return first
    text = git.read_text(errors="replace").strip()
    if not text.startswith("gitdir:"):
        return first
    gitdir = Path(text.split(":", 1)[1].strip())
    gitdir = gitdir if gitdir.is_absolute() else (repo / gitdir).resolve()
    if gitdir.parent.name != "worktrees":  # <main>/.git/worktrees/<name>
        return first
    main_checkout = gitdir.parent.parent.parent
    second = main_checkout.parent / SCHEMA_IN_SHARED
    return second if second.is_file() else first


DEFAULT_SCHEMA = default_schema()

# Operations not run, each with why. Matched (re.search) against "METHOD /path" as in the schema.
EXCLUDED: list[tuple[str, str]] = [
    # OME's outgoing webhooks: OME *calls* these on the user's control server (admission, transcode
    # customisation). They are not routes of the API server; OME and Kiln answer 404 there.
    (r"^POST /admissions$", "AdmissionWebhooks callback, served by the user's control server"),
    (r"^POST /transcodecs$", "TranscodeWebhook callback, served by the user's control server"),
    # Not implemented in Kiln (issue 2: every route except scheduled and multiplex channels;
    # README "Not yet": WebRTC, OVT). None of these are in the current ome.yml.
    (r"/scheduledChannels", "scheduled channels are not implemented"),
    (r"/multiplexChannels", "multiplex channels are not implemented"),
    (r"(?i)webrtc|/ovt\b|:ovt", "WebRTC / OVT specific operations are not implemented"),
]

SLOW = 1.0  # seconds; the slowest request of an operation is shown when it takes longer than this
DEFAULT_CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance"

# ----------------------------------------------------------------------------------------------
# in-memory corrections of ome.yml (see SCHEMA_EXCEPTIONS.md, same keys)

V = "/vhosts/{vhost}"
A = V + "/apps/{app}"
_STATUS = {"$ref": "#/components/responses/Status"}


def _add_status(raw: dict[str, Any], code: str, labels: list[str]) -> None:
    for label in labels:
        method, path = label.split(" ", 1)
        raw["paths"][path][method.lower()]["responses"].setdefault(code, _STATUS)


def _readonly_403(raw: dict[str, Any]) -> None:
    _add_status(raw, "403", [f"DELETE {V}", f"POST {V}/apps", f"PATCH {A}", f"DELETE {A}",
                             f"POST {A}/outputProfiles", f"DELETE {A}/outputProfiles/{{profile}}"])


def _json_400(raw: dict[str, Any]) -> None:
    labels = [f"{m.upper()} {p}" for p, item in raw["paths"].items() for m in item if m in ("post", "patch")]
    _add_status(raw, "400", labels)


def _streams_post(raw: dict[str, Any]) -> None:
    responses = raw["paths"][f"{A}/streams"]["post"]["responses"]
    responses["201"] = responses.pop("200")


def _output_profile_key(raw: dict[str, Any]) -> None:
    schema = raw["components"]["schemas"]["OutputProfiles"]
    schema["required"] = ["outputProfile" if k == "outputprofile" else k for k in schema["required"]]
    schema["properties"]["outputProfile"] = schema["properties"].pop("outputprofile")


def _stream_outputs(raw: dict[str, Any]) -> None:
    props = raw["components"]["schemas"]["Stream"]["properties"]
    props["outputs"] = {"type": "array", "items": props["outputs"]}


def _task_lists(raw: dict[str, Any]) -> None:
    for action, item in ((":pushes", "StreamPushed"), (":records", "StreamRecorded")):
        content = raw["paths"][A + action]["post"]["responses"]["200"]["content"]["application/json"]
        content["schema"] = {"allOf": [
            {"$ref": "#/components/schemas/HttpStatus"},
            {"properties": {"response": {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}}}},
        ]}


def _multistatus(raw: dict[str, Any]) -> None:
    for path in ("/vhosts", f"{V}/apps", f"{A}/outputProfiles"):
        responses = raw["paths"][path]["post"]["responses"]
        items = responses["207"]["content"]["application/json"]["schema"]["items"]
        items["anyOf"] = items.pop("oneOf")
        responses["409"] = {"description": "every element 409", "content": responses["207"]["content"]}


def _record_state(raw: dict[str, Any]) -> None:
    for part in raw["components"]["schemas"]["StreamRecorded"]["allOf"]:
        state = part.get("properties", {}).get("state")
        if state and "recording" not in state["enum"]:
            state["enum"].append("recording")


def _mpegts_streams(raw: dict[str, Any]) -> None:
    props = raw["components"]["schemas"]["MpegtsProvider"]["properties"]
    props["streams"] = {"type": "array", "items": {"$ref": "#/components/schemas/StreamMapStream"}}


def _record_output_paths(raw: dict[str, Any]) -> None:
    for part in raw["components"]["schemas"]["StreamRecorded"]["allOf"]:
        if "outputFilePath" in part.get("required", []):
            part["required"] = [k for k in part["required"] if k not in ("outputFilePath", "outputInfoPath")]
            part["anyOf"] = [{"properties": {"state": {"enum": ["ready", "stopping"]}}},
                             {"required": ["outputFilePath", "outputInfoPath"]}]


CORRECTIONS: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("readonly-403", _readonly_403),
    ("json-parse-400", _json_400),
    ("pull-201-and-400", _streams_post),
    ("outputProfile-key", _output_profile_key),
    ("stream-outputs-array", _stream_outputs),
    ("task-list-envelope", _task_lists),
    ("multi-status", _multistatus),
    ("record-state-recording", _record_state),
    ("record-output-paths", _record_output_paths),
    ("mpegts-streams-array", _mpegts_streams),
]


def load_schema(path: Path) -> Any:
    import schemathesis
    import yaml

    raw = yaml.safe_load(path.read_text())
    for _key, fix in CORRECTIONS:
        fix(raw)
    return schemathesis.openapi.from_dict(raw)


# ----------------------------------------------------------------------------------------------
# failures that are documented differences, not bugs


@dataclass(frozen=True)
class Known:
    """A documented difference; `key` names its entry in SCHEMA_EXCEPTIONS.md."""

    key: str
    check: str                                  # the schemathesis check that reports it
    label: str = ".*"                           # regex on the operation label
    path: str = ".*"                            # regex on the request path
    reason: str = ".*"                          # regex on the failure text
    status: int | None = None                   # the response status, when it matters
    response: str = ".*"                        # regex on the response body


KNOWN_DIFFERENCES: list[Known] = [
    # Server.xml-defined config is echoed with the XML text as-is ("true", "128000").
    Known("xml-config-strings", "response_schema_conformance", label=r"^GET ", path=r"^/vhosts/default/",
          reason=r'^Response violates schema: "[^"]*" is not of type "(boolean|integer|number)"'),
    # A pull that cannot connect answers 502, as OME does and as ome.yml lists; not_a_server_error
    # flags every 5xx.
    Known("pull-502", "not_a_server_error", label=r"^POST .*/streams$", status=502,
          response=r"Could not pull the stream"),
]


def classify(label: str, check: str, path: str, reason: str, status: int, response: str) -> str | None:
    for k in KNOWN_DIFFERENCES:
        if (check == k.check and re.search(k.label, label) and re.search(k.path, path)
                and re.search(k.reason, reason) and k.status in (None, status) and re.search(k.response, response)):
            return k.key
    return None


# ----------------------------------------------------------------------------------------------
# the Kiln under test and the names that exist in it


@dataclass
class Fixtures:
    """Entities that exist in the running Kiln; `ensure` recreates them before each operation (a
    fuzzed DELETE or stop may have removed them)."""

    api: Any                                    # httpx.Client, authenticated
    root: Path                                  # RootPath of every FILE publisher
    log_dir: Path
    stream: str = "nostream"
    media: Path | None = None
    rtmp_url: str = ""
    publisher: Any = None                       # tests.peers.process.Peer

    VHOST = "sx"
    APP = "live"
    PROFILE = "p1"
    DEAD_END = "127.0.0.1:9"                    # a loopback port nobody listens on (discard)

    def targets(self) -> list[dict[str, str]]:
        """Path parameters naming existing things: the read-only config vhost and the writable one."""
        return [{"vhost": "default", "app": "app", "profile": "bypass", "stream": self.stream},
                {"vhost": self.VHOST, "app": self.APP, "profile": self.PROFILE, "stream": "nostream"}]

    def app_body(self, name: str) -> dict[str, Any]:
        return {"name": name, "type": "live", "providers": {"rtmp": {}, "srt": {}, "rtspPull": {}},
                "publishers": {"llhls": {}, "push": {}, "file": {"rootPath": str(self.root / "api")}},
                "outputProfiles": {"outputProfile": [self.profile_body(self.PROFILE)]}}

    @staticmethod
    def profile_body(name: str) -> dict[str, Any]:
        return {"name": name, "outputStreamName": "${OriginStreamName}",
                "encodes": {"videos": [{"name": "bypass_video", "bypass": True}],
                            "audios": [{"name": "bypass_audio", "bypass": True}]}}

    def push_body(self, task_id: str = "push1") -> dict[str, Any]:
        return {"id": task_id, "stream": {"name": self.stream}, "protocol": "rtmp",
                "url": f"rtmp://{self.DEAD_END}/app", "streamKey": "key"}

    def record_body(self, task_id: str = "rec1") -> dict[str, Any]:
        return {"id": task_id, "stream": {"name": self.stream}, "interval": 60000,
                "filePath": "${Id}/${Sequence}.ts", "infoPath": "${Id}.xml"}

    def scenario(self, label: str) -> list[tuple[int, Any]]:
        """Realistic bodies for an operation, as (index into targets(), body): successes, duplicates,
        filters. Fuzzed bodies almost never get past validation, so these cover the 2xx shapes."""
        app = A
        bodies: dict[str, list[tuple[int, Any]]] = {
            "POST /vhosts": [(0, [{"name": "sx2", "host": {"names": ["sx2.example.com"]}}]),
                             (0, [{"name": self.VHOST}]), (0, [{"name": "sx3"}, {"name": self.VHOST}])],
            f"POST {V}/apps": [(1, [self.app_body("live2")]), (1, [self.app_body(self.APP)]),
                               (1, [self.app_body("live3"), self.app_body(self.APP)]), (0, [self.app_body("x")])],
            f"PATCH {app}": [(1, {"publishers": {"llhls": {}, "push": {}, "file": {"rootPath": str(self.root)}}}),
                             (1, {"name": "renamed"})],
            f"POST {app}/outputProfiles": [(1, [self.profile_body("p2")]), (1, [self.profile_body(self.PROFILE)]),
                                           (1, [self.profile_body("p3"), self.profile_body(self.PROFILE)])],
            f"POST {app}/streams": [(1, {"name": "pull1", "urls": [f"rtsp://{self.DEAD_END}/cam"]}),
                                    (0, {"name": self.stream, "urls": [f"rtsp://{self.DEAD_END}/cam"]})],
            f"POST {app}:startPush": [(0, self.push_body()), (0, self.push_body("push2")), (1, self.push_body())],
            f"POST {app}:stopPush": [(0, {"id": "push1"}), (0, {"id": "nope"}), (1, {"id": "push1"})],
            f"POST {app}:pushes": [(0, {}), (0, {"id": "push1"}), (0, None), (1, {})],
            f"POST {app}:startRecord": [(0, self.record_body()), (0, self.record_body("rec2")),
                                        (1, self.record_body())],
            f"POST {app}:stopRecord": [(0, {"id": "rec1"}), (0, {"id": "nope"}), (1, {"id": "rec1"})],
            f"POST {app}:records": [(0, {}), (0, {"id": "rec1"}), (0, None), (1, {})],
        }
        return bodies.get(label, [])

    def ensure(self) -> None:
        if self.VHOST not in self._names("/v1/vhosts"):
            self._post("/v1/vhosts", [{"name": self.VHOST, "host": {"names": ["sx.example.com"]}}])
        if self.APP not in self._names(f"/v1/vhosts/{self.VHOST}/apps"):
            self._post(f"/v1/vhosts/{self.VHOST}/apps", [self.app_body(self.APP)])
        if self.media is not None and (self.publisher is None or not self.publisher.alive
                                       or self.api.get(f"/v1/vhosts/default/apps/app/streams/{self.stream}")
                                       .status_code != 200):
            self._publish()
        for vhost, app in (("default", "app"), (self.VHOST, self.APP)):
            base = f"/v1/vhosts/{vhost}/apps/{app}"
            self.api.post(base + ":startPush", json=self.push_body())       # 409 when it is there already
            self.api.post(base + ":startRecord", json=self.record_body())

    def _names(self, path: str) -> list[str]:
        return self.api.get(path).json().get("response") or []

    def _post(self, path: str, body: Any) -> None:
        r = self.api.post(path, json=body)
        if r.status_code not in (200, 409):
            raise RuntimeError(f"fixture POST {path} failed: {r.status_code} {r.text[:300]}")

    def _publish(self) -> None:
        from tests.peers.ffmpeg import publish_rtmp

        if self.publisher is not None:
            self.publisher.stop()
        self.publisher = publish_rtmp(self.rtmp_url, self.media, loop=True, log_dir=self.log_dir)
        path = f"/v1/vhosts/default/apps/app/streams/{self.stream}"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.api.get(path).status_code == 200:
                return
            time.sleep(0.1)
        sys.stdout.write(f"warning: stream {self.stream} did not appear within 15 s\n")

    def close(self) -> None:
        if self.publisher is not None:
            self.publisher.stop()


@contextlib.contextmanager
def running_kiln(with_stream: bool) -> Iterator[tuple[str, dict[str, str], Fixtures, Any]]:
    from tests.e2e.kiln_process import TOKEN, KilnProcess, Ports, server_xml

    with tempfile.TemporaryDirectory(prefix="kiln-schema-") as tmp:
        work = Path(tmp)
        root = work / "records"
        root.mkdir()
        ports = Ports()
        kiln = KilnProcess(work, server_xml(ports, root), ports)
        fixtures = Fixtures(api=kiln.api, root=root, log_dir=work / "peers")
        try:
            kiln.start()
            if with_stream:
                from tests.peers.media import have_ffmpeg, test_flv

                if have_ffmpeg():
                    fixtures.stream = "live1"
                    fixtures.media = test_flv(4)
                    fixtures.rtmp_url = f"rtmp://127.0.0.1:{ports.rtmp}/app/{fixtures.stream}"
                else:
                    sys.stdout.write("note: ffmpeg not found, running without a live stream\n")
            fixtures.ensure()
            auth = {"Authorization": "Basic " + base64.b64encode(TOKEN.encode()).decode()}
            yield f"http://127.0.0.1:{ports.api}/v1", auth, fixtures, kiln
        finally:
            fixtures.close()
            code = kiln.stop()
            kiln.api.close()
            if code not in (0, None, -15):
                sys.stdout.write(f"warning: kiln exited with {code}; log tail:\n{kiln.log_tail(30)}\n")
            log_problems(kiln.log_path)


def log_problems(path: Path) -> None:
    """Bad input must never leave a traceback or an ERROR in the server log: show the first ones."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return
    hits = [i for i, line in enumerate(lines) if "Traceback" in line or " ERROR " in line or " CRITICAL " in line]
    if hits:
        sys.stdout.write(f"\nkiln log: {len(hits)} ERROR/Traceback line(s); the first:\n")
        for i in hits[:3]:
            sys.stdout.write("  " + "\n  ".join(lines[i:i + 12]) + "\n")


# ----------------------------------------------------------------------------------------------
# running one operation


@dataclass
class Finding:
    check: str
    method: str
    path: str
    status: int
    reason: str
    request_body: str
    response_body: str
    known: str | None = None


@dataclass
class OperationResult:
    label: str
    examples: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    slowest: tuple[float, str] = (0.0, "")
    cut_short: bool = False                     # stopped by --time-budget before --max-examples
    findings: dict[tuple[str, int, str, str], list[Finding]] = field(default_factory=dict)

    @property
    def unexpected(self) -> list[list[Finding]]:
        return [f for f in self.findings.values() if f[0].known is None]

    @property
    def known(self) -> list[list[Finding]]:
        return [f for f in self.findings.values() if f[0].known is not None]


_LOOPBACK = ("127.0.0.1", "localhost")
_NETWORK_SCHEMES = ("rtmp", "rtmps", "srt", "udp", "tcp", "rtsp", "rtspc", "ovt", "http", "https")


def _loopback_url(value: Any) -> Any:
    """Point a generated URL that could reach the network at the loopback: never fuzz a stranger."""
    if not isinstance(value, str):
        return value
    with contextlib.suppress(ValueError):
        parts = urlsplit(value.strip())
        if parts.scheme.lower() in _NETWORK_SCHEMES and parts.hostname not in (None, *_LOOPBACK):
            return urlunsplit((parts.scheme, Fixtures.DEAD_END, parts.path, parts.query, parts.fragment))
    return value


def sanitize(body: Any, root: Path) -> Any:
    """Safety rails on generated bodies: URLs stay on loopback, files stay under the run's temp dir."""
    if isinstance(body, list):
        return [sanitize(b, root) for b in body]
    if not isinstance(body, dict):
        return body
    if "url" in body:
        body["url"] = _loopback_url(body["url"])
    if isinstance(body.get("urls"), list):
        body["urls"] = [_loopback_url(u) for u in body["urls"]]
    for key in ("filePath", "infoPath", "rootPath"):
        if isinstance(body.get(key), str):
            body[key] = body[key].replace("..", "__")
    if isinstance(body.get("rootPath"), str) and not body["rootPath"].startswith(str(root)):
        body["rootPath"] = str(root / "fuzz" / body["rootPath"].lstrip("/"))
    for value in body.values():
        if isinstance(value, dict | list):
            sanitize(value, root)
    return body


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _dump_body(body: Any) -> str:
    if body is None or type(body).__name__ == "NotSet":
        return ""
    if isinstance(body, bytes):
        return repr(body)
    try:
        return json.dumps(body, ensure_ascii=True)
    except (TypeError, ValueError):
        return repr(body)


def _failures(exc: BaseException) -> list[Any]:
    return list(getattr(exc, "exceptions", None) or [exc])


def _check_name(failure: Any) -> str:
    names = getattr(failure, "checks", ()) or ()
    return names[0] if names else type(failure).__name__


def _reason(failure: Any) -> str:
    title = getattr(failure, "title", "") or type(failure).__name__
    message = getattr(failure, "message", "") or ""
    return f"{title}: {message}" if message else title


class _OutOfTime(Exception):
    """The operation's share of --time-budget is used up (raised between requests, never inside one)."""


MIN_EXAMPLES = 5  # an operation cut short by the time budget still gets this many requests
RESERVE_S = 1.5   # of the time budget, kept for each operation still to run (most take under a second)


def run_operation(operation: Any, fixtures: Fixtures, modes: list[Any], checks: list[Any], max_examples: int,
                  seed: int, timeout: float, deadline: float = float("inf")) -> OperationResult:
    import requests
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed
    from hypothesis import strategies as st
    from schemathesis import GenerationMode
    from schemathesis.core.failures import Failure, FailureGroup

    label = operation.label
    result = OperationResult(label)
    names = re.findall(r"{(\w+)}", operation.path)
    targets = fixtures.targets()

    def at(target: dict[str, str]) -> dict[str, str]:
        return {n: target[n] for n in names}

    strategies = []
    for mode in modes:
        strategies.append(operation.as_strategy(mode))  # entirely generated names: mostly 404s
        if names:
            strategies.append(st.sampled_from(targets).flatmap(
                lambda t, mode=mode: operation.as_strategy(mode, path_parameters=at(t))))
    scenario = [operation.as_strategy(GenerationMode.POSITIVE, path_parameters=at(targets[i]), body=body)
                for i, body in fixtures.scenario(label)]
    if scenario:
        strategies.append(st.one_of(*scenario))
    strategy = st.one_of(*strategies)

    def record(check: str, case: Any, status: int, reason: str, text: str) -> None:
        known = classify(label, check, case.formatted_path, reason, status, text)
        finding = Finding(check, case.method, case.formatted_path, status, _short(reason, 300),
                          _short(_dump_body(case.body), 400), _short(text, 500), known)
        kind = re.sub(r"\s+", " ", reason.split(" Validated against")[0])[:160]
        result.findings.setdefault((check, status, known or "", kind), []).append(finding)

    @hseed(seed)
    @settings(max_examples=max_examples, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(case=strategy)
    def fuzz(case: Any) -> None:
        if result.examples >= MIN_EXAMPLES and time.monotonic() > deadline:
            raise _OutOfTime
        case.body = sanitize(case.body, fixtures.root)
        result.examples += 1
        t0 = time.monotonic()
        try:
            response = case.call(timeout=timeout)
        except requests.RequestException as exc:  # a hang or a dropped connection is a bug too
            record("transport", case, 0, f"{type(exc).__name__}: {exc}", "")
            return
        elapsed = time.monotonic() - t0
        if elapsed > result.slowest[0]:
            result.slowest = (elapsed, f"{case.method} {case.formatted_path} {_short(_dump_body(case.body), 300)}"
                                       f" -> {response.status_code}")
        result.statuses[response.status_code] = result.statuses.get(response.status_code, 0) + 1
        try:
            case.validate_response(response, checks=checks)
        except (FailureGroup, Failure) as exc:
            for failure in _failures(exc):
                record(_check_name(failure), case, response.status_code, _reason(failure), response.text)

    try:
        fuzz()
    except _OutOfTime:
        result.cut_short = True
    return result


# ----------------------------------------------------------------------------------------------


def excluded_reason(label: str) -> str | None:
    for pattern, why in EXCLUDED:
        if re.search(pattern, label):
            return why
    return None


def report(results: list[OperationResult], skipped: list[tuple[str, str]], verbose: bool) -> int:
    out = sys.stdout.write
    width = max((len(r.label) for r in results), default=20)
    failing = 0
    out("\nper operation (pass* = only documented differences seen):\n")
    for r in results:
        codes = " ".join(f"{c}x{n}" for c, n in sorted(r.statuses.items()))
        verdict = "FAIL" if r.unexpected else ("pass*" if r.known else "pass")
        failing += bool(r.unexpected)
        out(f"  {verdict:5} {r.label:<{width}}  {r.examples:3d} requests  [{codes}]\n")
        if r.slowest[0] >= SLOW:
            out(f"        slow: {r.slowest[0]:.1f}s for {r.slowest[1]}\n")
        for group in r.unexpected + (r.known if verbose else []):
            f = group[0]
            tag = f"known:{f.known}" if f.known else f.check
            out(f"        {tag} x{len(group)}: {f.method} {f.path} -> {f.status}: {f.reason}\n")
            if f.request_body:
                out(f"          request:  {f.request_body}\n")
            out(f"          response: {f.response_body}\n")
    for label, why in skipped:
        out(f"  skip  {label:<{width}}  ({why})\n")
    known = sorted({f[0].known for r in results for f in r.known})
    server_errors = sum(n for r in results for code, n in r.statuses.items() if code >= 500)
    documented = {}
    for r in results:
        for group in r.known:
            if group[0].status >= 500:
                documented[f"{group[0].known} {group[0].status}"] = documented.get(
                    f"{group[0].known} {group[0].status}", 0) + len(group)
    out(f"\n{len(results)} operations run, {failing} failing, {len(skipped)} excluded; "
        f"documented differences seen: {', '.join(known) or 'none'}\n")
    cut = [r.label for r in results if r.cut_short]
    if cut:
        out(f"time budget: {len(cut)} operations ran fewer requests than asked (a slow or busy machine)\n")
    out(f"5xx answers: {server_errors} ({sum(documented.values())} documented: "
        f"{', '.join(f'{k} x{n}' for k, n in sorted(documented.items())) or 'none'}); "
        f"{sum(r.examples for r in results)} requests\n")
    return 1 if failing else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schema", type=Path, default=DEFAULT_SCHEMA, help="OME's OpenAPI file (default: %(default)s)")
    ap.add_argument("--max-examples", type=int, default=30, help="requests per operation (default: %(default)s)")
    ap.add_argument("--mode", choices=("positive", "negative", "all"), default="all",
                    help="valid bodies, invalid bodies, or both (default: %(default)s)")
    ap.add_argument("--checks", default=DEFAULT_CHECKS, help="comma-separated schemathesis checks")
    ap.add_argument("--seed", type=int, default=20260112, help="hypothesis seed, for reproducible runs")
    ap.add_argument("--operation", action="append", default=[], help="only labels matching this regex (repeatable)")
    ap.add_argument("--no-stream", action="store_true", help="do not publish a live RTMP stream with ffmpeg")
    ap.add_argument("--timeout", type=float, default=20.0, help="per-request timeout in seconds")
    ap.add_argument("--time-budget", type=float, default=0.0,
                    help="seconds for all operations (0: none); an operation may use what is left minus "
                         f"{RESERVE_S} s per operation still to run, and stops there after at least "
                         f"{MIN_EXAMPLES} requests")
    ap.add_argument("-v", "--verbose", action="store_true", help="also detail the documented differences seen")
    args = ap.parse_args(argv)

    schema_path = args.schema if args.schema.is_absolute() else Path.cwd() / args.schema
    if not schema_path.is_file():
        sys.stdout.write(f"schema check skipped: OME's OpenAPI file {schema_path} is absent (it is kept outside "
                         "the repository, in ../shared/ref/; --schema PATH names another)\n")
        return 0

    sys.path.insert(0, str(REPO))  # the e2e helpers (tests.e2e.kiln_process, tests.peers)
    from schemathesis import GenerationMode
    from schemathesis.checks import CHECKS, load_all_checks

    load_all_checks()
    checks = CHECKS.get_by_names([name.strip() for name in args.checks.split(",") if name.strip()])
    modes = {"positive": [GenerationMode.POSITIVE], "negative": [GenerationMode.NEGATIVE],
             "all": [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]}[args.mode]

    started = time.monotonic()
    results: list[OperationResult] = []
    skipped: list[tuple[str, str]] = []
    with running_kiln(with_stream=not args.no_stream) as (base_url, auth, fixtures, kiln):
        schema = load_schema(schema_path)
        schema.config.update(base_url=base_url, headers=auth)
        operations = []
        for item in schema.get_all_operations():
            op = item.ok()
            why = excluded_reason(op.label)
            if why:
                skipped.append((op.label, why))
            elif not args.operation or any(re.search(p, op.label) for p in args.operation):
                operations.append(op)
        sys.stdout.write(f"kiln at {base_url}, schema {schema_path}, seed {args.seed}, "
                         f"{args.max_examples} requests per operation, mode {args.mode}\n")
        budget_end = time.monotonic() + args.time_budget if args.time_budget > 0 else float("inf")
        for index, op in enumerate(operations):
            fixtures.ensure()
            t0 = time.monotonic()
            deadline = budget_end - RESERVE_S * (len(operations) - index - 1)  # keep a little for the rest
            res = run_operation(op, fixtures, modes, checks, args.max_examples, args.seed, args.timeout, deadline)
            results.append(res)
            sys.stdout.write(f"  {op.label}: {res.examples} requests in {time.monotonic() - t0:.1f}s\n")
            sys.stdout.flush()
    code = report(results, skipped, args.verbose)
    sys.stdout.write(f"took {time.monotonic() - started:.0f}s\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
