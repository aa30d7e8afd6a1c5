"""A vhost listed after one whose host names take all of its own never receives a stream by host
name (the first match wins, as in OME): Kiln says so when it starts and ``kiln config check`` too."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.kiln_process import KilnProcess, Ports, server_xml

pytestmark = pytest.mark.e2e

TV = "<VirtualHost><Name>tv</Name><Host><Names><Name>tv.example.com</Name></Names></Host></VirtualHost>"


def test_a_server_xml_vhost_behind_default_is_reported_at_start_and_by_config_check(
        kiln_factory: Callable[..., KilnProcess], tmp_path: Path) -> None:
    ports = Ports()
    xml = server_xml(ports, tmp_path / "records").replace("</VirtualHosts>", f"{TV}</VirtualHosts>")
    kiln = kiln_factory(xml, ports)
    assert "vhost shadowed vhost=tv shadowed_by=default host_names=tv.example.com" in kiln.log_tail(400)
    assert kiln.api.get("/v1/vhosts").json()["response"] == ["default", "tv"]
    check = subprocess.run([sys.executable, "-m", "kiln.cli", "config", "check", str(kiln.config_path)],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert ("vhost tv is shadowed: every host name is matched first by an earlier vhost "
            "(tv.example.com by default); it receives no stream by host name") in check.stdout
