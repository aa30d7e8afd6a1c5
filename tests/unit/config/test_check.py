"""``kiln config check``: what a deployer reads before starting the server, and its exit codes."""

from __future__ import annotations

import io
from pathlib import Path

from kiln.config.check import run_check
from tests.unit.config.samples import FULL_XML, app_xml, server_xml


def check(path: str | None) -> tuple[int, str]:
    out = io.StringIO()
    code = run_check(path, out)
    return code, out.getvalue()


def test_default_config_summary() -> None:
    code, text = check(None)
    assert code == 0
    assert "config: (embedded default)" in text
    assert "REST API                   8081" in text
    assert "RTMP ingest                1935" in text
    assert "MPEG-TS/UDP ingest         4000" in text
    assert "LLHLS                      3333" in text
    assert "WebRTC signalling          3333" in text
    assert "WebRTC ICE (UDP)           *:10000-10004/udp" in text
    assert "generated on first start" in text
    assert "vhost default (host names: *)" in text
    assert "  app app (live)" in text
    assert "providers: ovt, webrtc, rtmp, srt, mpegts, rtspPull" in text
    assert ("profile bypass_stream -> ${OriginStreamName}: bypass_video(bypass), aac_audio(aac 128000), "
            "opus_audio(opus 128000); playlists master.m3u8") in text
    assert "Thumbnail is enabled in default/app but has no Bind port" in text
    # OME's default config enables OVT and WebRTC ingest; Kiln opens OVT (issue 15) and serves WebRTC ingest
    assert "OVT (origin → edge)        9000" in text.split("vhost default")[0]
    assert "not implemented by Kiln" not in text and text.endswith("OK\n")


def test_full_file_summary_hides_the_token_and_notes_missing_certs(tmp_path: Path) -> None:
    path = tmp_path / "Server.xml"
    path.write_text(FULL_XML)
    (tmp_path / "cert.pem").write_text("x")
    code, text = check(str(path))
    assert code == 0
    assert "s3cret" not in text
    assert "api token: set in Server.xml" in text
    assert "MPEG-TS/UDP ingest         14000, 14001, 14002, 14005" in text
    assert "Thumbnail                  0 (any free port)" in text
    assert "video_360(h264 500K 640 360)" in text
    assert f"keyPath {tmp_path.resolve() / 'key.pem'} does not exist" in text
    assert "certPath" not in text


def test_warnings_are_printed_with_paths_and_still_exit_0(tmp_path: Path) -> None:
    path = tmp_path / "Server.xml"
    path.write_text(server_xml(app_xml("<Publishers><LLHLS><Segments>3</Segments></LLHLS></Publishers>")))
    code, text = check(str(path))
    assert code == 0
    assert "warnings (1):" in text
    assert "Unknown element Server.VirtualHosts.VirtualHost.Applications.Application.Publishers.LLHLS.Segments" in text
    assert "REST API is off" in text
    assert "LLHLS is enabled in default/app but has no Bind port" in text


def test_invalid_file_exits_2_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "Server.xml"
    path.write_text(server_xml(app_xml(type_="broadcast")))
    code, text = check(str(path))
    assert code == 2
    assert text.count("\n") == 1
    assert text.startswith(f"error: {path}")
    assert text.rstrip().endswith("Unknown type: broadcast")


def test_malformed_or_missing_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "Server.xml"
    path.write_text("<Server><Name>")
    code, text = check(str(path))
    assert (code, text.count("\n")) == (2, 1)
    assert "malformed XML" in text and str(path) in text
    code, text = check(str(tmp_path / "missing.xml"))
    assert code == 2 and "cannot read" in text


def test_a_vhost_behind_an_earlier_star_is_reported_as_shadowed(tmp_path: Path) -> None:
    tv = "<VirtualHost><Name>tv</Name><Host><Names><Name>tv.example.com</Name></Names></Host></VirtualHost>"
    site = "<VirtualHost><Name>site</Name><Host><Names><Name>[::1]</Name></Names></Host></VirtualHost>"
    path = tmp_path / "Server.xml"
    path.write_text(server_xml().replace("</VirtualHosts>", f"{tv}</VirtualHosts>"))
    code, text = check(str(path))
    assert code == 0
    assert ("vhost tv is shadowed: every host name is matched first by an earlier vhost "
            "(tv.example.com by default); it receives no stream by host name") in text
    path.write_text(server_xml().replace("<VirtualHosts>", f"<VirtualHosts>{site}{tv}"))
    assert "shadowed" not in check(str(path))[1]


