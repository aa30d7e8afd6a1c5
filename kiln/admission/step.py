"""The admission step: a vhost's checks in order, one answer (media spec §5, §6).

The first denial wins; a check that raises denies (OME denies on a failing webhook). Leases
combine: the session deadline is the earliest of every ``stream_expire`` and ``now + lifetime``.
Every denial, and every allow a check marks worth recording, goes to the audit. Checks are awaited
on the caller's event loop and never block it; :func:`admit_from_thread` serves ingest threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Protocol

from kiln.admission.contract import Admission, AdmissionRequest, Admitter, Check, Verdict

log = logging.getLogger(__name__)


class AdmissionAudit(Protocol):
    """Where decisions are reported (the control plane journals them). Must not block."""

    def decided(self, request: AdmissionRequest, rule: str, verdict: Verdict) -> None: ...


class AdmissionStep:
    """Runs ``checks`` in order; ``checks`` is a list so the next check is one ``append`` away."""

    def __init__(self, checks: Sequence[Check], audit: AdmissionAudit | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.checks = list(checks)
        self.audit = audit
        self.clock = clock

    async def admit(self, request: AdmissionRequest) -> Admission:
        deadline: int | None = None
        new_url: str | None = None
        secrets: tuple[str, ...] = ()
        for check in self.checks:
            current = replace(request, url=new_url) if new_url else request
            try:
                verdict = await check.check(current)
            except Exception as exc:  # a broken check must not admit anyone
                log.exception("admission check failed rule=%s url_vhost=%s", check.name, request.vhost)
                verdict = Verdict.deny(f"{check.name} failed: {exc}")
            secrets = (*secrets, *verdict.secrets)
            verdict = replace(verdict, secrets=secrets)
            if not verdict.allowed or verdict.record:
                self._report(current, check.name, verdict)
            if not verdict.allowed:
                log.info("admission denied rule=%s protocol=%s vhost=%s app=%s stream=%s client=%s reason=%s",
                         check.name, request.protocol, request.vhost, request.app, request.stream,
                         request.client[0], verdict.reason)
                return Admission(False, verdict.reason, check.name, secrets=secrets)
            new_url = verdict.new_url or new_url
            deadline = _earliest(deadline, verdict.stream_expire_ms)
            if verdict.lifetime_ms > 0:
                deadline = _earliest(deadline, int(self.clock() * 1000) + verdict.lifetime_ms)
        return Admission(True, new_url=new_url, deadline_ms=deadline, secrets=secrets)

    async def closed(self, request: AdmissionRequest) -> None:
        for check in self.checks:
            try:
                await check.closed(request)
            except Exception:
                log.exception("admission closing notification failed rule=%s vhost=%s", check.name, request.vhost)

    def _report(self, request: AdmissionRequest, rule: str, verdict: Verdict) -> None:
        if self.audit is None:
            return
        try:
            self.audit.decided(request, rule, verdict)
        except Exception:
            log.exception("admission audit failed rule=%s vhost=%s", rule, request.vhost)

    def now_ms(self) -> int:
        return int(self.clock() * 1000)


def _earliest(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def admit_from_thread(admitter: Admitter, loop: asyncio.AbstractEventLoop, request: AdmissionRequest,
                      timeout_s: float) -> Admission:
    """``admitter.admit`` for ingest threads: run on the loop, wait here (this thread only).

    A loop that is gone or an answer later than ``timeout_s`` denies.
    """
    coro = admitter.admit(request)
    try:
        future = asyncio.run_coroutine_threadsafe(coro, loop)
    except RuntimeError:
        coro.close()
        return Admission(False, "server shutting down", "admission")
    try:
        return future.result(timeout_s)
    except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
        future.cancel()
        return Admission(False, f"no admission answer within {timeout_s:.0f}s", "admission")


def now_ms() -> int:
    return int(time.time() * 1000)
