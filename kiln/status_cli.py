"""``kiln status``: one screen of what a running Kiln does (listeners, live streams, tasks, journal size).

It reads nothing but two small files of the data directory (``server.json``: the pid and API
address of the running server; ``access_token``, or ``-c Server.xml``'s AccessToken) and asks that
server's API, so what it prints is what the process holds now. A data directory without a running
server is an error that says so (exit 1), never an empty screen.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

import httpx

from kiln.events.redact import Redactor, redact_push_destination, redact_url
from kiln.running import SERVER_FILE

TOKEN_FILE = "access_token"  # as kiln.service writes it (not imported: the CLI loads no server)


class StatusError(Exception):
    """Why there is nothing to show: printed on stderr, exit 1."""


@dataclass(frozen=True)
class Target:
    pid: int
    base_url: str
    token: str


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _token(data_dir: Path, config: str | None) -> str:
    if config:
        from kiln.config import ConfigLoadError, load_server_xml

        try:
            token = load_server_xml(config).access_token
        except ConfigLoadError as exc:
            raise StatusError(f"cannot read {config}: {exc}") from None
        if token:
            return str(token)
    path = data_dir / TOKEN_FILE
    if not path.exists():
        raise StatusError(f"no access token: {path} does not exist and no -c Server.xml with an AccessToken "
                          "was given")
    return path.read_text().strip()


def find_server(data_dir: Path, config: str | None) -> Target:
    path = data_dir / SERVER_FILE
    if not data_dir.is_dir():
        raise StatusError(f"no Kiln data directory at {data_dir} (give the server's with -d)")
    if not path.exists():
        raise StatusError(f"no Kiln is running with data directory {data_dir.resolve()} (no {SERVER_FILE}; "
                          f"start one with 'kiln serve -d {data_dir}')")
    try:
        info = json.loads(path.read_text())
        pid = int(info["pid"])
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise StatusError(f"{path} is not Kiln's server file: {exc}") from None
    if not _alive(pid):
        raise StatusError(f"no Kiln is running with data directory {data_dir.resolve()}: pid {pid} in {path} "
                          "has exited (killed or crashed; a clean stop removes the file)")
    api = info.get("api")
    if not isinstance(api, dict):
        raise StatusError(f"Kiln (pid {pid}) opened no API port, so it cannot be asked")
    bound = str(api.get("host", ""))
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(bound, bound)  # a wildcard: ask loopback
    authority = f"[{host}]:{api['port']}" if ":" in host else f"{host}:{api['port']}"
    return Target(pid, f"{'https' if api.get('tls') else 'http'}://{authority}", _token(data_dir, config))


class Api:
    def __init__(self, target: Target) -> None:
        self.target = target
        # a TLS-only API on this machine presents the operator's certificate for a public name, not 127.0.0.1
        self.http = httpx.Client(base_url=target.base_url, headers={"Authorization": _basic(target.token)}, timeout=10,
                                 verify=not target.base_url.startswith("https"))

    def get(self, path: str) -> Any:
        try:
            r = self.http.get(path)
        except httpx.HTTPError as exc:
            raise StatusError(f"Kiln (pid {self.target.pid}) does not answer on {self.target.base_url}: "
                              f"{exc or type(exc).__name__}") from None
        if r.status_code == 401:
            raise StatusError(f"Kiln on {self.target.base_url} refused the access token (401): give the "
                              "server's Server.xml with -c if it sets Managers/API/AccessToken")
        if r.status_code != 200:
            raise StatusError(f"GET {path} answered {r.status_code}: {r.text[:200]}")
        return r.json().get("response")

    def optional(self, path: str) -> Any:
        """A route a server or an app may not have (no event feed, no Push publisher: 404): None, not an error."""
        try:
            return self.get(path)
        except StatusError as exc:
            if " answered 404:" in str(exc):
                return None
            raise

    def close(self) -> None:
        self.http.close()


def _basic(token: str) -> str:
    """OME compares the decoded credentials with the whole token, which need not hold a colon."""
    return "Basic " + base64.b64encode(token.encode("utf-8")).decode("ascii")


def collect(api: Api) -> dict[str, Any]:
    """Everything the screen shows, as the API answered it."""
    status = api.get("/v1/status")
    streams, pushes, records = [], [], []
    vhosts = api.get("/v1/vhosts") or []
    apps = []
    for vhost in vhosts:
        for app in api.get(f"/v1/vhosts/{quote(vhost, safe='')}/apps") or []:
            apps.append(f"{vhost}/{app}")
            base = f"/v1/vhosts/{quote(vhost, safe='')}/apps/{quote(app, safe='')}"
            for name in api.get(f"{base}/streams") or []:
                path = f"{base}/streams/{quote(name, safe='')}"
                streams.append({"vhost": vhost, "app": app, "name": name, "detail": api.get(path),
                                "stats": api.get(f"/v1/stats/current/vhosts/{quote(vhost, safe='')}/apps/"
                                                 f"{quote(app, safe='')}/streams/{quote(name, safe='')}")})
            # an app without <Push> or <FILE> publishers answers 404 for those tasks: it has none
            pushes += [{"vhost": vhost, "app": app, **p} for p in api.optional(f"{base}:pushes") or []]
            records += [{"vhost": vhost, "app": app, **r} for r in api.optional(f"{base}:records") or []]
    subscriptions = api.optional("/v1/subscriptions") or []
    return {"status": status, "vhosts": vhosts, "apps": apps, "streams": streams, "pushes": pushes,
            "records": records, "subscriptions": subscriptions}


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _duration(seconds: float) -> str:
    s = int(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return (f"{d}d " if d else "") + (f"{h}h " if d or h else "") + f"{m}m {s}s"


def _tracks(detail: dict[str, Any]) -> str:
    parts = []
    for track in (detail.get("input") or {}).get("tracks", []):
        if "video" in track:
            v = track["video"]
            parts.append(f"{v.get('codec', '?').lower()} {v.get('width')}x{v.get('height')} "
                         f"{float(v.get('framerate') or 0):.0f}fps")
        elif "audio" in track:
            a = track["audio"]
            parts.append(f"{a.get('codec', '?').lower()} {a.get('samplerate')}Hz")
    return " + ".join(parts) or "no tracks yet"


def _viewers(stats: dict[str, Any]) -> int:
    connections = stats.get("connections") or {}
    return sum(int(v) for v in connections.values() if isinstance(v, int))


def _replay_line(tail: Any) -> str:
    """What a restart would replay (``journal.sinceSnapshot``), or nothing from a server that does not say."""
    if not isinstance(tail, dict):
        return ""
    return (f"; a restart replays {tail.get('events', 0)} records, about {_size(tail.get('bytes', 0))} "
            f"(after snapshot seq {tail.get('snapshotSeq', 0)})")


def render(found: dict[str, Any], out: TextIO) -> None:
    st = found["status"]
    journal = st.get("journal", {})
    listeners = " ".join(f"{name}={v['host']}:{v['port']}" for name, v in st.get("listeners", {}).items())
    lines = [
        f"Kiln {st.get('version')}  pid {st.get('pid')}  up {_duration(st.get('uptimeSeconds', 0))}  "
        f"since {st.get('startTime')}",
        f"data dir   {st.get('dataDir')}",
        f"config     {st.get('config')}",
        f"listeners  {listeners or '(none)'}",
        f"journal    last seq {journal.get('lastSeq', 0)}, {journal.get('segments', 0)} "
        f"segment{'s' if journal.get('segments') != 1 else ''}, {_size(journal.get('bytes', 0))}"
        + _replay_line(journal.get("sinceSnapshot"))
        + (f"; STOPPED: {journal['failure']}" if journal.get("failure") else ""),
        f"vhosts     {len(found['vhosts'])} ({', '.join(found['vhosts'])}); apps {len(found['apps'])} "
        f"({', '.join(found['apps'])})",
        f"streams    {len(found['streams'])} live",
    ]
    for s in found["streams"]:
        stats = s["stats"] or {}
        lines.append(f"  {s['vhost']}/{s['app']}/{s['name']:<16} {_tracks(s['detail'] or {})}  "
                     f"in {_size(stats.get('totalBytesIn', 0))}  out {_size(stats.get('totalBytesOut', 0))}  "
                     f"viewers {_viewers(stats)}  source {(s['detail'] or {}).get('input', {}).get('sourceType', '?')}")
    lines.append(f"tasks      {len(found['pushes'])} push{'es' if len(found['pushes']) != 1 else ''}, "
                 f"{len(found['records'])} record{'s' if len(found['records']) != 1 else ''}")
    for p in found["pushes"]:
        dest = redact_push_destination(f"{p.get('url', '')}/{p['streamKey']}") if p.get("streamKey") \
            else redact_url(p.get("url", ""))
        error = f"  error: {p['lastError']}" if p.get("lastError") else ""
        lines.append(f"  push   {p['vhost']}/{p['app']}/{p.get('id')}  {p.get('state')}  "
                     f"{(p.get('stream') or {}).get('name', '')} -> {dest}  sent "
                     f"{_size(p.get('totalsentBytes', p.get('sentBytes', 0)))}{error}")
    for r in found["records"]:
        error = f"  error: {r['lastError']}" if r.get("lastError") else ""
        lines.append(f"  record {r['vhost']}/{r['app']}/{r.get('id')}  {r.get('state')}  "
                     f"{(r.get('stream') or {}).get('name', '')} -> {r.get('filePath', '')}{error}")
    lines += _subscription_lines(found.get("subscriptions") or [])
    out.write("\n".join(lines) + "\n")


def _subscription_lines(subs: list[dict[str, Any]]) -> list[str]:
    """Webhook subscriptions with what an operator acts on: delivering or retrying, how many journal
    records the receiver is behind, and why the last POST failed."""
    lines = [f"webhooks   {len(subs)} subscription{'s' if len(subs) != 1 else ''}"]
    for sub in subs:
        d = sub.get("delivery") or {}
        error = f"  error: {d['lastError']}" if d.get("lastError") else ""
        retry = f"  retry at {d['nextRetryTime']}" if d.get("nextRetryTime") else ""
        lines.append(f"  hook   {sub.get('id')}  {d.get('state', '?')}  -> {sub.get('url', '')}  "
                     f"behind {d.get('behind', 0)}  delivered {d.get('delivered', 0)}{error}{retry}")
    return lines


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    try:
        api = Api(find_server(Path(args.data_dir), args.config))
        try:
            found = collect(api)
        finally:
            api.close()
    except StatusError as exc:
        err.write(f"kiln status: {exc}\n")
        return 1
    if args.json:  # what the API answered, secrets masked as everywhere a CLI prints (stream keys, URL passwords)
        out.write(json.dumps(Redactor().payload(found), sort_keys=True) + "\n")
    else:
        render(found, out)
    return 0
