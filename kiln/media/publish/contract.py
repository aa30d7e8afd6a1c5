"""What every publisher of an output stream is: push, record, thumbnail (and WebRTC, OVT, HLS to come).

A publisher takes media out of one output stream of a live stream. It is attached to that output,
counts what it puts out, and is detached with a reason; once detached it holds no thread, socket
or file, so a stream that ends or a task that stops leaves nothing behind.
"""

from __future__ import annotations

from typing import Protocol

from kiln.media.stream.live import OutputStream


class PublisherCounters(Protocol):
    @property
    def bytes_out(self) -> int:
        """Bytes put out (sent, written or served) through these counters; grows while attached."""


class Publisher(Protocol):
    @property
    def counters(self) -> PublisherCounters: ...

    @property
    def attached(self) -> bool:
        """From :meth:`attach` until :meth:`detach` has released everything (or the publisher failed)."""

    def attach(self, output: OutputStream) -> None:
        """Start taking media from ``output``; returns at once (a worker, if any, does the rest)."""

    def detach(self, reason: str) -> None:
        """Stop taking media and release threads, sockets and files; ``reason`` says why (logs).
        Waits, bounded, for a worker to end; a second call does nothing."""
