"""SrtListener with real ffmpeg SRT callers: streamids, many callers, passphrases, rejection, hang-ups."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from kiln.media.net.srt import libsrt
from kiln.media.net.srt.listener import _DEAD as DEAD
from kiln.media.net.srt.listener import PENDING_SWEEP_S, SrtListener
from kiln.media.net.srt.sender import SrtSender
from kiln.media.net.srt.streamid import SrtTarget, resolve_streamid
from tests.e2e.srt.conftest import Procs, Recorder, ffmpeg_push, probe_codecs, probe_video_size, wait_until

pytestmark = pytest.mark.e2e


class Policy:
    """Accepts every caller with a Recorder (or refuses streamids in ``refuse``) and remembers them."""

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.refuse = refuse
        self.recorders: list[Recorder] = []
        self.asked: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, streamid: str, peer: tuple[str, int]) -> Recorder | None:
        with self.lock:
            self.asked.append(streamid)
            if streamid in self.refuse:
                return None
            self.recorders.append(Recorder(streamid, peer))
            return self.recorders[-1]

    def by_streamid(self, streamid: str) -> Recorder:
        return next(r for r in self.recorders if r.streamid == streamid)


def save(recorder: Recorder, path: Path) -> Path:
    path.write_bytes(recorder.snapshot())
    return path


def assert_ts(recorder: Recorder, path: Path) -> None:
    data = recorder.snapshot()
    assert len(data) > 10_000 and len(data) % 188 == 0
    assert max(recorder.messages) == 1316
    assert probe_codecs(save(recorder, path)) == ["aac", "h264"]


@pytest.mark.parametrize(("streamid", "expected_raw"), [
    ("default%2Fapp%2Fstream", "default%2Fapp%2Fstream"),
    ("#!::u=default/app/stream,m=publish", "#!::u=default/app/stream,m=publish"),
])
def test_ffmpeg_caller_streamid_and_media(streamid: str, expected_raw: str, procs: Procs, tmp_path: Path) -> None:
    policy = Policy()
    with SrtListener("127.0.0.1", 0, on_accept=policy) as listener:
        caller = procs.start(ffmpeg_push(2, f"srt://127.0.0.1:{listener.port}?streamid={streamid}&latency=120000"))
        assert caller.wait(timeout=30) == 0
        assert policy.recorders and policy.recorders[0].closed.wait(10)
    recorder = policy.recorders[0]
    assert recorder.streamid == expected_raw
    assert recorder.peer[0] == "127.0.0.1"
    target = resolve_streamid(recorder.streamid, local_port=listener.port, stream_map={})
    assert target == SrtTarget("default", "app", "stream", None, "")
    assert recorder.closes == ["disconnected"]
    assert_ts(recorder, tmp_path / "in.ts")


def test_empty_streamid_reaches_the_policy_as_empty(procs: Procs) -> None:
    policy = Policy()
    with SrtListener("127.0.0.1", 0, on_accept=policy) as listener:
        caller = procs.start(ffmpeg_push(1, f"srt://127.0.0.1:{listener.port}"))
        assert caller.wait(timeout=30) == 0
        assert policy.recorders[0].closed.wait(10)
    assert policy.asked == [""]
    target = resolve_streamid("", local_port=listener.port, stream_map={listener.port: "default/app/mapped"})
    assert target.stream == "mapped"


SIZES = {"one": "320x180", "two": "160x96"}


def test_two_callers_at_once(procs: Procs, tmp_path: Path) -> None:
    policy = Policy()
    with SrtListener("127.0.0.1", 0, on_accept=policy) as listener:
        callers = [procs.start(ffmpeg_push(3, f"srt://127.0.0.1:{listener.port}?streamid=default/app/{name}", size))
                   for name, size in SIZES.items()]
        wait_until(lambda: len(listener.connections()) == 2, 15, "two simultaneous callers")
        assert sorted(c.streamid for c in listener.connections()) == ["default/app/one", "default/app/two"]
        assert [c.wait(timeout=30) for c in callers] == [0, 0]
        wait_until(lambda: all(r.closed.is_set() for r in policy.recorders), 10, "both callers to close")
    assert len(policy.recorders) == 2
    for name, size in SIZES.items():  # each receiver got its own caller's picture size: no mixing
        recorder = policy.by_streamid(f"default/app/{name}")
        assert recorder.closes == ["disconnected"]
        assert_ts(recorder, tmp_path / f"{name}.ts")
        assert probe_video_size(tmp_path / f"{name}.ts") == size


PASSPHRASE = "kiln-secret-0042"


def test_passphrase_accepts_the_right_one(procs: Procs, tmp_path: Path) -> None:
    policy = Policy()
    with SrtListener("127.0.0.1", 0, on_accept=policy, passphrase=PASSPHRASE) as listener:
        caller = procs.start(ffmpeg_push(2, f"srt://127.0.0.1:{listener.port}?streamid=default/app/enc"
                                            f"&passphrase={PASSPHRASE}&pbkeylen=16"))
        assert caller.wait(timeout=30) == 0
        assert policy.recorders[0].closed.wait(10)
    assert_ts(policy.recorders[0], tmp_path / "enc.ts")


@pytest.mark.parametrize("query", ["&passphrase=not-the-secret-1", ""], ids=["wrong", "missing"])
def test_passphrase_refuses_wrong_or_missing(query: str, procs: Procs) -> None:
    policy = Policy()
    with SrtListener("127.0.0.1", 0, on_accept=policy, options={"SRTO_PASSPHRASE": PASSPHRASE}) as listener:
        caller = procs.start(ffmpeg_push(2, f"srt://127.0.0.1:{listener.port}?streamid=default/app/enc{query}"
                                            "&connect_timeout=2000"))
        assert caller.wait(timeout=30) != 0
        # libsrt calls the listen callback before it checks the keys, so the policy was asked and its
        # receiver must be told the handshake failed, exactly once, with no data.
        wait_until(lambda: bool(policy.recorders) and all(r.closed.is_set() for r in policy.recorders), 5,
                   "the refused handshake to be closed")
        assert listener.connections() == []
    assert policy.asked[0] == "default/app/enc"
    for recorder in policy.recorders:
        assert recorder.closes == ["handshake failed"]
        assert recorder.snapshot() == b""


def test_policy_returning_none_rejects_the_caller(procs: Procs, caplog: pytest.LogCaptureFixture) -> None:
    policy = Policy(refuse=("default/app/private",))
    with caplog.at_level(logging.INFO, logger="kiln.media.net.srt.listener"), \
            SrtListener("127.0.0.1", 0, on_accept=policy) as listener:
        caller = procs.start(ffmpeg_push(2, f"srt://127.0.0.1:{listener.port}?streamid=default/app/private"))
        assert caller.wait(timeout=30) != 0
        assert listener.connections() == []
    assert policy.asked == ["default/app/private"] and policy.recorders == []
    assert (f"srt caller rejected port={listener.port} peer=127.0.0.1:" in caplog.text
            and "streamid='default/app/private' code=1403 reason=refused by policy" in caplog.text)


def test_caller_killed_mid_stream_closes_once(procs: Procs) -> None:
    policy = Policy()
    listener = SrtListener("127.0.0.1", 0, on_accept=policy, options={"SRTO_PEERIDLETIMEO": "2000"})
    listener.start()
    try:
        caller = procs.start(ffmpeg_push(30, f"srt://127.0.0.1:{listener.port}?streamid=default/app/live"))
        wait_until(lambda: bool(policy.recorders) and len(policy.recorders[0].snapshot()) > 20_000, 15, "media")
        ffmpeg = _children(caller.pid)  # caller is the `timeout` wrapper; ffmpeg is its child
        assert ffmpeg
        for pid in ffmpeg:
            os.kill(pid, signal.SIGKILL)  # no SRT shutdown message: the listener must notice the silence
        recorder = policy.recorders[0]
        assert recorder.closed.wait(15)
        assert recorder.closes == ["disconnected"]
        assert listener.connections() == []
    finally:
        listener.close()
    assert recorder.closes == ["disconnected"]  # close() did not report it again


def test_disconnect_and_close_end_live_callers_once(procs: Procs) -> None:
    policy = Policy()
    listener = SrtListener("127.0.0.1", 0, on_accept=policy)
    listener.start()
    try:
        callers = [procs.start(ffmpeg_push(30, f"srt://127.0.0.1:{listener.port}?streamid=default/app/{name}"))
                   for name in ("kick", "stay")]
        wait_until(lambda: len(policy.recorders) == 2 and all(r.messages for r in policy.recorders), 15, "media")
        kicked, stayed = policy.by_streamid("default/app/kick"), policy.by_streamid("default/app/stay")
        assert listener.disconnect(kicked, "stream deleted")
        assert kicked.closed.wait(5)
        assert kicked.closes == ["stream deleted"] and not stayed.closed.is_set()
        assert listener.disconnect(kicked) is False
    finally:
        listener.close()
    assert stayed.closes == ["listener closed"] and kicked.closes == ["stream deleted"]
    assert all(c.wait(timeout=30) != 0 for c in callers)  # both ffmpeg callers saw their connection end


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        return []


def _threads_by_id() -> dict[str, str]:
    """This process's threads: native id -> name."""
    names: dict[str, str] = {}
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/comm") as f:
                names[task] = f.read().strip()
        except FileNotFoundError:  # the thread ended while we looked
            pass
    return names


