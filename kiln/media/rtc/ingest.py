"""What the player port hands to WebRTC ingest (issue 13), declared where it is consumed.

OME shares the signalling port between playback and ingest: a WebSocket on ``/{app}/{stream}``
with ``?direction=send`` publishes, and ``?direction=whip`` HTTP requests are WHIP. The player
port's router passes those to an object of this shape; without one it answers as OME does for a
disabled provider (an error frame then a closed socket, or a 404 with the reason).
"""

from __future__ import annotations

from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket


class RtcIngest(Protocol):
    async def signalling(self, websocket: WebSocket, host: str, app: str, stream: str) -> None:
        """Serve one ``direction=send`` signalling socket (not yet accepted: accept it) until it closes."""

    async def whip(self, request: Request) -> Response:
        """Answer one ``direction=whip`` request (POST offer, PATCH trickle, DELETE, OPTIONS)."""
