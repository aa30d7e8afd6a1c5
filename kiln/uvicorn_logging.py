"""uvicorn's log lines that would mislead a Kiln user, replaced by what is true of Kiln.

On any ``Connection: Upgrade`` request (a player probing for WebSocket signalling, say) uvicorn
warns "Unsupported upgrade request" and "No supported WebSocket library detected", and suggests
installing one. Only the port carrying WebRTC signalling serves WebSockets (the others run with ``ws="none"``), so the
advice is wrong: the request is answered as plain HTTP, which this filter says in one INFO line.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

UNSUPPORTED_UPGRADE = "Unsupported upgrade request."
NO_WEBSOCKET_LIBRARY = "No supported WebSocket library detected"


class UpgradeNotice(logging.Filter):
    """Installed on the ``uvicorn.error`` logger: drops uvicorn's two upgrade warnings, logs one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message == UNSUPPORTED_UPGRADE:
            log.info("http upgrade request answered as plain HTTP (this port serves no WebSocket)")
            return False
        return not message.startswith(NO_WEBSOCKET_LIBRARY)


def install() -> None:
    uvicorn_logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, UpgradeNotice) for f in uvicorn_logger.filters):
        uvicorn_logger.addFilter(UpgradeNotice())
