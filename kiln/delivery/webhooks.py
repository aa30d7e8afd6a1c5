"""Webhook delivery: each subscription's journal records POSTed to its URL, in order, at least once.

Why it runs where it does: on a thread of its own with its own event loop, so a receiver that is slow
or down never costs the API's loop or ingest anything; each subscription is one task reading its own
tail of the journal feed from its cursor. A POST carries up to ``BATCH`` records
(``{"subscription": ID, "events": [record_view, ...]}``), signed as OME signs admission webhooks
(``X-OME-Signature``: base64url HMAC-SHA1 of the raw body with the secret key). A POST that fails
(no answer, an error, a status outside 2xx) is retried with backoff until it succeeds; the records
after it wait, so order holds. Progress is reported to the owner (the subscriptions actor), which
journals a checkpoint at most every ``CHECKPOINT_S`` while records are delivered and at shutdown:
after a crash delivery resumes from the last checkpoint, so records after it may arrive twice.

Not sent: ``SubscriptionDelivered`` checkpoints (anyone's) and the subscription's own entity records,
which would otherwise feed back into themselves.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from kiln.admission.webhooks import signature
from kiln.events.redact import Redactor, redact_text, redact_url
from kiln.events.subscriptions import SubscriptionDelivered, subscription_entity
from kiln.metrics.deliveries import DeliveryState, DeliveryStates

log = logging.getLogger(__name__)

BATCH = 100
TIMEOUT_S = 5.0
CHECKPOINT_S = 2.0
BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0, 10.0)   # then 10 s between attempts
SIGNATURE_HEADER = "X-OME-Signature"


@dataclass(frozen=True)
class Target:
    """One subscription as delivery needs it."""

    id: str
    url: str
    secret_key: str
    entity_prefix: str
    types: tuple[str, ...]
    cursor: int          # resume after this sequence number
    delivered: int

    def wants(self, record: Any) -> bool:
        if record.type == SubscriptionDelivered.TYPE or record.entity == subscription_entity(self.id):
            return False
        return bool(record.entity.startswith(self.entity_prefix) and (not self.types or record.type in self.types))


class Feed(Protocol):
    def tail(self, from_seq: int) -> Any: ...
    def view(self, record: Any, redactor: Redactor | None) -> dict[str, Any]: ...


class Progress(Protocol):
    """Where delivery reports what must be journaled (the subscriptions actor)."""

    def checkpoint(self, ident: str, cursor: int, delivered: int) -> None: ...
    def state_changed(self, ident: str, state: str, reason: str) -> None: ...


def backoff(attempt: int) -> float:
    return BACKOFF_S[min(attempt, len(BACKOFF_S)) - 1]


def body_of(target: Target, views: list[dict[str, Any]]) -> bytes:
    return json.dumps({"subscription": target.id, "events": views}, separators=(",", ":")).encode()


class Deliveries:
    """One thread, one event loop, one task per subscription."""

    def __init__(self, feed: Feed, states: DeliveryStates, *, checkpoint_s: float = CHECKPOINT_S,
                 timeout_s: float = TIMEOUT_S, secrets: Callable[[], list[dict[str, Any]]] | None = None) -> None:
        self._feed = feed
        self._secrets = secrets  # every secret held now: a delivery resuming mid-journal must mask them too
        self.states = states
        self._checkpoint_s = checkpoint_s
        self._timeout_s = timeout_s
        self._progress: Progress | None = None
        self._loop = asyncio.new_event_loop()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._client: httpx.AsyncClient | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="kiln-webhooks", daemon=True)
        self._thread.start()

    def report_to(self, progress: Progress) -> None:
        self._progress = progress

    # -- control (any thread) --------------------------------------------------------------------
    def start(self, target: Target) -> None:
        asyncio.run_coroutine_threadsafe(self._start(target), self._loop).result(10)

    def stop(self, ident: str) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(ident), self._loop).result(10)

    def close(self) -> dict[str, DeliveryState]:
        """Stop every delivery; answers each one's last state (for a final checkpoint)."""
        if not self._thread.is_alive():
            return {}
        try:
            asyncio.run_coroutine_threadsafe(self._stop_all(), self._loop).result(15)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            if not self._thread.is_alive():
                self._loop.close()
        return self.states.all()

    # -- the delivery loop -----------------------------------------------------------------------
    async def _start(self, target: Target) -> None:
        old = self._tasks.pop(target.id, None)
        if old is not None:
            old.cancel()
        self.states.put(target.id, DeliveryState(acked_seq=target.cursor, delivered=target.delivered))
        self._tasks[target.id] = asyncio.ensure_future(self._run(target))
        log.info("webhook delivery started id=%s url=%s from_seq=%d", target.id, redact_url(target.url),
                 target.cursor + 1)

    async def _stop(self, ident: str) -> None:
        task = self._tasks.pop(ident, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self.states.pop(ident)

    async def _stop_all(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout_s, follow_redirects=False)
        return self._client

    async def _run(self, target: Target) -> None:
        run = _Run(self, target)
        try:
            while True:
                await run.follow()  # returns when the feed cut it off: resume from the cursor
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook delivery failed id=%s", target.id)
            self.states.update(target.id, state="stopped", last_error="internal error (see the log)")


class _Run:
    """One subscription's delivery state while it runs."""

    def __init__(self, owner: Deliveries, target: Target) -> None:
        self.owner = owner
        self.target = target
        self.cursor = target.cursor
        self.delivered = target.delivered
        self.checkpointed = (target.cursor, target.delivered)
        self.last_checkpoint = time.monotonic()
        self.failing = False
        self.redactor = Redactor()
        for payload in owner._secrets() if owner._secrets is not None else ():
            self.redactor.learn(payload)

    async def follow(self) -> None:
        tail = self.owner._feed.tail(self.cursor + 1)
        pending: asyncio.Future[Any] | None = None
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(tail.batch())
                done, _ = await asyncio.wait({pending}, timeout=self.owner._checkpoint_s)
                if not done:
                    self.maybe_checkpoint(force=True)
                    continue
                batch, pending = pending.result(), None
                if batch is None:
                    return
                await self.deliver(batch)
                self.maybe_checkpoint()
        finally:
            if pending is not None:
                pending.cancel()
            tail.close()

    async def deliver(self, batch: list[Any]) -> None:
        wanted = []
        for record in batch:
            if self.target.wants(record):
                wanted.append(record)
            else:
                self.redactor.learn(record.payload)
        for chunk in _chunks(wanted, BATCH):
            views = [self.owner._feed.view(record, self.redactor) for record in chunk]
            await self.post_until_ok(body_of(self.target, views), chunk[-1].seq)
            self.delivered += len(chunk)
            self.cursor = chunk[-1].seq
            self.owner.states.update(self.target.id, acked_seq=self.cursor, delivered=self.delivered,
                                     last_delivered_time=time.time())
        self.cursor = batch[-1].seq
        self.owner.states.update(self.target.id, acked_seq=self.cursor)

    async def post_until_ok(self, body: bytes, last_seq: int) -> None:
        headers = {"Content-Type": "application/json"}
        if self.target.secret_key:
            headers[SIGNATURE_HEADER] = signature(self.target.secret_key, body)
        attempt = 0
        while True:
            error = await self.post(body, headers)
            states = self.owner.states
            if error is None:
                state = states.get(self.target.id) or DeliveryState()
                states.update(self.target.id, state="delivering", attempt=0, next_retry_time=0.0,
                              posts=state.posts + 1)
                if self.failing:
                    self.failing = False
                    log.info("webhook delivery recovered id=%s seq=%d", self.target.id, last_seq)
                    self.report_state("delivering", "")
                return
            attempt += 1
            delay = backoff(attempt)
            state = states.get(self.target.id) or DeliveryState()
            states.update(self.target.id, state="retrying", attempt=attempt, failures=state.failures + 1,
                          last_error=error, last_error_time=time.time(), next_retry_time=time.time() + delay)
            if not self.failing:
                self.failing = True
                log.warning("webhook delivery failing id=%s url=%s error=%s", self.target.id,
                            redact_url(self.target.url), error)
                self.report_state("retrying", error)
            await asyncio.sleep(delay)

    async def post(self, body: bytes, headers: dict[str, str]) -> str | None:
        """None on a 2xx answer, else what went wrong (secrets in the URL masked)."""
        try:
            answer = await self.owner._http().post(self.target.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return redact_text(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        if 200 <= answer.status_code < 300:
            return None
        return f"HTTP {answer.status_code}"

    def maybe_checkpoint(self, *, force: bool = False) -> None:
        """Journal the cursor when records were delivered since the last checkpoint (a cursor moved only
        past filtered records is not worth an event: those are cheap to skip again)."""
        if self.delivered == self.checkpointed[1]:
            return
        if not force and time.monotonic() - self.last_checkpoint < self.owner._checkpoint_s:
            return
        self.checkpointed = (self.cursor, self.delivered)
        self.last_checkpoint = time.monotonic()
        progress = self.owner._progress
        if progress is not None:
            progress.checkpoint(self.target.id, self.cursor, self.delivered)

    def report_state(self, state: str, reason: str) -> None:
        progress = self.owner._progress
        if progress is not None:
            progress.state_changed(self.target.id, state, reason)


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
