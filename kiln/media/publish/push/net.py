"""What the push writers share: their timeouts, name resolution, and errors users can act on."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import av

from kiln.media.net import lookup

# Kernel send buffer of a TCP push (the kernel doubles it): enough for 40 Mbit/s at 100 ms RTT, small
# enough that a destination that stops reading fills it in seconds, so the send timeout fires soon
# instead of after minutes of silently buffered media.
TCP_SEND_BUFFER = 256 * 1024


class PushError(Exception):
    """A destination problem, with a reason users can act on."""


@dataclass
class Timeouts:
    """The app's ``Push`` connection and send timeouts: every network wait of a push is bounded by them."""

    connect_ms: int = 5000
    send_ms: int = 2000


@contextmanager
def failing_as_push_error(close: Callable[[], None]) -> Iterator[None]:
    """Opening a destination: on any failure release what was opened (``close``) and raise a PushError."""
    try:
        yield
    except PushError:
        close()
        raise
    except (OSError, av.error.FFmpegError) as exc:
        close()
        raise PushError(describe(exc)) from exc


def describe(exc: BaseException) -> str:
    """A socket or FFmpeg error as a reason users can act on."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused by the destination"
    if isinstance(exc, TimeoutError | av.error.ExitError):
        return "timed out talking to the destination"
    if isinstance(exc, BrokenPipeError | ConnectionResetError):
        return "the destination closed the connection"
    text = getattr(exc, "strerror", None) or str(exc)
    return text.strip() or type(exc).__name__


def shutdown(sock: socket.socket) -> None:
    """Unblock a send in progress on ``sock`` from another thread."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class Connecting:
    """A destination connection being set up, which the session's stop may cut short from another thread.

    The thread that connects hands over (:meth:`opened`) how to abort what it set up, before it waits on the
    network; :meth:`abort` sets its flag first and then calls what was handed over, while :meth:`opened` stores it
    first and then reads the flag: one of the two sees the other (no lock needed under the GIL), so a stop either
    aborts the wait or makes the set-up give up before it waits."""

    def __init__(self) -> None:
        self.aborted = False
        self._abort: Callable[[], None] | None = None

    def opened(self, abort: Callable[[], None]) -> None:
        """The connecting thread: ``abort`` ends its wait now; raises PushError if the stop came first."""
        self._abort = abort
        if self.aborted:
            raise PushError("stopped while connecting")

    def abort(self) -> None:
        """From another thread: the set-up under way, if any, fails at once (its wait ends)."""
        self.aborted = True
        abort = self._abort
        if abort is not None:
            abort()


def host_port(url: str, default_port: int | None = None) -> tuple[str, int]:
    parts = urlsplit(url)
    if not parts.hostname:
        raise PushError(f"no host in {url}")
    try:
        port = parts.port or default_port
    except ValueError as exc:
        raise PushError(f"bad port in {url}") from exc
    if port is None:
        raise PushError(f"no port in {url}")
    return parts.hostname, port


def resolve(host: str, port: int, kind: int) -> tuple[Any, ...]:
    """The first address of ``host``; a name that does not resolve is a PushError naming it. A lookup the
    session's stop came during raises ``LookupAbandoned`` (kiln.media.net.lookup): nothing is connected."""
    try:
        infos = lookup.getaddrinfo(host, port, kind)
    except socket.gaierror as exc:
        raise PushError(f"cannot resolve {host}: {exc.strerror}") from exc
    except UnicodeError as exc:
        raise PushError(f"cannot resolve {host}: not a valid host name") from exc
    return infos[0]


def tcp_socket(family: int, kind: int, proto: int) -> socket.socket:
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, TCP_SEND_BUFFER)
    return sock
