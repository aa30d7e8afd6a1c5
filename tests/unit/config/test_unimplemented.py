"""Honesty (issue 14 item 5): every configured element Kiln does not implement is a warning naming
it, in ``kiln config check`` and at startup; listeners Kiln does not open are not listed."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from kiln.config.check import run_check
from kiln.config.loader import load_server_xml
from kiln.config.unimplemented import unimplemented_warnings

SAMPLE = """<?xml version="1.0" encoding="UTF-8"?>
<Server version="8">
  <Name>Honest</Name><Type>origin</Type><IP>*</IP>
  <Modules><P2P><Enable>true</Enable></P2P></Modules>
  <Bind>
    <Managers><API><Port>18081</Port></API></Managers>
    <Providers>
      <RTMP><Port>11935</Port></RTMP>
      <WebRTC><Signalling><Port>13333</Port></Signalling></WebRTC>
    </Providers>
    <Publishers>
      <LLHLS><Port>13334</Port><TLSPort>13335</TLSPort></LLHLS>
      <WebRTC><Signalling><Port>13336</Port><TLSPort>13337</TLSPort></Signalling></WebRTC>
      <OVT><Port>19000</Port></OVT>
      <Thumbnail><Port>13338</Port><TLSPort>13339</TLSPort></Thumbnail>
      <HLS><TLSPort>13341</TLSPort></HLS>
    </Publishers>
  </Bind>
  <VirtualHosts>
    <VirtualHost>
      <Name>default</Name>
      <Host><Names><Name>*</Name></Names></Host>
      <AdmissionWebhooks><ControlServerUrl>http://127.0.0.1:9/a</ControlServerUrl><SecretKey>k</SecretKey>
        <Enables><Providers>rtmp</Providers></Enables></AdmissionWebhooks>
      <Origins><Origin><Location>/app/x</Location><Pass><Scheme>ovt</Scheme>
        <Urls><Url>origin.example:9000/app/x</Url></Urls></Pass></Origin></Origins>
      <OriginMapStore><RedisServer><Host>127.0.0.1:6379</Host></RedisServer></OriginMapStore>
      <Applications>
        <Application>
          <Name>app</Name><Type>live</Type>
          <OutputProfiles>
            <HWAccels><Encoder><Enable>true</Enable></Encoder></HWAccels>
            <OutputProfile><Name>p</Name><OutputStreamName>${OriginStreamName}</OutputStreamName>
              <Encodes><Video><Bypass>true</Bypass></Video></Encodes></OutputProfile>
          </OutputProfiles>
          <Providers><RTMP><EventGenerator/></RTMP><OVT/><WebRTC/><File/><Schedule/><Multiplex/><RTSP/></Providers>
          <Publishers><OVT/><WebRTC/><LLHLS><DRM><Enable>true</Enable></DRM>
            <DVR><Enable>true</Enable><EventPlaylistType>true</EventPlaylistType></DVR></LLHLS><Thumbnail/></Publishers>
          <PersistentStreams/><TranscodeWebhook/><EventGenerator/>
        </Application>
      </Applications>
    </VirtualHost>
  </VirtualHosts>