def test_media_tls_ports_are_listed_and_open_only_with_a_vhost_certificate(tmp_path: Path) -> None:
    bind = ("<Publishers><LLHLS><Port>13334</Port><TLSPort>13335</TLSPort></LLHLS>"
            "<Thumbnail><Port>13338</Port><TLSPort>13339</TLSPort></Thumbnail></Publishers>")
    plain = server_xml(app_xml(), bind=bind)
    secure = plain.replace("<Host><Names><Name>*</Name></Names></Host>",
                           "<Host><Names><Name>*</Name></Names>"
                           "<TLS><CertPath>tls/c.crt</CertPath><KeyPath>tls/c.key</KeyPath></TLS></Host>")
    for name, xml in (("plain.xml", plain), ("secure.xml", secure)):
        (tmp_path / name).write_text(xml)
    code, text = check(str(tmp_path / "plain.xml"))
    assert code == 0
    assert "LLHLS (TLS)                13335" in text
    assert "Thumbnail (TLS)            13339" in text
    assert "not implemented by Kiln" not in text
    assert "LLHLS (TLS) will not be opened: no vhost has Host/TLS CertPath and KeyPath" in text
    assert "Thumbnail (TLS) will not be opened: no vhost has Host/TLS CertPath and KeyPath" in text
    code, text = check(str(tmp_path / "secure.xml"))
    assert code == 0
    assert "LLHLS (TLS)                13335" in text
    assert "will not be opened" not in text


def test_a_schedule_provider_without_its_media_root_is_noted(tmp_path: Path) -> None:
    path = tmp_path / "Server.xml"
    schedule = "<Providers><Schedule><MediaRootDir>media</MediaRootDir><ScheduleFilesDir>sch</ScheduleFilesDir>" \
               "</Schedule></Providers>"
    path.write_text(server_xml(app_xml(schedule)))
    code, text = check(str(path))
    assert code == 0 and f"Schedule MediaRootDir {tmp_path.resolve() / 'media'} is not a directory" in text
    (tmp_path / "media").mkdir()
    assert "MediaRootDir" not in check(str(path))[1]
    assert "not implemented by Kiln" not in check(str(path))[1]


def test_the_schedule_files_are_read_as_at_start_and_live_items_naming_no_app_noted(tmp_path: Path) -> None:
    path = tmp_path / "Server.xml"
    schedule = "<Providers><Schedule><MediaRootDir>media</MediaRootDir><ScheduleFilesDir>sch</ScheduleFilesDir>" \
               "</Schedule></Providers>"
    path.write_text(server_xml(app_xml(schedule)))
    (tmp_path / "sch").mkdir()
    (tmp_path / "sch" / "origin.sch").write_text(
        '<Schedule><Stream/><FallbackProgram><Item url="file://idle.mp4"/></FallbackProgram>'
        '<Program scheduled="2000-01-01T00:00:00Z" repeat="true"><Item url="stream://default/app/cam1" duration="-1"/>'
        '<Item url="stream://default/nope/cam" duration="5000"/></Program></Schedule>')
    (tmp_path / "sch" / "bad.sch").write_text("<Schedule><Stream/><Program/></Schedule>")
    code, text = check(str(path))
    assert code == 0
    assert "schedule origin.sch: 1 program(s), 1 file:// and 2 stream:// item(s)" in text
    assert "schedule file origin.sch: stream://default/nope/cam names an app this configuration does not have" in text
    assert "stream://default/app/cam1 names" not in text
    assert "schedule file bad.sch will be refused: Failed to find scheduled attribute" in text
    assert "file:// items have nothing to play (stream:// items, the server's live streams, still do)" in text
