"""Host routing: which vhost a URL's host part selects, and which app the publishers' ports serve."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from kiln.config.hosts import HostRouter, host_matches, name_covers, resolve_vhost, shadowing, shadowing_text
from kiln.events.catalog import VhostCreated, VhostDeleted
from kiln.projections.catalog import CatalogProjection


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

    def host_table(self) -> tuple[tuple[str, dict[str, Any]], ...]:
        return tuple((v.name, v.config) for v in self.vhosts.values())

    def app_config(self, vhost: str, app: str) -> dict[str, Any] | None:
        view = self.vhosts.get(vhost)
        found = view.apps.get(app) if view is not None else None
        return found.config if found is not None else None


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
    assert resolve_vhost(CATALOG.host_table(), host) == vhost


def test_a_vhost_name_matches_only_when_asked() -> None:
    only_site = Catalog(Vhost("site", {"host": {"names": ["*.example.com"]}}))
    assert resolve_vhost(only_site.host_table(), "site") is None
    assert resolve_vhost(only_site.host_table(), "site", allow_vhost_name=True) == "site"


def test_router_answers_the_vhost_and_the_apps_json() -> None:
    router = HostRouter(CATALOG)
    assert router.app_for_host("a.example.com", "live") == ("site", {"publishers": {}})
    assert router.app_for_host("a.example.com", "nope") == ("site", None)
    assert HostRouter(Catalog(Vhost("site", {"host": {"names": ["x"]}}))).app_for_host("y", "live") is None


@pytest.mark.parametrize("pattern, host, matches", [
    ("[::1]", "[::1]:1935", True),           # an IPv6 literal, not a character class
    ("[::1]", "1", False),
    ("[::1]", ":", False),
    ("a?c.example.com", "abc.example.com", False),   # only * is a wildcard (OME's rule)
    ("a?c.example.com", "a?c.example.com", True),
    ("tv[12].example.com", "tv1.example.com", False),
    ("*.Example.com", "a.b.example.COM:443", True),
    ("*.example.com", "example.com", False),
    ("tv.*.com", "tv.example.com", True),
    ("tv.example.com", "tvxexample.com", False),     # a dot is a dot
    ("*", "", True),
])
def test_only_star_is_a_wildcard_and_every_other_character_is_literal(pattern: str, host: str,
                                                                        matches: bool) -> None:
    assert host_matches(pattern, host) is matches


@pytest.mark.parametrize("earlier, later, covers", [
    ("*", "tv.example.com", True),
    ("*", "*.example.com", True),
    ("*.example.com", "tv.example.com", True),
    ("*.example.com", "*.tv.example.com", True),
    ("*.example.com", "*.com", False),
    ("*.example.com", "*", False),
    ("tv.example.com", "TV.example.com", True),
    ("tv.example.com", "*.example.com", False),
    ("[::1]", "::1", True),
])
def test_a_name_covers_another_when_it_matches_every_host_the_other_does(earlier: str, later: str,
                                                                         covers: bool) -> None:
    assert name_covers(earlier, later) is covers


def test_a_vhost_is_shadowed_only_when_every_name_is_taken_by_an_earlier_vhost() -> None:
    earlier = [("site", ["*.example.com"]), ("default", ["*"])]
    assert shadowing(earlier, ["tv.example.com", "10.0.0.1"]) == {"tv.example.com": "site", "10.0.0.1": "default"}
    assert shadowing(earlier[:1], ["tv.example.com", "10.0.0.1"]) == {}
    assert shadowing(earlier, []) == {}   # no host names: nothing to shadow
    assert shadowing([], ["tv.example.com"]) == {}
    assert shadowing_text({"tv.example.com": "default"}) == "tv.example.com by default"


def test_a_later_vhost_behind_a_star_never_receives_a_host() -> None:
    shadowed = Catalog(Vhost("default", {"host": {"names": ["*"]}}),
                       Vhost("tv", {"host": {"names": ["tv.example.com"]}}))
    assert resolve_vhost(shadowed.host_table(), "tv.example.com") == "default"
    assert resolve_vhost(shadowed.host_table(), "tv", allow_vhost_name=True) == "tv"


def test_router_remembers_answers_until_a_vhost_comes_or_goes() -> None:
    """The catalog projection's host table is one object until a vhost changes; the router's remembered
    answers follow it (a player request per part asks which vhost its Host selects)."""
    catalog = CatalogProjection()
    catalog.seed_config_vhost({"name": "default", "host": {"names": ["*.example.com"]}, "applications": {}}, 1.0)
    router = HostRouter(catalog)
    table = catalog.host_table()
    assert catalog.host_table() is table
    assert router.vhost_for_host("a.example.com") == "default"
    assert router.vhost_for_host("tv.test") is None
    assert router.vhost_for_host("tv.test") is None  # remembered, still right
    catalog.apply(VhostCreated("tv", {"name": "tv", "host": {"names": ["tv.test"]}}, 2.0))
    assert catalog.host_table() is not table
    assert router.vhost_for_host("tv.test") == "tv"
    assert router.vhost_config("tv") == {"name": "tv", "host": {"names": ["tv.test"]}}
    catalog.apply(VhostDeleted("tv"))
    assert router.vhost_for_host("tv.test") is None and router.vhost_config("tv") is None
