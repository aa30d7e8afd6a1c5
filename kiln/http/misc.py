"""Version and the API server's own certificate (rest-spec §3, §5)."""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from starlette.responses import Response

from kiln import OME_API_COMPATIBILITY, __version__
from kiln.errors import ApiError
from kiln.http.envelope import ok
from kiln.http.router import Call, Router

log = logging.getLogger(__name__)


def register(router: Router, api: Any) -> None:
    async def version(call: Call) -> Response:
        return ok({"gitVersion": f"kiln-{__version__}", "version": __version__,
                   "omeCompatibility": OME_API_COMPATIBILITY})

    async def reload_api_certificate(call: Call) -> Response:
        if api.tls_reloader is None:
            raise ApiError(400, "TLS is not enabled for the API Server")
        try:
            await asyncio.to_thread(api.tls_reloader)  # file reads (and a FIFO refused): never on the loop
        except (OSError, ssl.SSLError) as exc:
            log.error("api certificate reload failed error=%s", exc)
            raise ApiError(500, "Failed to create a certificate for the API Server") from exc
        return ok()

    router.add("GET", r"/v1/version", version)
    router.add("POST", r"/v1/managers/api:reloadCertificate", reload_api_certificate)
