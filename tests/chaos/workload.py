"""The chaos workload: random API commands, and what each one does to the state a user can GET.

State is a flat map ``key -> value``, where a key names one thing the API lists (a vhost, an app,
an output profile, a push, a record, a pull, a dump, a scheduled or multiplex channel) and the value is what its
GET must show (a URL, a file path...). A command is planned against the state the client believes in
(``before``) and carries the state it would leave (``after``): an acknowledged command moves the
client to ``after``; a refused one leaves ``before``; one whose answer was lost in a crash must be
found wholly ``before`` or wholly ``after`` on the keys it touches, never a mix (half-exists).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

Key = tuple[str, ...]
State = dict[Key, str]

DEFAULT_APP = ("default", "app")
PUBLISHED = "cam"  # the stream an ffmpeg publisher keeps live on default/app (for HLS dumps)
VHOSTS = [f"cv{i}" for i in range(4)]
APPS = [f"ca{i}" for i in range(3)]
PROFILES = [f"cp{i}" for i in range(3)]
PUSHES = [f"cu{i}" for i in range(5)]
RECORDS = [f"cr{i}" for i in range(5)]
PULLS = [f"pl{i}" for i in range(2)]
CHANNELS = [f"sc{i}" for i in range(2)]
MUXES = [f"mx{i}" for i in range(2)]
MAX_RUNNING_DUMPS = 3
STOPPED = " (stopped)"


@dataclass(frozen=True)
class Command:
    what: str
    method: str
    path: str
    body: Any
    before: State
    after: State

    @property
    def touched(self) -> set[Key]:
        """Keys whose value the command changes (added, removed or rewritten)."""
        keys = set(self.before) | set(self.after)
        return {k for k in keys if self.before.get(k) != self.after.get(k)}


def under(state: State, prefix: Key) -> State:
    """Everything at or below ``prefix`` (a vhost's apps and their tasks, an app's profiles...)."""
    return {k: v for k, v in state.items() if k[1:1 + len(prefix)] == prefix}


def without(state: State, prefix: Key) -> State:
    gone = under(state, prefix)
    return {k: v for k, v in state.items() if k not in gone}


@dataclass
class Workload:
    """Plans commands from a seeded RNG; ``pull_url`` is the RTSP source pulls point at."""

    rng: random.Random
    pull_url: str
    dump_root: str
    planned: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def apps(self, state: State) -> list[tuple[str, str]]:
        return [DEFAULT_APP] + [(k[1], k[2]) for k in state if k[0] == "app"]

    def next(self, state: State, *, cam_live: bool) -> Command:
        makers = [(self.create_vhost, 6), (self.delete_vhost, 2), (self.create_app, 6), (self.delete_app, 2),
                  (self.create_profile, 5), (self.delete_profile, 3), (self.start_push, 9), (self.stop_push, 5),
                  (self.start_record, 9), (self.stop_record, 5), (self.create_pull, 1), (self.delete_pull, 1),
                  (self.create_channel, 4), (self.delete_channel, 2), (self.create_mux, 4), (self.delete_mux, 2)]
        if cam_live:
            makers += [(self.start_dump, 4), (self.stop_dump, 2)]
        pick = self.rng.choices([m for m, _ in makers], weights=[w for _, w in makers])[0]
        command = pick(state)
        self.planned += 1
        self.counts[command.what] = self.counts.get(command.what, 0) + 1
        return command

    # -- vhosts and apps ---------------------------------------------------------------------------
    def create_vhost(self, state: State) -> Command:
        name = self.rng.choice(VHOSTS)
        after = dict(state)
        if ("vhost", name) not in state:
            after[("vhost", name)] = name
        return Command("create vhost", "POST", "/v1/vhosts", [{"name": name, "host": {"names": [f"{name}.chaos"]}}],
                       state, after)

    def delete_vhost(self, state: State) -> Command:
        name = self.rng.choice(VHOSTS)
        return Command("delete vhost", "DELETE", f"/v1/vhosts/{name}", None, state, without(state, (name,)))

    def create_app(self, state: State) -> Command:
        vhost, name = self.rng.choice(VHOSTS), self.rng.choice(APPS)
        after = dict(state)
        if ("vhost", vhost) in state and ("app", vhost, name) not in state:
            # an app comes with its "default" profile and the ones given inline
            after[("app", vhost, name)] = name
            after[("profile", vhost, name, "default")] = "${OriginStreamName}"
        # scheduled channels' .sch files go to a directory of this app's own: an app made again under the same
        # name must not find the channels of the one deleted before it (OME loads whatever .sch is there)
        # (and multiplex channels' .mux files likewise)
        files = f"{self.dump_root}/schedules/{vhost}-{name}-{self.rng.randrange(10**6)}"
        body = [{"name": name, "type": "live", "publishers": {"push": {}, "file": {}, "llhls": {}},
                 "providers": {"schedule": {"mediaRootDir": self.dump_root, "scheduleFilesDir": files},
                               "multiplex": {"muxFilesDir": f"{files}-mux"}}}]
        return Command("create app", "POST", f"/v1/vhosts/{vhost}/apps", body, state, after)

    def delete_app(self, state: State) -> Command:
        vhost, name = self.rng.choice(VHOSTS), self.rng.choice(APPS)
        return Command("delete app", "DELETE", f"/v1/vhosts/{vhost}/apps/{name}", None, state,
                       without(state, (vhost, name)))

    def create_profile(self, state: State) -> Command:
        vhost, app = self.rng.choice(self.apps(state)[1:] or [("cv0", "ca0")])
        name = self.rng.choice(PROFILES)
        output = f"${{OriginStreamName}}_{name}"
        after = dict(state)
        if ("app", vhost, app) in state and ("profile", vhost, app, name) not in state:
            after[("profile", vhost, app, name)] = output
        body = [{"name": name, "outputStreamName": output,
                 "encodes": {"videos": [{"name": "v", "bypass": True}], "audios": [{"name": "a", "bypass": True}]}}]
        return Command("create profile", "POST", f"/v1/vhosts/{vhost}/apps/{app}/outputProfiles", body, state, after)

    def delete_profile(self, state: State) -> Command:
        vhost, app = self.rng.choice(self.apps(state)[1:] or [("cv0", "ca0")])
        name = self.rng.choice(PROFILES)
        after = {k: v for k, v in state.items() if k != ("profile", vhost, app, name)}
        return Command("delete profile", "DELETE", f"/v1/vhosts/{vhost}/apps/{app}/outputProfiles/{name}", None,
                       state, after)

    # -- pushes and records ------------------------------------------------------------------------
    def start_push(self, state: State) -> Command:
        vhost, app = self.rng.choice(self.apps(state))
        push_id = self.rng.choice(PUSHES)
        url = f"rtmp://127.0.0.1:1/chaos{self.rng.randrange(1000)}"
        after = dict(state)
        if (vhost, app) == DEFAULT_APP or ("app", vhost, app) in state:
            after.setdefault(("push", vhost, app, push_id), url)
        body = {"id": push_id, "stream": {"name": "nobody"}, "protocol": "rtmp", "url": url, "streamKey": "key"}
        return Command("start push", "POST", f"/v1/vhosts/{vhost}/apps/{app}:startPush", body, state, after)

    def stop_push(self, state: State) -> Command:
        vhost, app = self.rng.choice(self.apps(state))
        push_id = self.rng.choice(PUSHES)
        after = {k: v for k, v in state.items() if k != ("push", vhost, app, push_id)}
        return Command("stop push", "POST", f"/v1/vhosts/{vhost}/apps/{app}:stopPush", {"id": push_id}, state, after)

    def start_record(self, state: State) -> Command:
        vhost, app = self.rng.choice(self.apps(state))
        record_id = self.rng.choice(RECORDS)
        path = f"chaos/{vhost}_{app}_${{Id}}_{self.rng.randrange(1000)}.mp4"
        after = dict(state)
        if (vhost, app) == DEFAULT_APP or ("app", vhost, app) in state:
            after.setdefault(("record", vhost, app, record_id), path)
        body = {"id": record_id, "stream": {"name": "nobody"}, "filePath": path}
        return Command("start record", "POST", f"/v1/vhosts/{vhost}/apps/{app}:startRecord", body, state, after)

    def stop_record(self, state: State) -> Command:
        vhost, app = self.rng.choice(self.apps(state))
        record_id = self.rng.choice(RECORDS)
        after = {k: v for k, v in state.items() if k != ("record", vhost, app, record_id)}
        return Command("stop record", "POST", f"/v1/vhosts/{vhost}/apps/{app}:stopRecord", {"id": record_id},
                       state, after)

    # -- scheduled channels (on API apps: their files are not there, so each channel waits off air) ----------
    def create_channel(self, state: State) -> Command:
        vhost, app = self.rng.choice(self.apps(state)[1:] or [("cv0", "ca0")])
        name = self.rng.choice(CHANNELS)
        url = f"file://{self.rng.choice(['a', 'b'])}.mp4"
        after = dict(state)
        if ("app", vhost, app) in state and ("channel", vhost, app, name) not in state:
            after[("channel", vhost, app, name)] = url
        body = {"stream": {"name": name}, "fallbackProgram": {"items": [{"url": url}]}}
        return Command("create channel", "POST", f"/v1/vhosts/{vhost}/apps/{app}/scheduledChannels", body, state,
                       after)

    def delete_channel(self, state: State) -> Command:
        vhost, app = self.rng.choice(self.apps(state)[1:] or [("cv0", "ca0")])
        name = self.rng.choice(CHANNELS)
        after = {k: v for k, v in state.items() if k != ("channel", vhost, app, name)}
        return Command("delete channel", "DELETE", f"/v1/vhosts/{vhost}/apps/{app}/scheduledChannels/{name}", None,
                       state, after)

    # -- multiplex channels (on API apps: their source is never live, so each channel waits) ------------------
    def create_mux(self, state: State) -> Command:
        vhost, app = self.rng.choice(self.apps(state)[1:] or [("cv0", "ca0")])
        name = self.rng.choice(MUXES)
        url = f"stream://default/app/{self.rng.choice(['s1', 's2'])}"
        after = dict(state)
        if ("app", vhost, app) in state and ("mux", vhost, app, name) not in state:
            after[("mux", vhost, app, name)] = url
        body = {"outputStream": {"name": name}, "sourceStreams": [
            {"name": "s", "url": url, "trackMap": [{"sourceTrackName": "bypass_video", "newTrackName": "v"}]}]}
        return Command("create mux", "POST", f"/v1/vhosts/{vhost}/apps/{app}/multiplexChannels", body, state, after)

    def delete_mux(self, state: State) -> Command:
        vhost, app = self.rng.choice(self.apps(state)[1:] or [("cv0", "ca0")])
        name = self.rng.choice(MUXES)
        after = {k: v for k, v in state.items() if k != ("mux", vhost, app, name)}
        return Command("delete mux", "DELETE", f"/v1/vhosts/{vhost}/apps/{app}/multiplexChannels/{name}", None,
                       state, after)

    # -- pulls and dumps (on default/app) ----------------------------------------------------------
    def create_pull(self, state: State) -> Command:
        name = self.rng.choice(PULLS)
        after = dict(state)
        after.setdefault(("pull", *DEFAULT_APP, name), self.pull_url)
        body = {"name": name, "urls": [self.pull_url], "properties": {"persistent": True}}
        return Command("create pull", "POST", "/v1/vhosts/default/apps/app/streams", body, state, after)

    def delete_pull(self, state: State) -> Command:
        name = self.rng.choice(PULLS)
        after = {k: v for k, v in state.items() if k != ("pull", *DEFAULT_APP, name)}
        return Command("delete pull", "DELETE", f"/v1/vhosts/default/apps/app/streams/{name}", None, state, after)

    def start_dump(self, state: State) -> Command:
        running = [k for k, v in state.items() if k[0] == "dump" and not v.endswith(STOPPED)]
        if len(running) >= MAX_RUNNING_DUMPS:
            return self.stop_dump(state)
        # a fresh id each time: a stopped dump keeps its id until the stream ends, which chaos rarely lets it
        dump_id = f"cd{self.rng.randrange(10**6)}"
        path = f"{self.dump_root}/{dump_id}"
        after = dict(state)
        after.setdefault(("dump", *DEFAULT_APP, PUBLISHED, dump_id), path)
        body = {"id": dump_id, "outputStreamName": PUBLISHED, "outputPath": path}
        return Command("start dump", "POST", f"/v1/vhosts/default/apps/app/streams/{PUBLISHED}:startHlsDump", body,
                       state, after)

    def stop_dump(self, state: State) -> Command:
        running = sorted(k[-1] for k, v in state.items() if k[0] == "dump" and not v.endswith(STOPPED))
        dump_id = self.rng.choice(running + [f"cd{self.rng.randrange(10**6)}"])
        key = ("dump", *DEFAULT_APP, PUBLISHED, dump_id)
        after = dict(state)
        if key in state and not state[key].endswith(STOPPED):
            after[key] = state[key] + STOPPED  # listed, disabled, its id taken until the stream ends
        body = {"id": dump_id, "outputStreamName": PUBLISHED}
        return Command("stop dump", "POST", f"/v1/vhosts/default/apps/app/streams/{PUBLISHED}:stopHlsDump", body,
                       state, after)
