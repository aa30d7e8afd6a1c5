"""Player doors' view of a vhost's apps, with OME's ``*`` template for apps not made yet.

A player asking for ``/<app>/<stream>`` of an app the vhost does not have is, when the vhost has an
``<Application>`` named ``*``, answered as if the app were that template named ``app``: the door checks
what the template enables (LL-HLS, WebRTC, SRT, thumbnails) and goes on to pull the stream on demand,
and the pull makes the app (``kiln.actors.origin_gate``). Ingest keeps the plain router: a publisher
never makes an app (OME makes dynamic apps for pulls only). Without a template nothing changes.
"""

from __future__ import annotations

from typing import Any, Protocol


class Routes(Protocol):
    def vhost_for_host(self, host: str, *, allow_vhost_name: bool = False) -> str | None: ...

    def vhost_config(self, vhost: str) -> dict[str, Any] | None: ...

    def app_config(self, vhost: str, app: str) -> dict[str, Any] | None: ...

    def app_template(self, vhost: str) -> dict[str, Any] | None: ...


class PlayerApps:
    """``Routes`` for the player doors: an app missing from a vhost with a template is the template."""

    def __init__(self, routes: Routes) -> None:
        self.routes = routes
        # the template as each app name sees it, per template object (a vhost's template is never edited)
        self._named: dict[tuple[int, str], tuple[dict[str, Any], dict[str, Any]]] = {}

    def vhost_for_host(self, host: str, *, allow_vhost_name: bool = False) -> str | None:
        return self.routes.vhost_for_host(host, allow_vhost_name=allow_vhost_name)

    def vhost_config(self, vhost: str) -> dict[str, Any] | None:
        return self.routes.vhost_config(vhost)

    def app_template(self, vhost: str) -> dict[str, Any] | None:
        return self.routes.app_template(vhost)

    def app_config(self, vhost: str, app: str) -> dict[str, Any] | None:
        """The app's OME JSON; the vhost's template named ``app`` when it has no such app but a template (the
        vhost actor refuses names it cannot make, and the pull with it); None otherwise."""
        found = self.routes.app_config(vhost, app)
        if found is not None:
            return found
        template = self.routes.app_template(vhost)
        if template is None:
            return None
        key = (id(template), app)
        named = self._named.get(key)
        if named is None or named[0] is not template:
            if len(self._named) >= _MAX_NAMED:  # app names are the players' to choose: bounded
                self._named.clear()
            named = self._named[key] = (template, {**template, "name": app})
        return named[1]

    def app_for_host(self, host: str, app: str) -> tuple[str, dict[str, Any] | None] | None:
        vhost = self.routes.vhost_for_host(host)
        if vhost is None:
            return None
        return vhost, self.app_config(vhost, app)


_MAX_NAMED = 1024
