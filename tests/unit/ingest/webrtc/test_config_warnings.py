"""WebRTC ingest is served on the player port's signalling listener: a configuration where it cannot be
(no Publishers/WebRTC signalling, or a Providers/WebRTC port of its own) says so instead of staying silent."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln.config.loader import load_server_xml
from kiln.config.unimplemented import unimplemented_warnings

XML = """<?xml version="1.0" encoding="UTF-8"?>
<Server version="8">
  <Name>Rtc</Name><Type>origin</Type><IP>*</IP>
  <Bind>
    <Managers><API><Port>18081</Port></API></Managers>
    <Providers>{providers}</Providers>
    <Publishers><LLHLS><Port>13334</Port></LLHLS>{publishers}</Publishers>
  </Bind>
  <VirtualHosts><VirtualHost><Name>default</Name><Host><Names><Name>*</Name></Names></Host>
    <Applications><Application><Name>app</Name><Type>live</Type>
      <Providers><WebRTC/></Providers><Publishers><LLHLS/></Publishers>
    </Application></Applications>
  </VirtualHost></VirtualHosts>
</Server>
"""
SIGNALLING = "<WebRTC><Signalling><Port>13334</Port></Signalling></WebRTC>"


@pytest.mark.parametrize("providers, publishers, expected", [
    ("", SIGNALLING, []),
    (SIGNALLING, SIGNALLING, []),  # OME's sample: both on the same port
    ("<WebRTC><Signalling><Port>13399</Port></Signalling></WebRTC>", SIGNALLING,
     ["Server.Bind.Providers.WebRTC.Signalling (13399): not implemented by Kiln, WebRTC ingest signalling is not "
      "opened"]),
    ("", "", ["vhost default app app: Application.Providers.WebRTC: not opened: WebRTC ingest is served on "
              "Server.Bind.Publishers.WebRTC.Signalling, which is not configured"]),
])
def test_where_webrtc_ingest_cannot_be_served_is_said(tmp_path: Path, providers: str, publishers: str,
                                                       expected: list[str]) -> None:
    path = tmp_path / "Server.xml"
    path.write_text(XML.format(providers=providers, publishers=publishers))
    assert unimplemented_warnings(load_server_xml(path)) == expected
