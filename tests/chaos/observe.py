"""What a user sees through GETs, as the workload's flat state (see workload.py), and the check of
that view against what the client was told."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from kiln.timefmt import parse_time
from tests.chaos.workload import DEFAULT_APP, PUBLISHED, PULLS, STOPPED, Command, Key, State


class ObserveError(RuntimeError):
    """A GET that should have answered 200 did not."""


def _get(api: httpx.Client, path: str) -> Any:
    r = api.get(path)
    if r.status_code != 200:
        raise ObserveError(f"GET {path} -> {r.status_code} {r.text[:200]}")
    return r.json()["response"]


def _post(api: httpx.Client, path: str, body: object) -> Any:
    r = api.post(path, json=body)
    if r.status_code != 200:
        raise ObserveError(f"POST {path} -> {r.status_code} {r.text[:200]}")
    return r.json()["response"]


def _pull_history(api: httpx.Client, name: str) -> list[dict[str, Any]]:
    """Every journal record of one pull, oldest first (``GET /v1/journal``, paged)."""
    entity = f"pull:{DEFAULT_APP[0]}/{DEFAULT_APP[1]}/{name}"
    records: list[dict[str, Any]] = []
    after: int | None = None
    while True:
        params: dict[str, Any] = {"entity": entity, "limit": 1000}
        if after is not None:
            params["after"] = after
        r = api.get("/v1/journal", params=params)
        if r.status_code != 200:
            raise ObserveError(f"GET /v1/journal?entity={entity} -> {r.status_code} {r.text[:200]}")
        page = r.json()["response"]
        records.extend(rec for rec in page["records"] if rec["entity"] == entity)
        if not page["more"] or not page["records"]:
            return records
        after = page["records"][-1]["seq"]


API_DELETE = "deleted by API"  # PullRemoved's reason when the API deleted it (kiln/actors/streams.py)


@dataclass(frozen=True)
class PullFate:
    """Why a defined pull is not among the live streams, when it is not a loss: ``retrying`` its
    source (``url``), or ``ended`` by Kiln itself because its source failed (``reason``), as OME
    deletes a pull stream whose source goes away."""

    kind: str  # "retrying" or "ended"
    detail: str


def pull_fate(api: httpx.Client, name: str, started_at: float) -> PullFate | None:
    """``fate_from`` the pull's journal records."""
    return fate_from(_pull_history(api, name), started_at)


def fate_from(records: list[dict[str, Any]], started_at: float) -> PullFate | None:
    """A pull is listed among the streams only while it streams; when its RTSP source stops answering
    (gst-rtsp-server did, under CI load) it is absent from the list although nothing was lost.
    Not a loss when the journal shows either: the pull defined, not removed, and tried by the Kiln
    process started at ``started_at`` (a ``PullFailed`` since then; a pull Kiln forgot at restart has
    no such record and still reads as missing); or its last definition removed by Kiln for a reason
    other than an API delete (its source failed). Anything else is None."""
    defined: dict[str, Any] | None = None
    removed_reason = ""
    tried_since_start = False
    for rec in records:
        if rec["type"] == "PullDefined":
            defined, removed_reason, tried_since_start = rec["payload"], "", False
        elif rec["type"] == "PullRemoved" and defined is not None:
            defined, removed_reason = None, str(rec["payload"].get("reason", ""))
        elif rec["type"] == "PullFailed" and parse_time(rec["time"]) >= started_at - 1.0:
            tried_since_start = True
    if defined is None:
        return PullFate("ended", removed_reason) if removed_reason and removed_reason != API_DELETE else None
    if not tried_since_start:
        return None
    urls = defined.get("urls") or [""]
    return PullFate("retrying", str(defined.get("source_url") or urls[0]))


