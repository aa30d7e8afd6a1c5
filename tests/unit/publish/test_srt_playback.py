"""SRT playback without a network: what a caller's streamid names, which tracks it gets, which
callers the handshake refuses and why, and when a caller counts as stalled."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

import pytest

from kiln.media.model import Codec, MediaKind, Track
from kiln.media.net.srt.errors import RejectCode, SrtRejected
from kiln.media.net.srt.streamid import StreamIdError
from kiln.media.publish.srt.publisher import SrtPlayback, srt_enabled
from kiln.media.publish.srt.session import SessionHooks, SrtPlaySession, StallWatch
from kiln.media.publish.srt.target import NotPlayable, parse_playback_streamid, playback_tracks
from kiln.media.stream.live import LiveStream
from kiln.media.stream.registry import StreamRegistry

VIDEO = Track(0, MediaKind.VIDEO, Codec.H264, Fraction(1, 90000), name="bypass_video")
AAC = Track(1, MediaKind.AUDIO, Codec.AAC, Fraction(1, 48000), name="aac_audio")
OPUS = Track(2, MediaKind.AUDIO, Codec.OPUS, Fraction(1, 48000), name="opus_audio")
ID3 = Track(3, MediaKind.DATA, Codec.ID3, Fraction(1, 1000))
PLAYLISTS = [{"name": "default", "fileName": "master",
              "renditions": [{"name": "bypass", "video": "bypass_video", "audio": "aac_audio"},
                             {"name": "other", "video": "bypass_video", "audio": "opus_audio"}]},
             {"name": "Audio", "fileName": "sound", "rendition": {"name": "a", "audio": "opus_audio"}},
             {"name": "Broken", "fileName": "broken", "renditions": [{"name": "x", "video": "vp8_video"}]}]


# -- streamid -----------------------------------------------------------------------------------------
def test_ome_form_percent_encoded_url_with_port() -> None:
    target = parse_playback_streamid("srt%3A%2F%2Fkiln.example%3A9998%2Fapp%2Fcam", 9998)
    assert (target.host, target.port, target.app, target.stream, target.playlist) == \
        ("kiln.example", 9998, "app", "cam", None)


def test_ome_form_with_a_playlist() -> None:
    target = parse_playback_streamid("srt%3A%2F%2F127.0.0.1%3A9998%2Fapp%2Fcam%2F360p", 9998)
    assert (target.app, target.stream, target.playlist) == ("app", "cam", "360p")


def test_vhost_form_and_access_control_form() -> None:
    assert parse_playback_streamid("default/app/cam/master", 9998).playlist == "master"
    target = parse_playback_streamid("#!::u=default/app/cam,m=request", 9998)
    assert (target.host, target.app, target.stream) == ("default", "app", "cam")


@pytest.mark.parametrize("streamid", ["", "default/app", "default/app/cam/list/extra", "default//cam",
                                      "srt%3A%2F%2Fhost%2Fapp"])
def test_streamids_that_name_no_stream(streamid: str) -> None:
    with pytest.raises(StreamIdError):
        parse_playback_streamid(streamid, 9998)


# -- tracks -------------------------------------------------------------------------------------------
def test_without_a_playlist_every_audio_and_video_track() -> None:
    chosen = playback_tracks([ID3, OPUS, AAC, VIDEO], PLAYLISTS, None)
    assert [t.id for t in chosen.tracks] == [0, 1, 2]


def test_a_playlist_gives_its_first_rendition_only() -> None:
    assert [t.name for t in playback_tracks([VIDEO, AAC, OPUS], PLAYLISTS, "master").tracks] == \
        ["bypass_video", "aac_audio"]
    assert [t.name for t in playback_tracks([VIDEO, AAC, OPUS], PLAYLISTS, "sound").tracks] == ["opus_audio"]


@pytest.mark.parametrize(("playlist", "reason"), [
    ("nolist", "no playlist 'nolist' in the output stream (playlists: broken, master, sound)"),
    ("broken", "playlist 'broken': no video track 'vp8_video' SRT can carry"),
])
def test_playlists_that_cannot_be_played(playlist: str, reason: str) -> None:
    with pytest.raises(NotPlayable, match=r"^" + reason.replace("(", r"\(").replace(")", r"\)") + "$"):
        playback_tracks([VIDEO, AAC, OPUS], PLAYLISTS, playlist)


def test_an_output_without_media_cannot_be_played() -> None:
    with pytest.raises(NotPlayable, match="no track SRT can carry"):
        playback_tracks([], [], None)


def test_srt_enabled_only_with_publishers_srt() -> None:
    assert srt_enabled({"publishers": {"srt": {}, "llhls": {}}})
    assert not srt_enabled({"publishers": {"llhls": {}}})
    assert not srt_enabled({})


# -- stall ----------------------------------------------------------------------------------------------
def test_stalled_after_consecutive_checks_over_the_limit_only() -> None:
    watch = StallWatch(buffer_ms=2000, checks=3)
    assert [watch.stalled(ms) for ms in (2500, 3000, 10, 2500, 2600)] == [False, False, False, False, False]
    assert watch.stalled(2700)


# -- handshake -------------------------------------------------------------------------------------------
BYPASS = {"name": "bypass", "outputStreamName": "${OriginStreamName}_o",
          "encodes": {"videos": [{"name": "bypass_video", "bypass": "true"}],
                      "audios": [{"name": "aac_audio", "bypass": "true"}]}}


class Router:
    def vhost_for_host(self, host: str, *, allow_vhost_name: bool = False) -> str | None:
        return "default" if host in ("kiln.example", "127.0.0.1") or (allow_vhost_name and host == "default") \
            else None


class Stats:
    def __init__(self) -> None:
        self.connections: list[tuple[str, str, str, str, int]] = []

    def bytes_out(self, vhost: str, app: str, stream: str, n: int) -> None: ...

    def connection(self, vhost: str, app: str, stream: str, kind: str, delta: int) -> None:
        self.connections.append((vhost, app, stream, kind, delta))


@pytest.fixture
def live() -> Iterator[LiveStream]:
    stream = LiveStream("default", "app", "cam", source_type="Rtmp", source_url="", profiles=[BYPASS])
    stream.on_track(Track(0, MediaKind.VIDEO, Codec.H264, Fraction(1, 1000), width=320, height=180))
    stream.on_track(Track(1, MediaKind.AUDIO, Codec.AAC, Fraction(1, 1000)))
    yield stream
    stream.end("test over")


def playback(live: LiveStream, app_config: dict[str, Any]) -> tuple[SrtPlayback, Stats]:
    registry = StreamRegistry()
    registry.add(live)
    stats = Stats()
    server = SrtPlayback(Router(), registry, stats, host="127.0.0.1", port=0)
    server.stream_started(live, app_config)
    return server, stats


def test_a_caller_for_an_output_stream_is_accepted(live: LiveStream) -> None:
    server, _ = playback(live, {"publishers": {"srt": {}}})
    session = server._on_accept("srt%3A%2F%2Fkiln.example%3A9998%2Fapp%2Fcam_o", ("10.0.0.9", 5000))
    assert isinstance(session, SrtPlaySession)
    assert session.label == "default/app/cam_o@10.0.0.9:5000"
    assert [t.kind for t in session.tracks] == [MediaKind.VIDEO, MediaKind.AUDIO]
    assert not session.attached


@pytest.mark.parametrize(("streamid", "code", "reason"), [
    ("elsewhere.example/app/cam_o", RejectCode.NOT_FOUND, "no virtual host matches host 'elsewhere.example'"),
    ("default/app/cam", RejectCode.NOT_FOUND, "no stream 'cam' in application default/app"),
    ("default/other/cam_o", RejectCode.NOT_FOUND, "no stream 'cam_o' in application default/other"),
    ("default/app/cam_o/low", RejectCode.NOT_FOUND, "no playlist 'low' in the output stream (playlists: none)"),
])
def test_refusals_say_why(live: LiveStream, streamid: str, code: RejectCode, reason: str) -> None:
    server, _ = playback(live, {"publishers": {"srt": {}}})
    with pytest.raises(SrtRejected) as refused:
        server._on_accept(streamid, ("10.0.0.9", 5000))
    assert (refused.value.code, refused.value.reason) == (code, reason)


def test_an_app_without_the_srt_publisher_refuses(live: LiveStream) -> None:
    server, _ = playback(live, {"publishers": {"llhls": {}}})
    with pytest.raises(SrtRejected) as refused:
        server._on_accept("default/app/cam_o", ("10.0.0.9", 5000))
    assert refused.value.code == RejectCode.FORBIDDEN
    assert refused.value.reason == "SRT publisher is not enabled in application default/app"


def test_a_caller_that_never_connects_counts_no_connection(live: LiveStream) -> None:
    """Accepted in the handshake, then the handshake failed (a wrong passphrase): no +1, no -1."""
    server, stats = playback(live, {"publishers": {"srt": {}}})
    session = server._on_accept("default/app/cam_o", ("10.0.0.9", 5000))
    session.on_close("handshake failed")
    assert stats.connections == []
    session.attach(live.outputs["cam_o"])
    assert not session.attached


def test_a_caller_as_the_stream_starts_is_accepted_before_its_actor_hands_it_over(live: LiveStream) -> None:
    """The API lists a started stream's outputs a moment before its actor hands it to the publishers
    (stream_started); a caller in that moment was refused FORBIDDEN as if the app did not publish SRT."""
    registry = StreamRegistry()
    registry.add(live)
    server = SrtPlayback(Router(), registry, Stats(), host="127.0.0.1", port=0)
    server.stream_created(live, {"publishers": {"srt": {}}})  # as the stream supervisor opens it
    assert isinstance(server._on_accept("default/app/cam_o", ("10.0.0.9", 5000)), SrtPlaySession)
    other = SrtPlayback(Router(), registry, Stats(), host="127.0.0.1", port=0)
    other.stream_created(live, {"publishers": {"llhls": {}}})
    with pytest.raises(SrtRejected) as refused:
        other._on_accept("default/app/cam_o", ("10.0.0.9", 5000))
    assert refused.value.code == RejectCode.FORBIDDEN


# -- pull on demand ---------------------------------------------------------------------------------------
SRT_APP = {"publishers": {"srt": {}}}


ORIGINS = {"origin": [{"location": "/app/", "pass": {"scheme": "ovt", "urls": {"url": ["origin:9000/app/"]}}},
                      {"location": "/nosrt/", "pass": {"scheme": "ovt", "urls": {"url": ["origin:9000/nosrt/"]}}},
                      {"location": "/none/", "pass": {"scheme": "ovt", "urls": {"url": ["origin:9000/none/"]}}}]}


class Apps:
    """The vhost ``default``: apps ``app`` (SRT), ``nosrt`` and ``other`` (no Origins rule for ``other``); a rule
    for ``none``, which is no app."""

    def __init__(self, vhost: dict[str, Any] | None = None) -> None:
        self.vhost = {"origins": ORIGINS} if vhost is None else vhost

    def app_config(self, vhost: str, app: str) -> dict[str, Any] | None:
        return {"app": SRT_APP, "other": SRT_APP, "nosrt": {"publishers": {"llhls": {}}}}.get(app) \
            if vhost == "default" else None

    def vhost_config(self, vhost: str) -> dict[str, Any] | None:
        return self.vhost if vhost == "default" else None


class Origins:
    """Pull on demand: ``arrives`` is the stream the pull brings (None: no origin gave it); ``hold`` keeps the
    pull waiting until cancelled."""

    def __init__(self, server: Callable[[], SrtPlayback], registry: StreamRegistry, arrives: LiveStream | None,
                 hold: bool = False) -> None:
        self.server, self.registry, self.arrives, self.hold = server, registry, arrives, hold
        self.asked: list[tuple[str, str, str, str]] = []
        self.cancelled = threading.Event()

    async def pull(self, vhost: str, app: str, stream: str, query: str = "") -> bool:
        self.asked.append((vhost, app, stream, query))
        if self.hold:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        if self.arrives is None:
            return False
        self.registry.add(self.arrives)
        self.server().stream_started(self.arrives, SRT_APP)
        return True


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """The server's event loop, on its own thread as in ``kiln serve``."""
    running = asyncio.new_event_loop()
    thread = threading.Thread(target=running.run_forever, daemon=True)
    thread.start()
    yield running
    running.call_soon_threadsafe(running.stop)
    thread.join(5)
    running.close()


