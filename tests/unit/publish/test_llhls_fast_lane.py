"""The LL-HLS fast lane (LlhlsServer.fast, driven by kiln/http/media_protocol.py) answers exactly what the
Starlette path answers for live files, leaves everything else to it, and wakes blocked requests once per
part; chunklists are rendered once per change of the stream and per session bytes are the same."""

from __future__ import annotations

import asyncio
import gzip
import re
from fractions import Fraction
from typing import Any

import httpx

from kiln.media.model import Codec, MediaKind, Packet, Track
from kiln.media.publish.llhls.packager import TrackPackager
from kiln.media.publish.llhls.publisher import LlhlsPublisher, settings_from
from kiln.media.publish.llhls.server import FastAnswer, FastWait, LlhlsServer
from kiln.media.publish.llhls.stream import LlhlsStream
from kiln.media.stream.hub import StreamHub
from kiln.media.stream.live import LiveStream, OutputStream, OutputTrack
from tests.unit.publish.test_llhls_port_answers import Bytes, Hosts, NoPendingStreams

RATE = 48000
FRAME = 1024
AUDIO = Track(1, MediaKind.AUDIO, Codec.AAC, Fraction(1, RATE), config=b"\x11\x90", sample_rate=RATE, channels=2,
              samples_per_frame=FRAME, codec_string="mp4a.40.2")
SKIP = {"date", "server"}  # uvicorn's default headers: the protocol adds them to both paths


class Stats:
    def connection(self, vhost: str, app: str, stream: str, kind: str, delta: int) -> None:
        pass


class Live:
    """A publisher with one live audio stream ``app/cam`` fed by hand, and its server."""

    def __init__(self, chunk_duration: float = 0.5) -> None:
        self.publisher = LlhlsPublisher(stats=Stats())
        live = LiveStream("default", "app", "cam", source_type="Rtmp", source_url="", profiles=[])
        track = OutputTrack(AUDIO.id, MediaKind.AUDIO, "audio", {}, True, AUDIO.id, track=AUDIO)
        output = OutputStream("cam", {}, [track], StreamHub("default/app/cam"))
        settings = settings_from({"chunkDuration": chunk_duration, "segmentDuration": 1, "segmentCount": 3})
        self.stream = LlhlsStream(asyncio.get_running_loop(), live, output, settings)
        self.publisher.streams[("default", "app", "cam")] = self.stream
        self.bytes = Bytes()
        self.server = LlhlsServer(self.publisher, Hosts(), NoPendingStreams(), self.bytes)
        self.sent = 0
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.server.starlette),
                                        base_url="http://kiln.test:3333")

    def feed(self, seconds: float) -> None:
        for i in range(self.sent, self.sent + int(seconds * RATE / FRAME)):
            self.stream._on_packet(Packet(AUDIO.id, i * FRAME, i * FRAME, AUDIO.time_base,
                                          i.to_bytes(4, "big") * 8, keyframe=True))
        self.sent += int(seconds * RATE / FRAME)

    @property
    def audio(self) -> TrackPackager:
        """The packager of the one (audio) track."""
        pkg = self.stream.track_by_id(AUDIO.id)
        assert pkg is not None
        return pkg

    async def session(self) -> str:
        master = (await self.client.get("/app/cam/llhls.m3u8")).text
        found = re.search(r"session=(\w+)", master)
        assert found is not None, master
        return found.group(1)

    def fast(self, path: str, method: str = "GET", accept: str = "gzip", origin: str | None = None) -> Any:
        raw, _, query = path.partition("?")
        return self.server.fast(method, raw.encode(), query.encode(), "kiln.test:3333", origin, None, accept)


def _headers(r: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in r.headers.items() if k not in SKIP}


def _fast_headers(answer: FastAnswer) -> dict[str, str]:
    out = {k.decode(): v.decode() for k, v in answer.headers}
    out["content-length"] = str(len(answer.body))
    return out


