"""Shared pytest setup: the peer fixtures plugin and Kiln-as-a-subprocess fixtures."""

from __future__ import annotations

pytest_plugins = ["tests.peers.fixtures"]