def pulling(loop: asyncio.AbstractEventLoop, arrives: LiveStream | None, hold: bool = False,
            apps: Apps | None = None) -> tuple[SrtPlayback, Stats, Origins]:
    registry, stats = StreamRegistry(), Stats()
    origins = Origins(lambda: server, registry, arrives, hold)
    server = SrtPlayback(Router(), registry, stats, host="127.0.0.1", port=0, loop=loop, origins=origins,
                         apps=apps or Apps())
    return server, stats, origins


def test_a_caller_for_a_missing_stream_is_accepted_and_served_once_the_pull_brings_it(
        loop: asyncio.AbstractEventLoop, live: LiveStream) -> None:
    server, stats, origins = pulling(loop, live)
    session = server._on_accept("#!::u=default/app/cam_o?token=abc", ("10.0.0.9", 5000))
    assert session.output is None and origins.asked == []  # libsrt's thread only looked in memory
    assert session.hooks.arrive(session) is None
    assert origins.asked == [("default", "app", "cam_o", "token=abc")]
    assert session.output is live.outputs["cam_o"]
    assert [t.kind for t in session.tracks] == [MediaKind.VIDEO, MediaKind.AUDIO]
    assert stats.connections == [("default", "app", "cam", "srt", +1)]
    session.on_close("hung up")
    assert stats.connections[-1] == ("default", "app", "cam", "srt", -1)