def test_every_live_file_gets_the_same_answer_from_the_fast_lane_as_from_starlette() -> None:
    async def run() -> None:
        live = Live()
        live.feed(4.5)
        session = await live.session()
        key = live.stream.key
        q = f"session={session}"
        pkg = live.audio
        last = pkg.last_part()
        assert last is not None
        paths = [f"/app/cam/chunklist_1_audio_{key}_llhls.m3u8?{q}",
                 f"/app/cam/chunklist_1_audio_{key}_llhls.m3u8?{q}&_HLS_msn={last[0]}&_HLS_part={last[1]}",
                 f"/app/cam/chunklist_1_audio_{key}_llhls.m3u8?{q}&_HLS_legacy=YES",
                 f"/app/cam/init_1_audio_{key}_llhls.m4s?{q}",
                 f"/app/cam/seg_1_{last[0] - 1}_audio_{key}_llhls.m4s?{q}",
                 f"/app/cam/part_1_{last[0]}_{last[1]}_audio_{key}_llhls.m4s?{q}"]
        for path in paths:
            for method in ("GET", "HEAD"):
                for accept, origin in (("gzip", None), ("", "https://player.example")):
                    r = await live.client.request(method, path, headers={"accept-encoding": accept,
                                                                         **({"origin": origin} if origin else {})})
                    before = live.bytes.total
                    answer = live.fast(path, method, accept, origin)
                    assert isinstance(answer, FastAnswer), (path, answer)
                    assert (answer.status, _fast_headers(answer)) == (r.status_code, _headers(r)), path
                    body = b"" if method == "HEAD" else answer.body
                    assert body == r.content or gzip.decompress(body) == r.content, path
                    assert live.bytes.total - before == len(body), "bytes out are counted as on the Starlette path"
        await live.client.aclose()

    asyncio.run(run())


def test_what_the_fast_lane_leaves_to_starlette() -> None:
    async def run() -> None:
        live = Live()
        live.feed(2.5)
        session = await live.session()
        key = live.stream.key
        left = [
            "/app/cam/llhls.m3u8",                                               # masters ask admission
            f"/app/cam/chunklist_1_audio_{key}_llhls.m3u8",                      # no session: 401
            f"/app/cam/chunklist_1_audio_{key}_llhls.m3u8?session=9_unknown",    # a session not admitted here
            f"/app/cam/chunklist_1_audio_WRONGKEY_llhls.m3u8?session={session}",  # 404
            f"/app/cam/chunklist_1_audio_{key}_llhls.m3u8?session={session}&_HLS_part=1",  # 400
            f"/app/cam/chunklist_1_audio_{key}_llhls.m3u8?session={session}&_HLS_msn=99&_HLS_part=0",  # too far
            f"/app/cam/chunklist_1_audio_{key}_llhls.m3u8?session={session}&format=ts",  # HLS v3's
            f"/app/cam/part_1_99_0_audio_{key}_llhls.m4s?session={session}",     # beyond the next segment: 404
            f"/app/nope/chunklist_1_audio_{key}_llhls.m3u8?session={session}",   # no such stream
            f"/app/cam%20x/chunklist_1_audio_{key}_llhls.m3u8?session={session}",  # encoded names: decoded there
            f"/app/cam/chunklist_1_audio_{key}_llhls.m3u8?session={session}&direction=whep",
            "/app/cam/thumb.jpg",
        ]
        for path in left:
            assert live.fast(path) is None, path
        assert live.fast(f"/app/cam/init_1_audio_{key}_llhls.m4s?session={session}", "POST") is None
        await live.client.aclose()

    asyncio.run(run())


def test_a_blocked_reload_is_woken_once_by_the_part_it_waits_for() -> None:
    async def run() -> None:
        live = Live()
        live.feed(2.5)
        session = await live.session()
        pkg = live.audio
        nxt = live.stream.next_part_of(pkg)
        path = (f"/app/cam/chunklist_1_audio_{live.stream.key}_llhls.m3u8?session={session}"
                f"&_HLS_msn={nxt[0]}&_HLS_part={nxt[1]}")
        waits = [live.fast(path) for _ in range(100)]
        assert all(isinstance(w, FastWait) for w in waits)
        assert all(w.retry() is None for w in waits), "nothing new yet: still blocked"
        answered: list[FastAnswer] = []

        def waiter(w: FastWait) -> Any:
            def changed() -> None:
                got = w.retry()
                if got is None:
                    w.on_next_change(changed)
                else:
                    answered.append(got)
            return changed

        for w in waits:
            w.on_next_change(waiter(w))
        changes = live.stream.changes
        while not pkg.has_part(*nxt):
            live.feed(FRAME / RATE)
        await asyncio.sleep(0)  # the future's callbacks run on the loop
        await asyncio.sleep(0)
        assert len(answered) == 100
        assert live.stream.changes - changes == 1, "one change (one wake) for the part, shared by every waiter"
        text = gzip.decompress(answered[0].body).decode()
        assert f"part_1_{nxt[0]}_{nxt[1]}_audio" in text
        assert len({a.body for a in answered}) == 1, "one rendering shared by the hundred answers"
        give_up = waits[0].give_up()
        assert give_up.status == 200 and waits[0].timeout == 3 * live.stream.settings.segment_duration
        await live.client.aclose()

    asyncio.run(run())