def observe(api: httpx.Client, started_at: float | None = None) -> tuple[State, bool, dict[Key, PullFate]]:
    """Everything the workload can create, read back; whether the published stream is live (its
    dumps are only visible then, so ``dump`` keys are present only when it is); and why pulls that are
    not live are not a loss (``pull_fate``; looked up when ``started_at``, the wall time this Kiln
    process started, is given). A retrying pull shows in ``seen`` with its URL; an ended one does not."""
    seen: State = {}
    fates: dict[Key, PullFate] = {}
    apps: list[tuple[str, str]] = [DEFAULT_APP]
    for vhost in _get(api, "/v1/vhosts"):
        if vhost == "default":
            continue
        seen[("vhost", vhost)] = vhost
        for app in _get(api, f"/v1/vhosts/{vhost}/apps"):
            seen[("app", vhost, app)] = app
            apps.append((vhost, app))
            for profile in _get(api, f"/v1/vhosts/{vhost}/apps/{app}/outputProfiles"):
                detail = _get(api, f"/v1/vhosts/{vhost}/apps/{app}/outputProfiles/{profile}")
                seen[("profile", vhost, app, profile)] = detail["outputStreamName"]
            for channel in _get(api, f"/v1/vhosts/{vhost}/apps/{app}/scheduledChannels"):
                detail = _get(api, f"/v1/vhosts/{vhost}/apps/{app}/scheduledChannels/{channel}")
                seen[("channel", vhost, app, channel)] = detail["fallbackProgram"]["items"][0]["url"]
            for mux in _get(api, f"/v1/vhosts/{vhost}/apps/{app}/multiplexChannels"):
                detail = _get(api, f"/v1/vhosts/{vhost}/apps/{app}/multiplexChannels/{mux}")
                seen[("mux", vhost, app, mux)] = detail["sourceStreams"][0]["url"]
    for vhost, app in apps:
        base = f"/v1/vhosts/{vhost}/apps/{app}"
        for push in _get(api, f"{base}:pushes"):
            seen[("push", vhost, app, push["id"])] = push["url"]
        for record in _get(api, f"{base}:records"):
            seen[("record", vhost, app, record["id"])] = record["filePath"]
    streams = _get(api, "/v1/vhosts/default/apps/app/streams")
    for name in streams:
        if name in PULLS:
            detail = _get(api, f"/v1/vhosts/default/apps/app/streams/{name}")
            seen[("pull", *DEFAULT_APP, name)] = detail["input"].get("sourceUrl", "")
    for name in PULLS:
        if started_at is not None and name not in streams:
            fate = pull_fate(api, name, started_at)
            if fate is not None:
                fates[("pull", *DEFAULT_APP, name)] = fate
                if fate.kind == "retrying":
                    seen[("pull", *DEFAULT_APP, name)] = fate.detail
    cam_live = PUBLISHED in streams
    if cam_live:
        try:
            dumps = _post(api, f"/v1/vhosts/default/apps/app/streams/{PUBLISHED}:hlsDumps",
                          {"outputStreamName": PUBLISHED})
        except ObserveError:
            cam_live = False  # it left between the two GETs
        else:
            for dump in dumps:
                shown = dump["outputPath"] + ("" if dump["enabled"] else STOPPED)
                seen[("dump", *DEFAULT_APP, PUBLISHED, dump["id"])] = shown
    return seen, cam_live, fates


@dataclass
class Verdict:
    problems: list[str]
    adopted: State  # the state to carry on from (the in-doubt command resolved one way or the other)
    # keys an unanswered command touched that could not be seen yet (dumps while their stream is not
    # live): (before, after), either may still show; resolved by the first check that sees them
    unresolved: Unresolved = field(default_factory=dict)


Unresolved = dict[Key, tuple[str | None, str | None]]


def compare(expected: State, seen: State, doubt: Command | None, *, cam_live: bool, pulls_final: bool,
            unresolved: Unresolved | None = None) -> Verdict:
    """``seen`` must equal ``expected``, except on the keys an unanswered command touched, which must be
    all as before it or all as after it. Pulls reconnect some time after a start (``pulls_final``
    False: a missing pull is not yet a problem); dumps are compared only while the stream is live, so
    an unanswered dump command whose dumps cannot be seen yet stays in doubt (``unresolved``, carried
    from check to check) instead of being taken as done."""

    def comparable(key: Key) -> bool:
        return key[0] != "dump" or cam_live

    problems: list[str] = []
    adopted = dict(expected)
    pending: Unresolved = dict(unresolved or {})
    free: set[Key] = set()
    if doubt is not None:
        touched = {k for k in doubt.touched if comparable(k)}
        seen_part = {k: seen[k] for k in touched if k in seen}
        before = {k: doubt.before[k] for k in touched if k in doubt.before}
        after = {k: doubt.after[k] for k in touched if k in doubt.after}
        if not pulls_final:
            seen_part = {k: v for k, v in seen_part.items() if k[0] != "pull"}
            before = {k: v for k, v in before.items() if k[0] != "pull"}
            after = {k: v for k, v in after.items() if k[0] != "pull"}
        if seen_part == after:
            adopted = {k: v for k, v in adopted.items() if k not in doubt.touched}
            adopted.update({k: v for k, v in doubt.after.items() if k in doubt.touched})
            # what could not be seen is not known to be done: "after" is only a planning guess for it
            pending.update({k: (doubt.before.get(k), doubt.after.get(k)) for k in doubt.touched - touched})
        elif seen_part != before:
            problems.append(f"unacknowledged '{doubt.what}' {doubt.method} {doubt.path} half-exists: "
                            f"seen {seen_part}, before {before}, after {after}")
        free = set(doubt.touched)
    for key, outcomes in list(pending.items()):
        if key in free or not comparable(key):
            continue
        del pending[key]
        got = seen.get(key)
        stopped_then_forgotten = got is None and (outcomes[1] or "").endswith(STOPPED)
        if got in outcomes or stopped_then_forgotten:
            if got is None:
                adopted.pop(key, None)
            else:
                adopted[key] = got
        else:
            problems.append(f"unacknowledged change of {key} half-exists: seen {got!r}, before {outcomes[0]!r}, "
                            f"after {outcomes[1]!r}")
        free.add(key)
    for key in sorted(set(adopted) | set(seen)):
        if key in free or not comparable(key):
            continue
        want, got = adopted.get(key), seen.get(key)
        if key[0] == "dump" and want is not None and want.endswith(STOPPED) and got is None:
            adopted.pop(key)  # a stopped dump frees its id when its stream ends (a publisher reconnecting)
            continue
        if key[0] == "pull":
            if want is not None and got is None and pulls_final:
                problems.append(f"acknowledged pull {key} is missing")
            elif want is None and got is not None:
                problems.append(f"pull {key} exists but was never acknowledged (or its delete was)")
            continue
        if want != got:
            problems.append(f"{key}: expected {want!r}, GET shows {got!r}")
    return Verdict(problems, adopted, pending)
