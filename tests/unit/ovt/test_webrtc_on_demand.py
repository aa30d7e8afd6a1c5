"""A WebRTC viewer of a missing stream: admission is asked before any pull (as for LL-HLS), and a viewer
admitted for a stream no origin has is refused with OME's 404 and closed in admission. A viewer of a stream
whose publisher is still connecting (here, tracks not known yet) waits for it instead of being refused."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kiln.admission.contract import Admission, AdmissionRequest
from kiln.media.publish.webrtc.publisher import PlayRefused, Target, WebRtcPublisher
from kiln.media.stream.live import LiveStream
from kiln.media.stream.registry import StreamRegistry
from tests.unit.publish.contract import BYPASS
from tests.unit.transcode.clip import make_clip

APP_CONFIG = {"publishers": {"webrtc": {}}}
TARGET = Target("default", "app", "cam", None, ("127.0.0.1", 5000), "ws://edge/app/cam")


class NoStreams:
    def find_output(self, vhost: str, app: str, output_name: str) -> tuple[LiveStream, Any] | None:
        return None

    def pending(self, vhost: str, app: str, output_name: str) -> bool:
        return False


class Stats:
    def bytes_out(self, vhost: str, app: str, stream: str, n: int) -> None: ...

    def connection(self, vhost: str, app: str, stream: str, kind: str, delta: int) -> None: ...


class Door:
    def __init__(self, allowed: bool) -> None:
        self.allowed = allowed
        self.closed_requests: list[AdmissionRequest] = []

    async def admit(self, request: AdmissionRequest) -> Admission:
        return Admission(self.allowed, "" if self.allowed else "no signature", "" if self.allowed else "SignedPolicy")

    async def closed(self, request: AdmissionRequest) -> None:
        self.closed_requests.append(request)


class Origins:
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def pull(self, vhost: str, app: str, stream: str, query: str = "") -> bool:
        self.asked.append(stream)
        return False


def _open(door: Door, origins: Origins) -> PlayRefused:
    async def run() -> PlayRefused:
        publisher = WebRtcPublisher(NoStreams(), Stats(), None, admission=door, origins=origins)
        publisher.start(asyncio.get_running_loop())
        try:
            with pytest.raises(PlayRefused) as refused:
                await publisher.open(TARGET, APP_CONFIG)
            await asyncio.sleep(0)  # the admission close task runs
            return refused.value
        finally:
            await publisher.close()

    return asyncio.run(run())


def test_a_refused_viewer_never_starts_a_pull() -> None:
    origins = Origins()
    refused = _open(Door(allowed=False), origins)
    assert refused.code == 401 and origins.asked == []


def test_an_admitted_viewer_of_a_stream_no_origin_has_gets_404_and_is_closed_in_admission() -> None:
    door, origins = Door(allowed=True), Origins()
    refused = _open(door, origins)
    assert refused.code == 404 and origins.asked == ["cam"]
    assert [r.stream for r in door.closed_requests] == ["cam"]


def test_a_viewer_arriving_while_the_publisher_connects_is_served_once_the_tracks_are_known() -> None:
    """The race OvenPlayer met in CI: its request_offer came 100 ms after the WHIP publisher's stream was created,
    before its first RTP packets told the tracks; Kiln answered 'Cannot create offer'."""
    clip = make_clip(320, 180, seconds=0.5, fps=15, gop=15)

    async def run() -> None:
        registry, origins = StreamRegistry(), Origins()
        live = LiveStream("default", "app", "cam", source_type="WebRTC", source_url="", profiles=[BYPASS])
        registry.add(live)
        publisher = WebRtcPublisher(registry, Stats(), None, origins=origins)
        publisher.start(asyncio.get_running_loop())
        try:
            opening = asyncio.ensure_future(publisher.open(TARGET, APP_CONFIG))
            await asyncio.sleep(0.3)
            assert not opening.done(), "refused or served before the stream had tracks"
            live.on_track(clip.video)
            live.on_track(clip.audio)
            session, choice = await asyncio.wait_for(opening, 5)
            assert origins.asked == [], "a stream that is here is not pulled"
            assert choice.renditions[0].video is not None
            await session.close("test over")
        finally:
            await publisher.close()
            live.end("test over")
            live.transcoder.join(10)

    asyncio.run(run())