def test_ten_callers_add_no_kiln_thread(procs: Procs, ts_file: Path) -> None:
    policy = Policy()
    data = ts_file.read_bytes()[:1316 * 50]
    with SrtListener("127.0.0.1", 0, on_accept=policy) as listener:
        before = _threads_by_id()
        callers = [procs.start(["srt-live-transmit", "-q", "-a:no", "-c:1316", "file://con",
                                f"srt://127.0.0.1:{listener.port}?streamid=default/app/s{i}"], stdin=subprocess.PIPE)
                   for i in range(10)]
        wait_until(lambda: len(listener.connections()) == 10, 15, "ten connected callers")
        for caller in callers:
            assert caller.stdin is not None
            caller.stdin.write(data)
            caller.stdin.flush()
        wait_until(lambda: sum(len(r.snapshot()) for r in policy.recorders) == 10 * len(data), 15,
                   "every caller's data")
        # Kiln adds no thread per caller. libsrt itself runs one "SRT:TsbPd" delivery thread per receiving
        # connection in live (TSBPD) mode; the port's send/receive queue threads are shared. The threads that
        # started since are compared, not the whole process's: earlier tests' threads may still be ending.
        started = Counter(name for tid, name in _threads_by_id().items() if tid not in before)
        assert started == Counter({"SRT:TsbPd": 10}), started
        for caller in callers:
            caller.terminate()  # `timeout` passes SIGTERM on; srt-live-transmit closes its connection and exits
        for caller in callers:
            caller.wait(timeout=20)
        wait_until(lambda: all(r.closed.is_set() for r in policy.recorders), 10, "every caller to close")
    assert sorted(r.streamid for r in policy.recorders) == sorted(f"default/app/s{i}" for i in range(10))
    assert all(r.snapshot() == data and r.closes == ["disconnected"] for r in policy.recorders)