def test_a_caller_whose_stream_no_origin_has_is_closed_with_the_reason_and_counts_nothing(
        loop: asyncio.AbstractEventLoop) -> None:
    server, stats, origins = pulling(loop, None)
    session = server._on_accept("default/app/nothing", ("10.0.0.9", 5000))
    assert session.hooks.arrive(session) == \
        "could not find stream 'nothing' in application default/app: no origin gave it"
    assert origins.asked == [("default", "app", "nothing", "")]
    session.on_close("disconnected")
    assert stats.connections == []


def test_a_caller_that_leaves_during_the_pull_stops_waiting_and_cancels_its_wait(
        loop: asyncio.AbstractEventLoop) -> None:
    server, stats, origins = pulling(loop, None, hold=True)
    session = server._on_accept("default/app/cam_o", ("10.0.0.9", 5000))
    answers: list[str | None] = []
    waiting = threading.Thread(target=lambda: answers.append(session.hooks.arrive(session)))
    waiting.start()
    deadline = time.monotonic() + 5
    while not origins.asked and time.monotonic() < deadline:
        time.sleep(0.01)
    assert origins.asked and waiting.is_alive()
    session.on_close("hung up")
    waiting.join(2)  # ARRIVAL_POLL_S, not the 25 s a pull may take
    assert not waiting.is_alive() and answers == ["caller left"]
    assert origins.cancelled.wait(2)
    assert stats.connections == []


