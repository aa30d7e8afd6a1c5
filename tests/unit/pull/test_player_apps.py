"""The player doors see a vhost's ``*`` template as any app the vhost does not have (so a player's request reaches
pull on demand, which makes the app), and nothing changes for a vhost without one; ingest never sees it."""

from __future__ import annotations

from typing import Any

from kiln.config.hosts import HostRouter
from kiln.media.origins.templates import PlayerApps
from kiln.projections.catalog import CatalogProjection


def _catalog(*apps: str) -> CatalogProjection:
    catalog = CatalogProjection()
    catalog.seed_config_vhost({"name": "default", "host": {"names": ["*"]}, "applications": {"application": [
        {"name": name, "type": "live", "publishers": {"llhls": {}}} for name in apps]}}, 1.0)
    return catalog


def test_a_missing_app_is_the_template_named_after_it() -> None:
    router = HostRouter(_catalog("*", "fixed"))
    players = PlayerApps(router)
    found = players.app_for_host("edge.test", "app")
    assert found is not None and found[0] == "default"
    config: Any = found[1]
    assert config == {"name": "app", "type": "live", "publishers": {"llhls": {}}}
    assert players.app_config("default", "app") is config  # the same object per name: per-app caches keep working
    assert players.app_config("default", "fixed") is router.app_config("default", "fixed")
    assert router.app_for_host("edge.test", "app") == ("default", None)  # ingest's router: no such app
    assert router.app_for_host("edge.test", "*") == ("default", None)  # the template is no app
    assert players.app_config("nope", "app") is None


def test_without_a_template_nothing_changes() -> None:
    players = PlayerApps(HostRouter(_catalog("fixed")))
    assert players.app_for_host("edge.test", "app") == ("default", None)
    assert players.app_for_host("edge.test", "fixed") is not None
