"""A push stopped (``:stopPush``, the stream ending) before its destination answered. Its name does not resolve yet
(the name server does not answer): ``getaddrinfo`` cannot be interrupted, so the stop must neither wait for the
lookup nor let the session connect once the answer comes; Kiln runs in a mount namespace whose /etc/resolv.conf
names a DNS server this test holds (tests/peers/dns_server.py), a real resolver that answers when told. Or the
destination accepts TCP and never answers the RTMP handshake: the stop aborts the handshake. Or it never answers the
connect itself (MPEG-TS over TCP: SYNs dropped by a listener whose accept queue is full; SRT: handshakes read and
dropped by a UDP socket): the stop cuts the connect short."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.kiln_process import KilnProcess, Ports, server_xml
from tests.peers.dns_server import HeldDns
from tests.peers.ffmpeg import publish_rtmp

pytestmark = pytest.mark.e2e

APP = "/v1/vhosts/default/apps/app"


@pytest.fixture
def held_dns() -> Iterator[HeldDns]:
    server = HeldDns()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def kiln_behind(held_dns: HeldDns, tmp_path: Path) -> Iterator[KilnProcess]:
    """Kiln in a mount namespace where the resolver asks ``held_dns`` only, and waits up to 30 s for it."""
    if not shutil.which("unshare") or not shutil.which("nsenter"):
        pytest.fail("unshare and nsenter (util-linux) are needed")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(f"nameserver {held_dns.address}\noptions timeout:30 attempts:1\n")
    script = 'mount --bind "$0" /etc/resolv.conf && echo mounted && exec sleep 3600'
    holder = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script, str(resolv)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    k: KilnProcess | None = None
    try:
        assert holder.stdout is not None
        if b"mounted" not in holder.stdout.readline():
            pytest.fail(f"could not bind a resolv.conf in a mount namespace: {holder.communicate(timeout=5)!r}")
        ports = Ports()
        workdir = tmp_path / "kiln"
        workdir.mkdir()
        k = KilnProcess(workdir, server_xml(ports, workdir / "records"), ports)
        k.launcher = ["nsenter", "-t", str(holder.pid), "-m", "--"]
        yield k.start()
    finally:
        if k is not None:
            k.close()
        holder.kill()
        holder.wait(10)


class Destination:
    """A TCP listener standing for the push destination: it counts who connects, and closes them at once or, with
    ``hold``, keeps them open saying nothing (an RTMP handshake to it waits for its deadline)."""

    def __init__(self, hold: bool = False) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.hold = hold
        self.accepted = 0
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.accepted += 1
            if self.hold:
                self.held.append(conn)
            else:
                conn.close()

    def close(self) -> None:
        self.server.close()
        for conn in self.held:
            conn.close()


def push(k: KilnProcess, task_id: str) -> dict[str, Any]:
    found = [p for p in k.api.post(f"{APP}:pushes").json()["response"] if p["id"] == task_id]
    return found[0] if found else {}


def os_thread_names(k: KilnProcess) -> list[str]:
    """Kiln's thread names as the OS has them (``kiln serve`` names its threads; the kernel keeps 15 bytes)."""
    assert k.proc is not None
    names = []
    for comm in Path(f"/proc/{k.proc.pid}/task").glob("*/comm"):
        try:
            names.append(comm.read_text().strip())
        except OSError:  # the thread ended meanwhile
            continue
    return sorted(names)


def push_threads(k: KilnProcess) -> int:
    """How many push session threads Kiln has now ("push-default/ap": enough to tell them from the others)."""
    return sum(name.startswith("push-") for name in os_thread_names(k))


def test_a_push_stopped_during_a_slow_name_lookup_waits_for_nothing_and_never_connects(
        kiln_behind: KilnProcess, held_dns: HeldDns, test_flv: Path, peer_dir: Path) -> None:
    k = kiln_behind
    destination = Destination()
    source = publish_rtmp(f"rtmp://127.0.0.1:{k.ports.rtmp}/app/cam", test_flv, loop=True, log_dir=peer_dir)
    try:
        k.wait_for(lambda: "cam" in k.api.get(f"{APP}/streams").json()["response"], what="the stream")
        assert push_threads(k) == 0
        for task_id in ("p1", "p2"):
            r = k.api.post(f"{APP}:startPush", json={"id": task_id, "stream": {"name": "cam"}, "protocol": "rtmp",
                                                    "url": f"rtmp://{task_id}.slow.test:{destination.port}/app",
                                                    "streamKey": "key"})
            assert r.status_code == 200, r.text
            held_dns.wait_asked(f"{task_id}.slow.test")
        k.wait_for(lambda: push(k, "p1").get("state") == push(k, "p2").get("state") == "connecting",
                   what="both pushes connecting")
        assert push_threads(k) == 2
        # :stopPush answers at once (it never waited for the actor)
        assert k.api.post(f"{APP}:stopPush", json={"id": "p1"}).status_code == 200
        # the stream ends: p2's actor stops its session and says so at once, not after a 10 s join
        ended = time.monotonic()
        source.stop()
        k.wait_for(lambda: push(k, "p2").get("state") == "ready", timeout=5, what="p2 back to ready")
        assert time.monotonic() - ended < 5
        k.wait_for_log("push session stopped during its name lookup name=default/app/p1#1",
                       "push session stopped during its name lookup name=default/app/p2#1")
        assert push_threads(k) == 2  # still in getaddrinfo
        # the name server answers: each thread ends on its own, without connecting to the destination
        held_dns.answer("127.0.0.1")
        k.wait_for_log("push session ended after its name lookup name=default/app/p1#1 connected=false",
                       "push session ended after its name lookup name=default/app/p2#1 connected=false")
        k.wait_for(lambda: push_threads(k) == 0, what="no push thread left")
        assert destination.accepted == 0
    finally:
        source.stop()
        destination.close()