</Server>
"""

EXPECTED = [
    "Server.Bind.Providers.WebRTC.Signalling (13333): not implemented by Kiln, WebRTC ingest signalling is not opened",
    "Server.Bind.Publishers.WebRTC.Signalling.TLSPort (13337): not implemented by Kiln, WebRTC signalling (TLS) "
    "is not opened",
    "Server.Bind.Publishers.HLS.TLSPort (13341): not implemented by Kiln, HLS v3 (TLS) is not opened",
    "Server.Modules.P2P: not implemented by Kiln, peer-to-peer delivery is off",
    *(f"vhost default app app: Application.{element}: not implemented by Kiln, {feature}" for element, feature in (
        ("Providers.File", "file provider"),  # Providers.Schedule and Multiplex are not named: Kiln runs them
        ("Providers.RTSP", "RTSP push ingest"),
        ("Providers.RTMP.EventGenerator", "RTMP event generator"),
        ("Publishers.LLHLS.DRM", "LL-HLS DRM: streams are sent in the clear"),
        ("Publishers.LLHLS.DVR.EventPlaylistType", "EVENT playlists: the DVR playlist is a sliding window"),
        ("OutputProfiles.HWAccels", "hardware encoding and decoding (software is used)"),
        ("PersistentStreams", "persistent streams"), ("TranscodeWebhook", "transcode webhook"),
        ("EventGenerator", "event generator"))),
]


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "Server.xml"
    path.write_text(SAMPLE)
    return path


def test_every_unimplemented_element_is_named(sample: Path) -> None:
    assert unimplemented_warnings(load_server_xml(sample)) == EXPECTED


def test_config_check_warns_and_lists_only_opened_listeners(sample: Path) -> None:
    out = io.StringIO()
    assert run_check(str(sample), out) == 0
    text = out.getvalue()
    listeners = text.split("listeners:\n")[1].split("api token")[0]
    assert listeners.split() == ["REST", "API", "18081", "RTMP", "ingest", "11935", "LLHLS", "13334", "LLHLS",
                                 "(TLS)", "13335", "WebRTC", "signalling", "13336", "OVT", "(origin", "→", "edge)",
                                 "19000", "Thumbnail", "13338", "Thumbnail", "(TLS)", "13339", "WebRTC", "ICE", "(UDP)",
                                 "ephemeral", "ports"]
    for line in EXPECTED:
        assert f"  {line}\n" in text
    # the TLS ports are opened with the vhosts' certificates, and this config has none
    assert "LLHLS (TLS) will not be opened: no vhost has Host/TLS CertPath and KeyPath" in text
    assert "Thumbnail (TLS) will not be opened: no vhost has Host/TLS CertPath and KeyPath" in text


def test_a_config_without_them_has_no_such_warning(tmp_path: Path) -> None:
    plain = SAMPLE.split("<AdmissionWebhooks>")[0] + "<Applications/></VirtualHost></VirtualHosts></Server>"
    plain = plain.replace("<Modules><P2P><Enable>true</Enable></P2P></Modules>", "")
    for tag in ("<WebRTC><Signalling><Port>13333</Port></Signalling></WebRTC>",
                "<TLSPort>13335</TLSPort>", "<WebRTC><Signalling><Port>13336</Port><TLSPort>13337</TLSPort>"
                "</Signalling></WebRTC>", "<OVT><Port>19000</Port></OVT>", "<TLSPort>13339</TLSPort>",
                "<HLS><TLSPort>13341</TLSPort></HLS>"):
        plain = plain.replace(tag, "")
    path = tmp_path / "plain.xml"
    path.write_text(plain)
    assert unimplemented_warnings(load_server_xml(path)) == []


def test_startup_logs_each_warning(sample: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import kiln.service
    from kiln import cli

    class Stop(Exception):
        pass

    def refuse(*args: object, **kwargs: object) -> None:
        raise Stop

    monkeypatch.setattr(kiln.service, "KilnService", refuse)
    caplog.set_level(logging.WARNING)
    with pytest.raises(Stop):
        cli.main(["serve", "-c", str(sample), "-d", str(tmp_path / "data")])
    logged = [r.getMessage() for r in caplog.records if r.name == "kiln"]
    assert [m for m in logged if "not implemented by Kiln" in m] == [f"configuration {line}" for line in EXPECTED]


def test_tcp_relay_worker_count_is_named(tmp_path: Path) -> None:
    """Kiln's TURN relay (TcpRelay) runs on the event loop: OME's worker count is accepted and said unused."""
    ice = ("<IceCandidates><IceCandidate>*:10000/udp</IceCandidate><TcpRelay>*:13478</TcpRelay>"
           "<TcpRelayWorkerCount>2</TcpRelayWorkerCount></IceCandidates>")
    xml = SAMPLE.replace("<Signalling><Port>13336</Port>", ice + "<Signalling><Port>13336</Port>", 1)
    assert ice in xml
    path = tmp_path / "relay.xml"
    path.write_text(xml)
    assert ("Server.Bind.Publishers.WebRTC.IceCandidates.TcpRelayWorkerCount (2): not implemented by Kiln, "
            "the TURN relay runs on Kiln's event loop") in unimplemented_warnings(load_server_xml(path))
