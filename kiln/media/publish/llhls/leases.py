"""LL-HLS admission (media spec §5, §6): the master request is asked; its session carries the lease.

Child requests are authorised through the session key, and after the lease's deadline
(``stream_expire``, a webhook ``lifetime``) they are 401. A session this server did not admit (an
invented id, or one from before a restart) is asked itself, so it is no way around a policy. When
the publisher forgets a session (idle), admission hears that it closed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol

from starlette.requests import Request

from kiln.admission.closing import notify_closed
from kiln.admission.contract import Admission, AdmissionRequest, Admitter
from kiln.media.publish.http_admission import http_admission_request
from kiln.media.publish.session_query import parse_session

log = logging.getLogger(__name__)

PROTOCOL = "LLHLS"
PRUNE_EVERY_S = 5.0


class KnownSessions(Protocol):
    @property
    def sessions(self) -> Mapping[int, Any]:
        """Session id -> a session with ``id`` and ``key`` (the publisher's live player sessions)."""


class SessionLeases:
    def __init__(self, admission: Admitter, known: KnownSessions) -> None:
        self.admission = admission
        self.known = known
        self._leases: dict[str, tuple[AdmissionRequest, int | None]] = {}  # "<id>_<key>" -> (asked, deadline)
        self._pruned = time.monotonic()

    async def admit_master(self, request: Request, vhost: str, app: str, stream: str) -> Admission:
        return await self.admission.admit(http_admission_request(request, PROTOCOL, vhost, app, stream))

    def granted(self, session_q: str, admission: Admission, request: Request, vhost: str, app: str,
                stream: str) -> None:
        self._leases[session_q] = (http_admission_request(request, PROTOCOL, vhost, app, stream),
                                   admission.deadline_ms)

    async def child_allowed(self, request: Request, session_q: str, vhost: str, app: str, stream: str) -> bool:
        self._prune()
        lease = self._leases.get(session_q)
        if lease is None:
            admission = await self.admit_master(request, vhost, app, stream)
            if not admission.allowed:
                return False
            self.granted(session_q, admission, request, vhost, app, stream)
            lease = self._leases[session_q]
        deadline = lease[1]
        if deadline is not None and time.time() * 1000 >= deadline:
            log.debug("llhls session past its admission deadline session=%s deadline_ms=%d", session_q, deadline)
            return False
        return True

    def child_allowed_now(self, session_q: str) -> bool | None:
        """:meth:`child_allowed` for a session this server already admitted, without waiting; None when the
        session must be asked (the caller takes the asynchronous path)."""
        self._prune()
        lease = self._leases.get(session_q)
        if lease is None:
            return None
        return lease[1] is None or time.time() * 1000 < lease[1]

    def _prune(self) -> None:
        if time.monotonic() - self._pruned < PRUNE_EVERY_S:
            return
        self._pruned = time.monotonic()
        for session_q, (asked, _deadline) in list(self._leases.items()):
            parsed = parse_session(session_q)
            session = self.known.sessions.get(parsed[0]) if parsed is not None else None
            if session is None or parsed is None or session.key != parsed[1]:
                del self._leases[session_q]
                notify_closed(self.admission, asked)
