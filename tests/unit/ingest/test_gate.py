"""The control plane's side of the ingest contract: OpenStream to the app's supervisor, refusals as rejections."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pykka
import pytest

from kiln.actors.base import CommandActor
from kiln.actors.commands import OpenStream
from kiln.actors.ingest_gate import IngestGate
from kiln.domain.errors import Conflict, DomainError
from kiln.errors import ApiError
from kiln.media.ingest.contract import PublishRejected, PublishRequest, Refusal
from kiln.media.stream.live import LiveStream

RTMP_APP = {"providers": {"rtmp": {}, "srt": {}}}


@dataclass
class App:
    name: str
    config: dict[str, Any]


@dataclass
class Vhost:
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    apps: dict[str, App] = field(default_factory=dict)


class Catalog:
    def __init__(self, *vhosts: Vhost) -> None:
        self.vhosts = {v.name: v for v in vhosts}

    def vhost_names(self) -> list[str]:
        return list(self.vhosts)

    def vhost(self, name: str) -> Vhost | None:
        return self.vhosts.get(name)

    def app(self, vhost: str, app: str) -> App | None:
        view = self.vhosts.get(vhost)
        return view.apps.get(app) if view is not None else None


class Supervisor(CommandActor):
    """A stream supervisor that answers OpenStream with a stream, or refuses with ``error``."""

    def __init__(self, error: Exception | None = None) -> None:
        super().__init__()
        self.error = error
        self.commands: list[OpenStream] = []

    def handle_OpenStream(self, cmd: OpenStream) -> LiveStream:
        self.commands.append(cmd)
        if self.error is not None:
            raise self.error
        return LiveStream("default", "app", cmd.name, source_type=cmd.source_type, source_url=cmd.source_url,
                          profiles=[], close_ingest=cmd.close_ingest)


class Directory:
    def __init__(self, refs: dict[tuple[str, str], pykka.ActorRef[Any]]) -> None:
        self.refs = refs

    def streams(self, vhost: str, app: str) -> pykka.ActorRef[Any] | None:
        return self.refs.get((vhost, app))


class Registry:
    def __init__(self, *live: tuple[str, str, str]) -> None:
        self.live = set(live)
        self.stream = LiveStream("default", "app", "taken", source_type="Rtmp", source_url="", profiles=[])

    def get(self, vhost: str, app: str, name: str) -> LiveStream | None:
        return self.stream if (vhost, app, name) in self.live else None


@pytest.fixture(autouse=True)
def _stop_actors() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all()


def request(stream: str = "cam", vhost: str = "default", app: str = "app") -> PublishRequest:
    return PublishRequest(vhost, app, stream, provider="rtmp", source_type="Rtmp",
                          source_url=f"rtmp://127.0.0.1:1935/{app}/{stream}", close_source=lambda _reason: None)


def gate_with(error: Exception | None = None) -> tuple[IngestGate, pykka.ActorRef[Any]]:
    ref = Supervisor.start(error)
    catalog = Catalog(Vhost("default", apps={"app": App("app", RTMP_APP)}))
    return IngestGate(Directory({("default", "app"): ref}), catalog, Registry(),
                      refusals=(ApiError, DomainError)), ref


def test_open_sends_open_stream_to_the_app_supervisor_and_returns_its_stream() -> None:
    gate, ref = gate_with()
    req = request()
    stream = asyncio.run(gate.open_stream(req))
    assert (stream.vhost, stream.app, stream.name, stream.source_type) == ("default", "app", "cam", "Rtmp")
    [cmd] = ref.proxy().commands.get()
    assert (cmd.name, cmd.provider, cmd.source_type, cmd.source_url) == ("cam", "rtmp", "Rtmp", req.source_url)
    assert cmd.close_ingest is req.close_source
    stream.end("test over")


@pytest.mark.parametrize("error", [
    ApiError(409, "Stream already exists: [default/app/cam]"),
    Conflict("Stream already exists: [default/app/cam]"),
], ids=["api-error", "domain-error"])
def test_a_supervisor_refusal_becomes_a_rejection_with_omes_text(error: Exception) -> None:
    gate, _ref = gate_with(error)
    with pytest.raises(PublishRejected) as caught:
        asyncio.run(gate.open_stream(request()))
    assert caught.value.reason == "Stream already exists: [default/app/cam]"
    assert caught.value.kind is Refusal.REFUSED


def test_a_failure_that_is_not_a_refusal_is_not_hidden() -> None:
    gate, _ref = gate_with(RuntimeError("bug"))
    with pytest.raises(RuntimeError, match="bug"):
        asyncio.run(gate.open_stream(request()))


def test_no_app_or_a_stopped_supervisor_is_application_not_found() -> None:
    gate, ref = gate_with()
    with pytest.raises(PublishRejected) as missing:
        asyncio.run(gate.open_stream(request(app="other")))
    assert (missing.value.reason, missing.value.kind) == ("application not found: default/other", Refusal.NOT_FOUND)
    ref.stop()
    with pytest.raises(PublishRejected) as gone:
        asyncio.run(gate.open_stream(request()))
    assert (gone.value.reason, gone.value.kind) == ("application not found: default/app", Refusal.NOT_FOUND)


def test_an_empty_stream_name_is_refused_before_the_supervisor_is_asked() -> None:
    gate, ref = gate_with()
    with pytest.raises(PublishRejected, match="empty stream name"):
        asyncio.run(gate.open_stream(request(stream="")))
    assert ref.proxy().commands.get() == []


def screen_gate(config: dict[str, Any], *live: tuple[str, str, str]) -> IngestGate:
    catalog = Catalog(Vhost("default", apps={"app": App("app", config)}))
    return IngestGate(Directory({}), catalog, Registry(*live))


def test_screen_accepts_a_free_name_on_an_app_with_the_provider() -> None:
    screen_gate(RTMP_APP).screen("default", "app", "cam", "srt")


@pytest.mark.parametrize("config, live, app, reason, kind", [
    (RTMP_APP, (), "nope", "application not found: default/nope", Refusal.NOT_FOUND),
    ({"providers": {"rtmp": {}}}, (), "app", "Provider srt is not enabled for the application: [default/app]",
     Refusal.FORBIDDEN),
    (RTMP_APP, (("default", "app", "cam"),), "app", "Stream already exists: [default/app/cam]", Refusal.CONFLICT),
])
def test_screen_refusals_carry_their_kind(config: dict[str, Any], live: tuple[tuple[str, str, str], ...], app: str,
                                          reason: str, kind: Refusal) -> None:
    with pytest.raises(PublishRejected) as caught:
        screen_gate(config, *live).screen("default", app, "cam", "srt")
    assert (caught.value.reason, caught.value.kind) == (reason, kind)


def test_screen_lets_a_duplicate_through_when_the_app_allows_it() -> None:
    config = {"providers": {"rtmp": {"blockDuplicateStreamName": "false"}, "srt": {}}}
    screen_gate(config, ("default", "app", "cam")).screen("default", "app", "cam", "srt")


def test_stream_for_port_follows_the_first_mpegts_stream_map_listing_the_port() -> None:
    mapped = {"providers": {"mpegts": {"streamMap": {"stream": [
        {"name": "stream_${Port}", "port": "4000-4002"}, {"name": "other", "port": "4005"}]}}}}
    catalog = Catalog(Vhost("a", apps={"plain": App("plain", RTMP_APP)}), Vhost("b", apps={"ts": App("ts", mapped)}))
    gate = IngestGate(Directory({}), catalog, Registry())
    assert gate.stream_for_port(4001) == ("b", "ts", "stream_4001")
    assert gate.stream_for_port(4005) == ("b", "ts", "other")
    assert gate.stream_for_port(4003) is None


class HeldSupervisor(Supervisor):
    """Answers OpenStream only once ``release`` is set, and keeps the streams it opened."""

    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self.release = release
        self.opened: list[LiveStream] = []

    def handle_OpenStream(self, cmd: OpenStream) -> LiveStream:
        self.release.wait(10)
        stream = super().handle_OpenStream(cmd)
        self.opened.append(stream)
        return stream


def test_a_publisher_that_leaves_while_its_stream_opens_does_not_leave_the_stream_live() -> None:
    release = threading.Event()
    ref = HeldSupervisor.start(release)
    catalog = Catalog(Vhost("default", apps={"app": App("app", RTMP_APP)}))
    gate = IngestGate(Directory({("default", "app"): ref}), catalog, Registry())

    async def publisher_leaves() -> None:
        opening = asyncio.ensure_future(gate.open_stream(request()))
        await asyncio.sleep(0.05)  # the supervisor holds the command
        opening.cancel()
        with pytest.raises(asyncio.CancelledError):
            await opening
        release.set()
        for _ in range(500):  # the supervisor answers on its thread; the gate ends what it opened
            opened = ref.proxy().opened.get()
            if opened and opened[0].ended_reason is not None:
                return
            await asyncio.sleep(0.01)

    asyncio.run(publisher_leaves())
    [stream] = ref.proxy().opened.get()
    assert stream.ended_reason == "publisher left while the stream was opened"
    assert ref.is_alive()
