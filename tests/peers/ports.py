"""Free loopback ports that stay unique across pytest-xdist workers, and polling helpers.

A port is handed out once per run: each one is reserved by an exclusive file under a shared temp
directory that names the owning process, so two workers (or two concurrent runs) never get the same
port. Candidates come from below the kernel's ephemeral range, so a client's outgoing connection
cannot grab a port between the moment we hand it out and the moment the peer binds it.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import logging
import os
import random
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

log = logging.getLogger(__name__)

RESERVATIONS = Path(tempfile.gettempdir()) / "kiln-test-ports"
_LOW = 10000
_mine: set[int] = set()

T = TypeVar("T")


class PeerLike(Protocol):
    """What the waiting helpers need from a running peer (tests.peers.process.Peer fits)."""

    @property
    def alive(self) -> bool: ...

    def stderr_tail(self, n: int = 20) -> str: ...


def _ephemeral_low() -> int:
    try:
        low, _high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low)
    except (OSError, ValueError):
        return 32768


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reserve(port: int) -> bool:
    """Claim `port` for this process; a reservation whose owner died is taken over."""
    RESERVATIONS.mkdir(parents=True, exist_ok=True)
    path = RESERVATIONS / str(port)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                owner = int(path.read_text() or "0")
            except (OSError, ValueError):
                return False
            if owner and _pid_alive(owner):
                return False
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        _mine.add(port)
        return True
    return False


@atexit.register
def _release_all() -> None:
    for port in list(_mine):
        with contextlib.suppress(OSError):
            (RESERVATIONS / str(port)).unlink()
    _mine.clear()


def _bindable(port: int, kind: socket.SocketKind) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def _free_port(kinds: tuple[socket.SocketKind, ...]) -> int:
    high = _ephemeral_low()
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(500):
        port = rng.randrange(_LOW, high)
        if port in _mine or not all(_bindable(port, k) for k in kinds):
            continue
        if _reserve(port):
            log.debug("port reserved port=%d pid=%d", port, os.getpid())
            return port
    raise RuntimeError(f"no free port found in {_LOW}..{high}")


def free_tcp_port() -> int:
    """A loopback TCP port that nobody listens on and that no other worker of this run has got."""
    return _free_port((socket.SOCK_STREAM,))


def free_udp_port() -> int:
    """A loopback UDP port (SRT, MPEG-TS over UDP), unique like free_tcp_port."""
    return _free_port((socket.SOCK_DGRAM,))


def free_port() -> int:
    """A port free for both TCP and UDP (for servers that listen on both with one number)."""
    return _free_port((socket.SOCK_STREAM, socket.SOCK_DGRAM))


def _exited(proc: PeerLike | None, what: str) -> None:
    if proc is not None and not proc.alive:
        raise RuntimeError(f"{what}: the process exited; stderr tail:\n{proc.stderr_tail(30)}")


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    what: str,
    *,
    interval: float = 0.05,
    proc: PeerLike | None = None,
) -> T:
    """Poll `predicate` until it returns something truthy and return that; TimeoutError names `what`."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while True:
        try:
            result = predicate()
        except Exception as exc:  # a predicate may fail until the peer is up; keep the last reason
            last_exc = exc
            result = None
        if result:
            return result
        _exited(proc, what)
        if time.monotonic() >= deadline:
            reason = f" (last error: {last_exc!r})" if last_exc else ""
            tail = f"\nstderr tail:\n{proc.stderr_tail(30)}" if proc is not None else ""
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}{reason}{tail}")
        time.sleep(interval)


def wait_tcp(host: str, port: int, timeout: float = 15.0, proc: PeerLike | None = None) -> None:
    """Wait until a TCP connect to host:port succeeds; fail early if `proc` exits."""

    def connects() -> bool:
        with socket.create_connection((host, port), timeout=0.5):
            return True

    wait_until(connects, timeout, f"tcp {host}:{port} to accept", proc=proc)


def udp_bound(port: int) -> bool:
    """True when some socket on this machine is bound to UDP `port` (read from /proc, nothing sent)."""
    hexport = f":{port:04X}"
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 1 and fields[1].endswith(hexport):
                return True
    return False


def wait_udp_bound(port: int, timeout: float = 15.0, proc: PeerLike | None = None) -> None:
    """Wait until a UDP listener (SRT, MPEG-TS receiver) has bound `port`; fail early if `proc` exits."""
    wait_until(lambda: udp_bound(port), timeout, f"udp port {port} to be bound", proc=proc)
