"""Host routing: which vhost a URL's host part selects, and which app the publishers' ports serve."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from kiln.config.hosts import HostRouter, resolve_vhost


@dataclass
class App:
    config: dict[str, Any]


@dataclass
class Vhost:
    name: str
    config: dict[str, Any]
    apps: dict[str, App] = field(default_factory=dict)


class Catalog:
    def __init__(self, *vhosts: Vhost) -> None:
        self.vhosts = {v.name: v for v in vhosts}

    def vhost_names(self) -> list[str]:
        return list(self.vhosts)

    def vhost(self, name: str) -> Vhost | None:
        return self.vhosts.get(name)

    def app(self, vhost: str, app: str) -> App | None:
        view = self.vhosts.get(vhost)
        return view.apps.get(app) if view is not None else None


CATALOG = Catalog(
    Vhost("site", {"host": {"names": ["*.example.com", "::1"]}}, {"live": App({"publishers": {}})}),
    Vhost("default", {"host": {"names": "*"}}),
)


@pytest.mark.parametrize("host, vhost", [
    ("cdn.Example.com:8080", "site"),   # case and port ignored
    ("[::1]:1935", "site"),
    ("example.com", "default"),         # *.example.com wants a subdomain; * takes the rest
    ("10.0.0.1", "default"),
])
def test_first_vhost_whose_host_names_match(host: str, vhost: str) -> None:
    assert resolve_vhost(CATALOG, host) == vhost


def test_a_vhost_name_matches_only_when_asked() -> None:
    only_site = Catalog(Vhost("site", {"host": {"names": ["*.example.com"]}}))
    assert resolve_vhost(only_site, "site") is None
    assert resolve_vhost(only_site, "site", allow_vhost_name=True) == "site"


def test_router_answers_the_vhost_and_the_apps_json() -> None:
    router = HostRouter(CATALOG)
    assert router.app_for_host("a.example.com", "live") == ("site", {"publishers": {}})
    assert router.app_for_host("a.example.com", "nope") == ("site", None)
    assert HostRouter(Catalog(Vhost("site", {"host": {"names": ["x"]}}))).app_for_host("y", "live") is None