def test_chunklists_are_rendered_once_per_change_with_each_session_in_its_uris() -> None:
    async def run() -> None:
        live = Live()
        live.feed(4.5)
        sessions = [await live.session() for _ in range(3)]
        key = live.stream.key
        pkg = live.audio
        bodies = []
        for s in sessions:
            answer = live.fast(f"/app/cam/chunklist_1_audio_{key}_llhls.m3u8?session={s}", accept="")
            assert isinstance(answer, FastAnswer), (answer, pkg.last_part(), pkg.first_segment_number)
            expected = live.stream.chunklist(pkg, f"session={s}", legacy=False, rewind=True).encode()
            assert answer.body == expected
            bodies.append(answer.body)
        assert len(set(bodies)) == 3
        assert all(f"session={s}".encode() in b for s, b in zip(sessions, bodies, strict=True))
        first = bodies[0]
        live.feed(0.6)
        after = live.fast(f"/app/cam/chunklist_1_audio_{key}_llhls.m3u8?session={sessions[0]}", accept="")
        assert isinstance(after, FastAnswer) and after.body != first
        assert after.body == live.stream.chunklist(pkg, f"session={sessions[0]}", legacy=False, rewind=True).encode()
        await live.client.aclose()

    asyncio.run(run())


def test_a_cached_chunklist_is_never_staler_than_a_fresh_rendering_frame_by_frame() -> None:
    async def run() -> None:
        live = Live()
        live.feed(2.5)
        session = await live.session()
        pkg = live.audio
        path = f"/app/cam/chunklist_1_audio_{live.stream.key}_llhls.m3u8?session={session}&_HLS_msn=0&_HLS_part=0"
        for _ in range(int(3.0 * RATE / FRAME)):  # segment ends and hints move between parts too
            live.feed(FRAME / RATE)
            answer = live.fast(path, accept="")
            assert isinstance(answer, FastAnswer)
            assert answer.body == live.stream.chunklist(pkg, f"session={session}", legacy=False,
                                                        rewind=True).encode()
        await live.client.aclose()

    asyncio.run(run())


def test_a_blocked_part_request_waits_its_whole_hold_however_often_parts_wake_it() -> None:
    """Every part wakes a blocked request; the hold (3 target durations, 3 s here) is time, not a count of
    wakes: charged a second per wake it ran out after three parts and the part was answered 404."""
    async def run() -> None:
        live = Live(chunk_duration=0.1)
        live.feed(2.5)
        session = await live.session()
        pkg = live.audio
        msn, _ = live.stream.next_part_of(pkg)
        path = f"/app/cam/part_1_{msn + 1}_0_audio_{live.stream.key}_llhls.m4s?session={session}"
        wanted = asyncio.ensure_future(live.client.get(path))
        wakes = 0
        while not wanted.done() and wakes < 40:  # a part every 10 ms: many wakes well inside the hold
            await asyncio.sleep(0.01)
            before = live.stream.changes
            live.feed(0.1)
            wakes += live.stream.changes > before
        r = await asyncio.wait_for(wanted, 5)
        assert wakes > 3, "the request must have been woken more often than its hold has seconds"
        assert r.status_code == 200 and r.content
        await live.client.aclose()

    asyncio.run(run())


def test_an_app_changed_or_a_stream_gone_is_seen_by_the_next_request_though_queries_and_sections_are_kept() -> None:
    """The fast lane keeps each query's parse and the last app config's LLHLS section; a new config (the catalog
    hands out a new dict) and a stream no longer published take effect at once."""

    async def run() -> None:
        live = Live()
        live.feed(2.5)
        session = await live.session()
        path = f"/app/cam/init_1_audio_{live.stream.key}_llhls.m4s?session={session}"
        hosts = Hosts()
        live.server.apps = hosts
        assert isinstance(live.fast(path), FastAnswer)
        config = {"name": "app", "publishers": {"llhls": {"crossDomains": {"urls": ["https://only.example"]}}}}
        hosts.app_for_host = lambda host, app: ("default", config)  # type: ignore[method-assign]
        answer = live.fast(path, origin="https://only.example")
        assert isinstance(answer, FastAnswer)
        assert (b"access-control-allow-origin", b"https://only.example") in answer.headers, "the new section's CORS"
        config = {"name": "app", "publishers": {"thumbnail": {}}}  # LL-HLS no longer enabled: Starlette answers
        assert live.fast(path) is None
        config = {"name": "app", "publishers": {"llhls": {}}}
        assert isinstance(live.fast(path), FastAnswer)
        del live.publisher.streams[("default", "app", "cam")]
        assert live.fast(path) is None, "a stream no longer published is not served from the lane"
        for i in range(5000):  # queries are the clients' to choose: what is kept of them is bounded
            live.fast(f"/app/cam/init_1_audio_{live.stream.key}_llhls.m4s?session={i}_x")
        assert len(live.server._queries) <= 4096
        await live.client.aclose()

    asyncio.run(run())