def test_a_wedged_loop_cannot_hold_a_caller_past_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pull bounds itself (15 s, then 10 s for media); a loop that never runs it is bounded here too."""
    from kiln.media.publish.srt import publisher
    monkeypatch.setattr(publisher, "PULL_WAIT_S", 0.0)
    monkeypatch.setattr(publisher, "READY_WAIT_S", 0.0)
    monkeypatch.setattr(publisher, "ARRIVAL_SLACK_S", 0.3)
    stopped = asyncio.new_event_loop()  # never run
    try:
        server, stats, origins = pulling(stopped, None)
        session = server._on_accept("default/app/cam_o", ("10.0.0.9", 5000))
        began = time.monotonic()
        assert session.hooks.arrive(session) == \
            "could not find stream 'cam_o' in application default/app: no origin gave it"
        assert time.monotonic() - began < 2
        assert origins.asked == [] and stats.connections == []
    finally:
        stopped.run_until_complete(asyncio.sleep(0))  # the cancelled wait is dropped, never run
        stopped.close()


@pytest.mark.parametrize(("streamid", "code", "reason"), [
    ("default/other/cam_o", RejectCode.NOT_FOUND, "no stream 'cam_o' in application default/other"),
    ("default/none/cam_o", RejectCode.NOT_FOUND, "no stream 'cam_o' in application default/none"),
    ("default/nosrt/cam_o", RejectCode.FORBIDDEN, "SRT publisher is not enabled in application default/nosrt"),
])
def test_a_missing_stream_of_an_app_that_cannot_play_it_is_refused_without_a_pull(
        loop: asyncio.AbstractEventLoop, streamid: str, code: RejectCode, reason: str) -> None:
    server, _, origins = pulling(loop, None)
    with pytest.raises(SrtRejected) as refused:
        server._on_accept(streamid, ("10.0.0.9", 5000))
    assert (refused.value.code, refused.value.reason) == (code, reason)
    assert origins.asked == []


def test_an_origin_map_store_makes_any_stream_of_the_vhost_pullable(loop: asyncio.AbstractEventLoop) -> None:
    """Which origin has it is Redis's to say, on the loop: the handshake only sees the vhost has a store."""
    store = {"originMapStore": {"redisServer": {"host": "127.0.0.1:6379"}}}
    server, _, _ = pulling(loop, None, apps=Apps(store))
    assert server._on_accept("default/other/cam_o", ("10.0.0.9", 5000)).output is None


