"""OME's WebRTC signalling messages (media spec §1.2), parsed and built without any I/O.

The client speaks JSON text frames: ``request_offer``, then ``answer``, ``candidate``,
``change_rendition`` and ``stop``, every one after the first carrying the ``id`` the server's
``offer`` gave. The server sends ``offer``, ``notification`` and errors as ``{code, error}``.
Bad input raises :class:`SignallingError` with the code and text the client is sent before the
socket closes, so a malformed frame is an answer, never a traceback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

MAX_MESSAGE_BYTES = 256 * 1024  # an SDP with many candidates is a few KiB; anything this big is abuse
CANNOT_CREATE_OFFER = "Cannot create offer"
INVALID_ID = "Invalid ID"


class SignallingError(ValueError):
    """A frame the server refuses: ``code`` (HTTP-like) and ``text`` go back to the client as is."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text


@dataclass(frozen=True)
class RequestOffer:
    """The client asks for the server's offer (playback) or for a recvonly offer (ingest)."""


@dataclass(frozen=True)
class Answer:
    id: int
    peer_id: int
    sdp: str


@dataclass(frozen=True)
class Candidate:
    """One RTCIceCandidateInit as browsers send it (an empty ``candidate`` ends the list)."""

    candidate: str
    sdp_mid: str | None = None
    sdp_mline_index: int | None = None


@dataclass(frozen=True)
class Candidates:
    id: int
    peer_id: int
    candidates: tuple[Candidate, ...] = field(default=())


@dataclass(frozen=True)
class ChangeRendition:
    """``rendition_name`` names a playlist rendition; ``auto`` turns ABR on or off."""

    id: int
    rendition_name: str | None
    auto: bool | None


@dataclass(frozen=True)
class Stop:
    id: int


@dataclass(frozen=True)
class Ping:
    """A keep-alive (``ping``, or OvenPlayer's ``pong`` to the server's ping): nothing to do."""


ClientMessage = RequestOffer | Answer | Candidates | ChangeRendition | Stop | Ping


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise SignallingError(400, f"{what} must be an integer")
    try:
        return int(value)
    except ValueError:
        raise SignallingError(400, f"{what} must be an integer") from None


def _id(message: dict[str, Any]) -> int:
    if "id" not in message:
        raise SignallingError(400, INVALID_ID)
    try:
        return _int(message["id"], "id")
    except SignallingError:
        raise SignallingError(400, INVALID_ID) from None


def _candidate(raw: Any) -> Candidate:
    if not isinstance(raw, dict):
        raise SignallingError(400, "a candidate must be an object")
    text = raw.get("candidate")
    if not isinstance(text, str):
        raise SignallingError(400, "a candidate needs a 'candidate' string")
    mid = raw.get("sdpMid")
    index = raw.get("sdpMLineIndex")
    return Candidate(text, str(mid) if mid is not None else None,
                     _int(index, "sdpMLineIndex") if index is not None else None)


def _sdp(message: dict[str, Any], expected: str) -> str:
    sdp = message.get("sdp")
    if isinstance(sdp, dict):
        kind = sdp.get("type")
        if kind is not None and kind != expected:
            raise SignallingError(400, f"sdp type must be '{expected}', not {kind!r}")
        sdp = sdp.get("sdp")
    if not isinstance(sdp, str) or not sdp.strip():
        raise SignallingError(400, "an answer needs an SDP")
    return sdp


def parse_client_message(frame: str | bytes) -> ClientMessage:
    """One frame from the client, or SignallingError (400) saying what is wrong with it."""
    if len(frame) > MAX_MESSAGE_BYTES:
        raise SignallingError(400, f"message too large ({len(frame)} bytes)")
    try:
        message = json.loads(frame)
    except (ValueError, UnicodeDecodeError):
        raise SignallingError(400, "message is not JSON") from None
    if not isinstance(message, dict):
        raise SignallingError(400, "message must be a JSON object")
    command = message.get("command")
    if not isinstance(command, str):
        raise SignallingError(400, "message has no command")
    command = command.lower()
    if command == "request_offer":
        return RequestOffer()
    if command in ("ping", "pong"):
        return Ping()
    if command == "answer":
        return Answer(_id(message), _int(message.get("peer_id", 0), "peer_id"), _sdp(message, "answer"))
    if command == "candidate":
        ident = _id(message)
        raw = message.get("candidates")
        if raw is None and "candidate" in message:  # a single candidate object, as some clients send
            raw = [message["candidate"]] if isinstance(message["candidate"], dict) else [message]
        if not isinstance(raw, list):
            raise SignallingError(400, "candidates must be a list")
        return Candidates(ident, _int(message.get("peer_id", 0), "peer_id"), tuple(_candidate(c) for c in raw))
    if command == "change_rendition":
        ident = _id(message)
        name = message.get("rendition_name")
        auto = message.get("auto")
        if name is not None and not isinstance(name, str):
            raise SignallingError(400, "rendition_name must be a string")
        if auto is not None and not isinstance(auto, bool):
            raise SignallingError(400, "auto must be true or false")
        if name is None and auto is None:
            raise SignallingError(400, "change_rendition needs rendition_name or auto")
        return ChangeRendition(ident, name, auto)
    if command == "stop":
        return Stop(_id(message))
    raise SignallingError(400, f"unknown command {command!r}")


@dataclass(frozen=True)
class IceServer:
    urls: tuple[str, ...]
    username: str = ""
    credential: str = ""


def offer_message(ident: int, peer_id: int, sdp: str, candidates: list[Candidate],
                  ice_servers: tuple[IceServer, ...] = ()) -> dict[str, Any]:
    """The server's offer. ``iceServers``/``ice_servers`` only when a TCP relay applies: OvenPlayer and
    OvenLiveKit switch to relay-only ICE when they see them."""
    out: dict[str, Any] = {
        "command": "offer", "id": ident, "peer_id": peer_id, "code": 200,
        "sdp": {"type": "offer", "sdp": sdp},
        "candidates": [{"candidate": c.candidate, "sdpMid": c.sdp_mid, "sdpMLineIndex": c.sdp_mline_index}
                       for c in candidates],
    }
    if ice_servers:
        out["iceServers"] = [{"urls": list(s.urls), "username": s.username, "credential": s.credential}
                             for s in ice_servers]
        out["ice_servers"] = [{"urls": list(s.urls), "user_name": s.username, "credential": s.credential}
                              for s in ice_servers]
    return out


def error_message(code: int, text: str) -> dict[str, Any]:
    return {"code": code, "error": text}


def playlist_notification(renditions: list[dict[str, Any]], auto: bool) -> dict[str, Any]:
    return {"command": "notification", "type": "playlist", "message": {"renditions": renditions, "auto": auto}}


def rendition_changed_notification(rendition_name: str, auto: bool) -> dict[str, Any]:
    return {"command": "notification", "type": "rendition_changed",
            "message": {"rendition_name": rendition_name, "auto": auto}}


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))