class Holding(Recorder):
    """A receiver whose first message holds the listener's thread (a slow receiver, a busy machine) until released."""

    def __init__(self, streamid: str, peer: tuple[str, int]) -> None:
        super().__init__(streamid, peer)
        self.holding = threading.Event()
        self.release = threading.Event()
        self.since = 0.0

    def on_data(self, data: bytes) -> None:
        super().on_data(data)
        self.since = time.monotonic()
        self.holding.set()
        self.release.wait(20)


@pytest.mark.parametrize("late_callers", [1, 3])
def test_callers_that_hung_up_before_a_pass_took_them_in_still_deliver_what_they_sent(late_callers: int) -> None:
    """Short publishes the listener's thread got to only after they had hung up: libsrt had acknowledged their data
    and kept it readable on the broken sockets, but the listener dropped such a caller unread, and its sweep of
    handshakes took a broken one still waiting in the accept queue for a failed handshake (seen under load: one of
    test_fifty_connect_close_cycles' callers arrived empty)."""
    recorders: list[Recorder] = []

    def policy(streamid: str, peer: tuple[str, int]) -> Recorder:
        recorders.append(Holding(streamid, peer) if streamid == "hold" else Recorder(streamid, peer))
        return recorders[-1]

    with SrtListener("127.0.0.1", 0, on_accept=policy, latency_ms=20) as listener:
        url = f"srt://127.0.0.1:{listener.port}?latency=20000&streamid="
        with SrtSender.connect(url + "hold", connect_timeout_ms=3000) as holder:
            holder.send(b"\x47" * 1316)
            held = recorders[0]
            assert isinstance(held, Holding)
            assert held.holding.wait(10)  # the listener's thread is in its receiver now
            for n in range(late_callers):
                late = SrtSender.connect(url + f"late{n}", connect_timeout_ms=3000)  # the handshake is libsrt's
                late.send(b"\x47" * 1316 * (n + 1))
                late.close()  # acknowledged, lingered, hung up: all before any pass took it in
            wait_until(lambda: len(listener._pending) == late_callers
                       and all(libsrt.getsockstate(h) in DEAD for h in listener._pending), 10,
                       "libsrt to see the late callers hang up")
            # held past a sweep period: the pass that takes the first late caller in also sweeps the handshakes
            wait_until(lambda: time.monotonic() - held.since > PENDING_SWEEP_S, 10, "a sweep period")
            held.release.set()
            wait_until(lambda: all(r.closed.is_set() for r in recorders[1:]), 10, "the late callers to be closed")
    assert [r.closes for r in recorders[1:]] == [["disconnected"]] * late_callers
    assert [r.snapshot() for r in recorders[1:]] == [b"\x47" * 1316 * (n + 1) for n in range(late_callers)]
