"""HTTP on the Thumbnail port: ``/<app>/<output stream>/thumb.jpg|png|webp`` (media-spec §1.2, §9).

The newest still of the output stream's image encode with that codec is answered from memory. The
app must enable the publisher (``Publishers/Thumbnail``); CORS comes from its CrossDomains, as for
LL-HLS. No such app, stream or image encode, or no image made yet: 404. Only the three fixed file
names are served, so there is no path to traverse. Each request asks admission first (SignedPolicy
when the vhost enables it for ``thumbnail``): a refusal is 401, as in OME. A stream that is not here is
pulled through the vhost's Origins / OriginMapStore and the request waits for its first still (bounded).
"""

from __future__ import annotations

import logging
from email.utils import formatdate
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kiln.admission.contract import Admitter, OpenDoor
from kiln.config.cors import CorsPolicy
from kiln.config.values import publisher_section
from kiln.media.model import Codec
from kiln.media.origins.on_demand import OnDemand, pull_and_wait
from kiln.media.publish.http_admission import http_admission_request
from kiln.media.publish.llhls.publisher import cors_urls
from kiln.media.stream.live import LiveStream

log = logging.getLogger(__name__)

FILES = {"thumb.jpg": Codec.JPEG, "thumb.png": Codec.PNG, "thumb.webp": Codec.WEBP}


def thumbnail_config(app_config: dict[str, Any] | None) -> dict[str, Any] | None:
    """The app's ``Publishers/Thumbnail`` section; None when the app does not enable the publisher."""
    return publisher_section(app_config, "thumbnail")


class AppsByHost(Protocol):
    def app_for_host(self, host: str, app: str) -> tuple[str, dict[str, Any] | None] | None:
        """The vhost a Host header selects (None: none) and that app's OME JSON (None: no such app)."""


class OutputLookup(Protocol):
    def find_output(self, vhost: str, app: str, output_name: str) -> tuple[LiveStream, Any] | None:
        """The live stream that has an output of this name, and that output."""


class BytesOut(Protocol):
    def bytes_out(self, vhost: str, app: str, stream: str, n: int) -> None: ...


class ThumbnailServer:
    def __init__(self, apps: AppsByHost, outputs: OutputLookup, stats: BytesOut, *,
                 admission: Admitter | None = None, origins: OnDemand | None = None) -> None:
        self.apps = apps
        self.origins = origins
        self.admission: Admitter = admission or OpenDoor()
        self.outputs = outputs
        self.stats = stats
        self.starlette = Starlette(routes=[Route("/{path:path}", self.endpoint, methods=["GET", "HEAD", "OPTIONS"])])

    @staticmethod
    def _cors(request: Request, section: dict[str, Any] | None) -> dict[str, str]:
        urls, headers = cors_urls(section) if section else ((), {})
        policy = CorsPolicy(urls, headers, allow_methods="OPTIONS, GET, HEAD")
        return policy.headers(request.headers.get("origin"), request.headers.get("access-control-request-headers"))

    def _with_still(self, vhost: str, app: str, name: str, codec: Codec) -> tuple[LiveStream, Any] | None:
        """The output once it has a still of ``codec`` (what a pulled stream's thumbnail request waits for)."""
        found = self.outputs.find_output(vhost, app, name)
        holder = found[1].images.get(codec) if found is not None else None
        return found if holder is not None and holder.still is not None else None

    async def endpoint(self, request: Request) -> Response:
        parts = request.url.path.strip("/").split("/")
        found = self.apps.app_for_host(request.headers.get("host", ""), parts[0]) if len(parts) == 3 else None
        vhost, app_config = found if found is not None else (None, None)
        section = thumbnail_config(app_config) if app_config is not None else None
        cors = self._cors(request, section)
        if request.method == "OPTIONS":
            return Response(status_code=200, headers={**cors, "Access-Control-Allow-Private-Network": "true"})
        codec = FILES.get(parts[-1]) if len(parts) == 3 else None
        if vhost is None or section is None or codec is None:
            return Response(status_code=404, headers=cors)
        asked = http_admission_request(request, "Thumbnail", vhost, parts[0], parts[1])
        if not (await self.admission.admit(asked)).allowed:  # OME: 401 on the thumbnail port
            return Response(status_code=401, headers=cors)
        output = self.outputs.find_output(vhost, parts[0], parts[1])
        if output is None:  # not here: pull it and wait for its first still of this codec
            output = await pull_and_wait(self.origins, vhost, parts[0], parts[1], request.url.query,
                                         lambda: self._with_still(vhost, parts[0], parts[1], codec))
        if output is None:
            return Response(status_code=404, headers=cors)
        live, out = output
        holder = out.images.get(codec)
        still = holder.still if holder is not None else None
        if holder is None or still is None:
            return Response(status_code=404, headers=cors)
        headers = {**cors, "Cache-Control": "no-cache, no-store", "Last-Modified": formatdate(still.made, usegmt=True)}
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(still.data))
            return Response(status_code=200, media_type=holder.content_type, headers=headers)
        self.stats.bytes_out(live.vhost, live.app, live.name, len(still.data))
        return Response(still.data, status_code=200, media_type=holder.content_type, headers=headers)
