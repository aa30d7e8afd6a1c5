"""ICE restart (RFC 8445 §9) for an aioice connection that is already connected, which aioice 0.13 cannot do.

A restart gives the connection new local credentials and the peer's new ones, and starts a fresh check list
and candidate set; the pair in use keeps carrying media (DTLS and SRTP ride on top, untouched) and its checks
are still answered with the old credentials, until a pair of the new generation is nominated: aioice then
sends on it, and the old generation is dropped. A restart of a restart that has not finished drops the
middle generation. Subclasses say how checks reach the connection (``_route_ufrag`` and friends).

This rewrites aioice's private state. Every private name it touches is checked when this module is imported,
with aioice's version (pinned in pyproject.toml to the one it was proven on), so an aioice that changes
fails at once, loudly, instead of restarting halfway.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from typing import Any

import aioice
from aioice import stun
from aioice.ice import CandidatePair, StunProtocol, validate_password, validate_username

log = logging.getLogger(__name__)

PROVEN_ON = "0.13."
# aioice.Connection's private state a restart reads or rewrites, with the type it must have
PRIVATE_STATE: dict[str, type | tuple[type, ...]] = {
    "_local_username": str, "_local_password": str, "_check_list": list, "_check_list_done": bool,
    "_check_list_state": asyncio.Queue, "_nominated": dict, "_remote_candidates": list,
    "_remote_candidates_end": bool, "_early_checks_done": bool, "_closing": bool, "_protocols": list,
    "_query_consent_task": (asyncio.Task, type(None)),
}
# the methods it overrides or calls, which must keep their meaning
METHODS = ("check_complete", "request_received", "respond_error", "build_request", "add_remote_candidate")


class IceRestartRefused(Exception):
    """A restart this connection cannot do now; the text says why (the session goes on as it was)."""


def check_aioice(version: str, probe: object) -> list[str]:
    """What is wrong with this aioice for restarts (empty when nothing)."""
    problems = [] if version.startswith(PROVEN_ON) else [f"aioice {version} (restart proven on {PROVEN_ON}x)"]
    for name, kind in PRIVATE_STATE.items():
        if not isinstance(getattr(probe, name, None), kind):
            problems.append(f"Connection.{name}")
    problems += [f"Connection.{m}()" for m in METHODS if not callable(getattr(type(probe), m, None))]
    return problems


def _check_at_import() -> None:
    problems = check_aioice(aioice.__version__, aioice.Connection(ice_controlling=False))
    if problems:
        raise ImportError("Kiln's ICE restart rewrites aioice internals that changed: " + ", ".join(problems)
                          + "; pin aioice>=0.13,<0.14 or update kiln/media/rtc/ice_restart.py")


_check_at_import()


@dataclass
class _Generation:
    """The credentials of the pair still in use while a restart's checks run."""

    local_username: str
    local_password: str
    remote_username: str
    remote_password: str
    pairs: dict[int, CandidatePair]


class RestartableConnection(aioice.Connection):
    """An aioice connection that can restart ICE once connected."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._previous: _Generation | None = None
        self.restarts = 0

    # -- what subclasses provide: how checks for a ufrag and datagrams from an address reach this connection --
    def _route_ufrag(self, ufrag: str) -> None:
        raise IceRestartRefused("this connection cannot take new credentials")

    def _unroute_ufrag(self, ufrag: str) -> None:
        pass

    def _forget_address(self, addr: tuple[str, int]) -> None:
        pass

    # -- restart --
    @property
    def restarting(self) -> bool:
        return self._previous is not None

    def restart(self, remote_username: str, remote_password: str) -> tuple[str, str]:
        """Start a new ICE generation with the peer's new credentials; returns the new local ones. The remote
        candidates of the new generation are added with ``add_remote_candidate`` afterwards."""
        try:
            validate_username(remote_username)
            validate_password(remote_password)
        except ValueError as exc:
            raise IceRestartRefused(str(exc)) from None
        if self._closing:
            raise IceRestartRefused("the connection is closing")
        if not self._nominated or self.remote_username is None or self.remote_password is None:
            raise IceRestartRefused("ICE has not connected yet")
        local_username, local_password = secrets.token_hex(8), secrets.token_hex(16)
        self._route_ufrag(local_username)
        if self._previous is None:
            self._previous = _Generation(self.local_username, self.local_password, self.remote_username,
                                         self.remote_password, dict(self._nominated))
        else:  # the generation that was being checked is abandoned; the pair in use stays
            self._unroute_ufrag(self.local_username)
        for pair in self._check_list:
            if pair.task is not None:
                pair.task.cancel()
        self._local_username, self._local_password = local_username, local_password
        self.remote_username, self.remote_password = remote_username, remote_password
        self._check_list = []
        self._check_list_done = False
        self._check_list_state = asyncio.Queue()
        self._remote_candidates = []
        self._remote_candidates_end = False
        self.restarts += 1
        log.info("webrtc ice restart started local_username=%s previous=%s restarts=%d", local_username,
                 self._previous.local_username, self.restarts)
        return local_username, local_password

    def check_complete(self, pair: CandidatePair) -> None:
        super().check_complete(pair)
        previous = self._previous
        if previous is None or not self._nominated:
            return
        old = list(previous.pairs.values())
        if any(p in old for p in self._nominated.values()):
            return
        self._previous = None  # every component now sends on a pair of the new generation
        self._unroute_ufrag(previous.local_username)
        now = {p.remote_addr for p in self._nominated.values()}
        for gone in old:
            if gone.remote_addr not in now:
                self._forget_address(gone.remote_addr)
        log.info("webrtc ice restarted local_username=%s pair=%s->%s restarts=%d", self.local_username,
                 old[0].remote_addr if old else "-", pair.remote_addr, self.restarts)

    def request_received(self, message: stun.Message, addr: tuple[str, int], protocol: StunProtocol) -> None:
        """Checks of the pair still in use carry the old credentials until the restart completes: answered,
        and nothing more (that pair is already chosen)."""
        previous = self._previous
        username = message.attributes.get("USERNAME")
        if (previous is not None and not self._closing and message.message_method == stun.Method.BINDING
                and isinstance(username, str)):
            local, colon, remote = username.partition(":")
            if colon and local == previous.local_username and remote == previous.remote_username:
                if "MESSAGE-INTEGRITY" not in message.attributes or not message.check_message_integrity(
                        previous.local_password.encode("utf8")):
                    self.respond_error(message, addr, protocol, (401, "Unauthenticated"))
                    return
                response = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.RESPONSE,
                                        transaction_id=message.transaction_id)
                response.attributes["XOR-MAPPED-ADDRESS"] = addr
                response.add_message_integrity(previous.local_password.encode("utf8"))
                protocol.send_stun(response, addr)
                return
        super().request_received(message, addr, protocol)

    def consent_request(self, pair: CandidatePair) -> tuple[stun.Message, bytes]:
        """A consent check for ``pair`` and its integrity key, with the credentials of the pair's generation."""
        assert self.remote_password is not None
        request = self.build_request(pair, nominate=False)
        previous = self._previous
        if previous is not None and any(p is pair for p in previous.pairs.values()):
            request.attributes["USERNAME"] = f"{previous.remote_username}:{previous.local_username}"
            return request, previous.remote_password.encode("utf8")
        return request, self.remote_password.encode("utf8")
