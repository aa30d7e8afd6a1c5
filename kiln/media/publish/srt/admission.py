"""Admission for SRT playback callers (media spec §5, §6): OME asks SignedPolicy and AdmissionWebhooks
(protocol ``SRT``, direction outgoing) when a player connects, and closes a refused caller.

The question runs on the caller's session thread, never on libsrt's listener thread, so a slow
webhook holds only that caller. An allowed caller's lease (``stream_expire``, webhook ``lifetime``)
cuts it when it passes; when it leaves, the checks hear ``closed`` (webhooks send their closing call).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from kiln.admission.closing import notify_closed
from kiln.admission.contract import AdmissionRequest, Admitter
from kiln.admission.step import admit_from_thread

log = logging.getLogger(__name__)

ADMISSION_TIMEOUT_S = 60.0  # checks bound themselves (a webhook's Timeout); this only bounds a wedged loop
LEASE_EXPIRED = "admission expired"


class CallerAdmission:
    """One caller's admission: asked once, leased, closed once."""

    def __init__(self, admitter: Admitter, loop: asyncio.AbstractEventLoop, request: AdmissionRequest,
                 cut: Callable[[str], None]) -> None:
        self.admitter = admitter
        self.loop = loop
        self.request = request
        self._cut = cut  # drops the caller with a reason (from the lease timer's thread)
        self._admitted = False
        self._lease: threading.Timer | None = None
        self._lock = threading.Lock()
        self._ended = False

    def ask(self) -> str | None:
        """Blocking (the session's thread): None when the caller may play, else why it is refused."""
        r = self.request
        admission = admit_from_thread(self.admitter, self.loop, r, ADMISSION_TIMEOUT_S)
        if not admission.allowed:
            log.info("srt playback denied vhost=%s app=%s stream=%s peer=%s:%d rule=%s reason=%s", r.vhost, r.app,
                     r.stream, r.client[0], r.client[1], admission.rule, admission.reason)
            return f"access denied: {admission.reason}"
        if admission.new_url:
            log.warning("srt playback redirect not applied vhost=%s app=%s stream=%s new_url=%s", r.vhost, r.app,
                        r.stream, admission.new_url)
        left = admission.seconds_left(int(time.time() * 1000))
        with self._lock:
            self._admitted = True
            gone = self._ended  # the caller left while the check ran: the checks still hear it is gone
            if not gone and left is not None:
                self._lease = threading.Timer(left, self._expire)
                self._lease.daemon = True
                self._lease.start()
        if not gone:
            return None
        self._tell_closed()
        return "caller left"

    def ended(self) -> None:
        """The caller is gone (any thread, once or more): stop the lease, tell the checks once."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
            lease, self._lease = self._lease, None
            admitted = self._admitted
        if lease is not None:
            lease.cancel()
        if admitted:
            self._tell_closed()

    def _expire(self) -> None:
        r = self.request
        log.info("srt playback lease expired vhost=%s app=%s stream=%s peer=%s:%d", r.vhost, r.app, r.stream,
                 r.client[0], r.client[1])
        self._cut(LEASE_EXPIRED)

    def _tell_closed(self) -> None:
        notify_closed(self.admitter, self.request, self.loop)