def test_a_refused_caller_starts_no_pull(live: LiveStream) -> None:
    """Admission first (the session's thread), as HLS v3: a refused viewer never reaches the pull."""
    calls: list[str] = []
    hooks = SessionHooks(on_bytes=lambda n: None, disconnect=lambda s, why: calls.append(f"disconnect {why}"),
                         closed=lambda s: None, admit=lambda s: "access denied: no",
                         arrive=lambda s: calls.append("arrive") or None)
    session = SrtPlaySession("default/app/cam_o@10.0.0.9:5000", None, [], hooks)
    session._run()
    assert calls == ["disconnect access denied: no"]


def test_a_caller_whose_stream_started_after_its_handshake_plays_it_and_pulls_nothing(
        loop: asyncio.AbstractEventLoop) -> None:
    """Accepted while the stream was connecting here, and the stream started before the session's thread looked:
    it is served, no origin is asked (the session thread saw "not connecting any more" and pulled)."""
    early = LiveStream("default", "app", "cam", source_type="Rtmp", source_url="", profiles=[BYPASS])
    try:
        server, stats, origins = pulling(loop, None)
        origins.registry.add(early)
        session = server._on_accept("default/app/cam_o", ("10.0.0.9", 5000))
        early.on_track(Track(0, MediaKind.VIDEO, Codec.H264, Fraction(1, 1000), width=320, height=180))
        early.on_track(Track(1, MediaKind.AUDIO, Codec.AAC, Fraction(1, 1000)))
        server.stream_started(early, SRT_APP)
        assert session.hooks.arrive(session) is None and origins.asked == []
        assert session.output is early.outputs["cam_o"]
    finally:
        early.end("test over")


def test_a_caller_as_its_publisher_connects_here_waits_for_it_and_pulls_nothing(
        loop: asyncio.AbstractEventLoop) -> None:
    """The stream is here but not started (its first tracks not known): the caller waits for it, as WebRTC does,
    and no origin is asked for a stream that is being published here."""
    early = LiveStream("default", "app", "cam", source_type="Rtmp", source_url="", profiles=[BYPASS])
    try:
        server, stats, origins = pulling(loop, None)
        origins.registry.add(early)
        session = server._on_accept("default/app/cam_o", ("10.0.0.9", 5000))
        answers: list[str | None] = []
        waiting = threading.Thread(target=lambda: answers.append(session.hooks.arrive(session)))
        waiting.start()
        early.on_track(Track(0, MediaKind.VIDEO, Codec.H264, Fraction(1, 1000), width=320, height=180))
        early.on_track(Track(1, MediaKind.AUDIO, Codec.AAC, Fraction(1, 1000)))
        server.stream_started(early, SRT_APP)
        waiting.join(5)
        assert answers == [None] and origins.asked == []
        assert session.output is early.outputs["cam_o"]
        assert stats.connections == [("default", "app", "cam", "srt", +1)]
    finally:
        early.end("test over")
