"""pytest plugin (loaded from tests/conftest.py): fixtures that start real peers and kill them by PID.

A missing peer skips the test with an install hint, or fails it when KILN_REQUIRE_PEERS=1
(`make test` / `make e2e` set it), so CI cannot go green by skipping.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.peers import media
from tests.peers.browser import browser_available, play_hls
from tests.peers.nginx_rtmp import RTMP_MODULE, NginxRtmp
from tests.peers.process import stop_all
from tests.peers.redis import RedisServer
from tests.peers.rtsp_server import SCRIPT, SYSTEM_PYTHON, RtspSource

INSTALL_HINT = "run `make peers` (./scripts/install-peers.sh)"


@functools.cache
def _system_gst_rtsp() -> bool:
    if not Path(SYSTEM_PYTHON).exists():
        return False
    code = (
        "import gi; gi.require_version('Gst','1.0'); gi.require_version('GstRtspServer','1.0');"
        "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
        "import sys; sys.exit(0 if all(Gst.ElementFactory.find(e) for e in"
        " ('x264enc','voaacenc','rtph264pay','rtpmp4gpay','videotestsrc','audiotestsrc')) else 1)"
    )
    try:
        return subprocess.run([SYSTEM_PYTHON, "-c", code], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _which(*names: str) -> Callable[[], bool]:
    return lambda: all(shutil.which(n) for n in names)


#: peer name -> availability check used by `require(name)`.
PEER_CHECKS: dict[str, Callable[[], bool]] = {
    "ffmpeg": _which("ffmpeg", "ffprobe"),
    "nginx-rtmp": lambda: bool(shutil.which("nginx")) and RTMP_MODULE.exists(),
    "srt-live-transmit": _which("srt-live-transmit"),
    "redis": _which("redis-server", "redis-cli"),
    "gst-rtsp-server": lambda: SCRIPT.exists() and _system_gst_rtsp(),
    "chromium": browser_available,
}


def peers_required() -> bool:
    return os.environ.get("KILN_REQUIRE_PEERS", "") not in ("", "0")


def require(peer_name: str, check: Callable[[], bool] | None = None) -> None:
    """Skip the test if `peer_name` is not installed; fail instead when KILN_REQUIRE_PEERS=1.

    `check` defaults to the known check in PEER_CHECKS.
    """
    if check is None:
        check = PEER_CHECKS[peer_name]
    if check():
        return
    message = f"test peer {peer_name!r} is not installed: {INSTALL_HINT}"
    if peers_required():
        pytest.fail(message + " (KILN_REQUIRE_PEERS=1, so this is an error, not a skip)", pytrace=False)
    pytest.skip(message)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "peers: uses real peer programs started by tests/peers fixtures")


@pytest.fixture(scope="session", autouse=True)
def _stop_leftover_peers() -> Iterator[None]:
    """Safety net: whatever a test or fixture forgot to stop dies at session end (by PID)."""
    yield
    stop_all()


@pytest.fixture
def peer_dir(tmp_path: Path) -> Path:
    """A per-test directory for peer configs, logs and received files."""
    path = tmp_path / "peers"
    path.mkdir()
    return path


@pytest.fixture(scope="session", name="test_flv")
def _test_flv() -> Path:
    """4 s 320x180 H.264 (no B-frames) + AAC FLV."""
    require("ffmpeg")
    return media.test_flv(4)


@pytest.fixture(scope="session", name="test_flv_bframes")
def _test_flv_bframes() -> Path:
    """Like test_flv, with B-frames (composition time offsets)."""
    require("ffmpeg")
    return media.test_flv(4, bframes=True)


@pytest.fixture(scope="session", name="test_ts")
def _test_ts() -> Path:
    """4 s 320x180 H.264 + AAC MPEG-TS."""
    require("ffmpeg")
    return media.test_ts(4)


@pytest.fixture(scope="session", name="test_mp4")
def _test_mp4() -> Path:
    """4 s 320x180 H.264 + AAC MP4."""
    require("ffmpeg")
    return media.test_mp4(4)


@pytest.fixture
def nginx_rtmp(peer_dir: Path) -> Iterator[NginxRtmp]:
    """A running nginx-rtmp (application `live`, recording every stream)."""
    require("nginx-rtmp")
    server = NginxRtmp(peer_dir / "nginx")
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def rtsp_source(peer_dir: Path) -> Iterator[RtspSource]:
    """A running gst-rtsp-server source; pull `rtsp_source.url`."""
    require("gst-rtsp-server")
    source = RtspSource(peer_dir / "rtsp")
    try:
        yield source.start()
    finally:
        source.stop()


@pytest.fixture
def redis_server(peer_dir: Path) -> Iterator[RedisServer]:
    """A running redis-server without persistence."""
    require("redis")
    server = RedisServer(peer_dir / "redis")
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def chromium_player(peer_dir: Path) -> Callable[..., dict[str, Any]]:
    """`chromium_player(url, timeout=30, origin=None, advance=1.0, low_latency=True) -> report` (see play_hls)."""
    require("chromium")

    def play(url: str, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("workdir", peer_dir / "chromium")
        return play_hls(url, **kwargs)

    return play
