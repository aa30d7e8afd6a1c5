"""Log lines never print a secret (issue 20, item 4): each line that names a push destination, a
pull URL, an RTMP tcUrl or an SRT URL/streamid is produced by the real code and captured."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from concurrent.futures import Future

import pytest

from kiln.actors.commands import SessionState
from kiln.actors.push import PushActor
from kiln.actors.task_ports import TaskPorts
from kiln.domain.push import PushStatus
from kiln.domain.settings import AppSettings
from kiln.events.tasks import PushCreated, PushSpec
from kiln.media.ingest.rtsp.properties import PullProperties
from kiln.media.ingest.rtsp.worker import PullWorker
from kiln.media.net.srt import libsrt
from kiln.media.net.srt.listener import SrtListener
from kiln.media.net.srt.url import parse_srt_url
from kiln.media.publish.push.mpegts_writer import _udp_sender
from tests.unit.actors.fakes import Journal
from tests.unit.pull.test_pull_worker import Owner, live
from tests.unit.rtmp.test_session import Client, Handler

KEY = "live_8f3kq9Zx"
PASSPHRASE = "correct-horse-battery"
SIGNATURE = "dGhlLXNpZ25hdHVyZQ"
PASSWORD = "hunter2cam"


def messages(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger]


class Stats:
    def connection(self, vhost: str, app: str, stream: str, kind: str, delta: int) -> None: ...

    def bytes_out(self, vhost: str, app: str, stream: str, n: int) -> None: ...


def test_a_push_error_log_masks_the_stream_key_the_reason_names(caplog: pytest.LogCaptureFixture) -> None:
    spec = PushSpec("default", "app", "yt", "src", [], [], "rtmp", "rtmp://a.rtmp.example.com/live2", KEY)
    journal = Journal()
    actor = PushActor(TaskPorts(journal, Stats(), None), PushStatus.created(PushCreated.of(spec, 1.0)),
                      AppSettings.parse({"publishers": {"push": {}}}))
    actor.session, actor.session_no = object(), 1  # type: ignore[assignment]
    reason = f"no stream key in rtmp://a.rtmp.example.com/live2/{KEY}"
    with caplog.at_level(logging.WARNING, logger="kiln.actors.push"):
        actor.handle_SessionState(SessionState(1, "error", reason))
    actor._cancel_timer()
    lines = messages(caplog, "kiln.actors.push")
    assert lines == ["push error id=default/app/yt attempt=1 "
                     "reason=no stream key in rtmp://a.rtmp.example.com/live2/***"]
    assert journal.events and journal.events[-1].reason == reason  # the journal keeps what happened


def test_srt_listener_lines_mask_a_signed_streamid(monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(libsrt, "setrejectreason", lambda sock, code: None)
    listener = SrtListener("127.0.0.1", 0, on_accept=lambda streamid, peer: None)  # type: ignore[arg-type]
    streamid = f"srt://kiln.example.com:9999/app/s?policy=eyJ4IjoxfQ&signature={SIGNATURE}"
    with caplog.at_level(logging.INFO, logger="kiln.media.net.srt.listener"):
        listener._on_handshake(7, ("192.0.2.7", 4000), streamid.encode())
        listener._on_handshake(8, ("192.0.2.7", 4001), streamid.replace(":", "%3A").replace("/", "%2F")
                               .replace("?", "%3F").replace("=", "%3D").replace("&", "%26").encode())
    lines = messages(caplog, "kiln.media.net.srt.listener")
    assert len(lines) == 2 and all("signature=***" in line and "policy=***" in line for line in lines)
    assert not any(SIGNATURE in line for line in lines)


def test_srt_url_lines_mask_the_passphrase_and_signed_streamids(caplog: pytest.LogCaptureFixture) -> None:
    nested = f"srt%3A%2F%2Fh%2Fapp%2Fs%3Fsignature%3D{SIGNATURE}"
    with caplog.at_level(logging.WARNING, logger="kiln.media.net.srt.url"):
        url = parse_srt_url(f"srt://relay:9000?passphrase={PASSPHRASE}&nosuchoption=1&streamid={nested}")
    lines = messages(caplog, "kiln.media.net.srt.url")
    assert len(lines) == 1 and "srt url option ignored key=nosuchoption" in lines[0]
    for shown in (lines[0], url.display):
        assert PASSPHRASE not in shown and SIGNATURE not in shown and "passphrase=***" in shown
    # the sender's lines show ``display``: a stream key appended as the path is masked too
    assert parse_srt_url(f"srt://relay:9000/{KEY}").display == "srt://relay:9000/***"


def test_a_failed_rtsp_pull_logs_the_camera_without_its_password(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"rtsp://admin:{PASSWORD}@127.0.0.1:{port}/stream1"
    owner, waiter = Owner(live), Future[bool]()
    with caplog.at_level(logging.INFO, logger="kiln.media.ingest.rtsp.worker"):
        worker = PullWorker("default/app", "cam", [url], PullProperties(retry_count=0), owner.hooks, waiter).start()
        assert owner.finished.result(20) == "could not connect to any url (Connection refused)"
        worker.join(5)
    lines = messages(caplog, "kiln.media.ingest.rtsp.worker")
    failed = [line for line in lines if line.startswith("pull connect failed")]
    assert failed and f"url=rtsp://admin:***@127.0.0.1:{port}/stream1" in failed[0]
    assert not any(PASSWORD in line for line in lines)


def test_an_unreachable_udp_push_logs_the_destination_without_its_key(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    destination = f"udp://127.0.0.1:{port}/{KEY}"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, \
            caplog.at_level(logging.INFO, logger="kiln.media.publish.push.mpegts_writer"):
        sock.connect(("127.0.0.1", port))
        send = _udp_sender(sock, destination)
        deadline = time.monotonic() + 5
        while not caplog.records and time.monotonic() < deadline:
            send(b"\x47" * 188)  # the ICMP port-unreachable makes a later send fail
            time.sleep(0.01)
    lines = messages(caplog, "kiln.media.publish.push.mpegts_writer")
    assert lines == [f"push udp destination unreachable, still sending destination=udp://127.0.0.1:{port}/***"]


def test_rtmp_connect_line_masks_a_signed_tc_url(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        client = Client(Handler())
        client.handshake()
        client.conn.data_received(client.connect_bytes(
            app=f"app?policy=eyJ4IjoxfQ&signature={SIGNATURE}",
            tc_url=f"rtmp://127.0.0.1:1935/app?policy=eyJ4IjoxfQ&signature={SIGNATURE}"))
        await client.settle()
    with caplog.at_level(logging.INFO, logger="kiln.media.ingest.rtmp.session"):
        asyncio.run(scenario())
    lines = [line for line in messages(caplog, "kiln.media.ingest.rtmp.session") if line.startswith("rtmp connect")]
    assert lines == ["rtmp connect peer=127.0.0.1:50000 app=app?policy=***&signature=*** "
                     "tc_url=rtmp://127.0.0.1:1935/app?policy=***&signature=*** client=FMLE/3.0"]
