"""Socket helpers shared by the push writers: name resolution and errors users can act on."""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

# Kernel send buffer of a TCP push (the kernel doubles it): enough for 40 Mbit/s at 100 ms RTT, small
# enough that a destination that stops reading fills it in seconds, so the send timeout fires soon
# instead of after minutes of silently buffered media.
TCP_SEND_BUFFER = 256 * 1024


class PushError(Exception):
    """A destination problem, with a reason users can act on."""


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
    """The first address of ``host``; a name that does not resolve is a PushError naming it."""
    try:
        infos = socket.getaddrinfo(host, port, type=kind)
    except socket.gaierror as exc:
        raise PushError(f"cannot resolve {host}: {exc.strerror}") from exc
    except UnicodeError as exc:
        raise PushError(f"cannot resolve {host}: not a valid host name") from exc
    return infos[0]


def tcp_socket(family: int, kind: int, proto: int) -> socket.socket:
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, TCP_SEND_BUFFER)
    return sock