def test_a_push_stopped_during_its_rtmp_handshake_does_not_hold_its_actor(
        kiln_factory: Callable[..., KilnProcess], test_flv: Path, peer_dir: Path, tmp_path: Path) -> None:
    """The destination accepts TCP but never answers the RTMP handshake, and the app lets a connection take 20 s:
    when the stream ends the push's state moves on at once (the handshake is aborted), not after a 10 s join."""
    ports = Ports()
    xml = server_xml(ports, tmp_path / "records").replace(
        "<Push/>", "<Push><ConnectionTimeout>20000</ConnectionTimeout></Push>", 1)
    k = kiln_factory(xml, ports)
    destination = Destination(hold=True)
    source = publish_rtmp(f"rtmp://127.0.0.1:{k.ports.rtmp}/app/cam", test_flv, loop=True, log_dir=peer_dir)
    try:
        k.wait_for(lambda: "cam" in k.api.get(f"{APP}/streams").json()["response"], what="the stream")
        r = k.api.post(f"{APP}:startPush", json={"id": "h1", "stream": {"name": "cam"}, "protocol": "rtmp",
                                                "url": f"rtmp://127.0.0.1:{destination.port}/app",
                                                "streamKey": "key"})
        assert r.status_code == 200, r.text
        k.wait_for(lambda: destination.held and push(k, "h1").get("state") == "connecting", what="in the handshake")
        ended = time.monotonic()
        source.stop()
        k.wait_for(lambda: push(k, "h1").get("state") == "ready", timeout=5, what="h1 back to ready")
        assert time.monotonic() - ended < 5
        k.wait_for(lambda: push_threads(k) == 0, what="no push thread left")
    finally:
        source.stop()
        destination.close()


class UnansweringTcp:
    """A TCP destination whose SYNs go unanswered: a listener whose accept queue (listen(0)) is full, so Linux
    drops every further SYN and a connect to it stays in SYN_SENT until its timeout."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(0)
        self.port = self.server.getsockname()[1]
        self.fillers: list[socket.socket] = []
        for _ in range(8):
            probe = socket.socket()
            probe.settimeout(0.5)
            try:
                probe.connect(("127.0.0.1", self.port))
            except TimeoutError:
                probe.close()
                return
            self.fillers.append(probe)
        self.close()
        pytest.fail("the listener's accept queue never filled")

    def close(self) -> None:
        for conn in self.fillers:
            conn.close()
        self.server.close()


class UnansweringSrt:
    """An SRT destination that never answers: a UDP socket that reads the caller's handshakes and drops them."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.heard = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._drop, daemon=True)
        self._thread.start()

    def _drop(self) -> None:
        while not self._done.is_set():
            try:
                self.sock.recv(2048)
                self.heard += 1
            except TimeoutError:
                continue

    def close(self) -> None:
        self._done.set()
        self._thread.join(5)
        self.sock.close()


@pytest.mark.parametrize("protocol", ["mpegts", "srt"])
def test_a_push_stopped_while_its_destination_never_answers_the_connect_does_not_hold_its_actor(
        kiln_factory: Callable[..., KilnProcess], test_flv: Path, peer_dir: Path, tmp_path: Path,
        protocol: str) -> None:
    """MPEG-TS over TCP (SYNs unanswered) and SRT (handshakes unanswered), the app letting a connection take 20 s:
    when the stream ends the push's state moves on at once (the connect is cut short), not after a 10 s join."""
    ports = Ports()
    xml = server_xml(ports, tmp_path / "records").replace(
        "<Push/>", "<Push><ConnectionTimeout>20000</ConnectionTimeout></Push>", 1)
    k = kiln_factory(xml, ports)
    destination: UnansweringTcp | UnansweringSrt = UnansweringTcp() if protocol == "mpegts" else UnansweringSrt()
    url = f"tcp://127.0.0.1:{destination.port}" if protocol == "mpegts" else f"srt://127.0.0.1:{destination.port}"
    source = publish_rtmp(f"rtmp://127.0.0.1:{k.ports.rtmp}/app/cam", test_flv, loop=True, log_dir=peer_dir)
    try:
        k.wait_for(lambda: "cam" in k.api.get(f"{APP}/streams").json()["response"], what="the stream")
        r = k.api.post(f"{APP}:startPush", json={"id": "c1", "stream": {"name": "cam"}, "protocol": protocol,
                                                "url": url})
        assert r.status_code == 200, r.text
        k.wait_for(lambda: push(k, "c1").get("state") == "connecting" and push_threads(k), what="connecting")
        if isinstance(destination, UnansweringSrt):
            k.wait_for(lambda: destination.heard, what="the SRT caller's first handshake")
        ended = time.monotonic()
        source.stop()
        k.wait_for(lambda: push(k, "c1").get("state") == "ready", timeout=5, what="c1 back to ready")
        assert time.monotonic() - ended < 5
        k.wait_for(lambda: push_threads(k) == 0, what="no push thread left")
    finally:
        source.stop()
        destination.close()
