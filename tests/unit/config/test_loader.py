"""Server.xml → ServerConfig: ports, token, CORS, and vhosts/apps in OME's REST JSON shape."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kiln.config import BindConfig, ConfigLoadError, ServerConfig, load_default_config, load_server_xml
from kiln.config import load_server_xml_text as load_text
from kiln.config.validate import validate_vhost_json
from tests.unit.config.samples import FULL_VHOST, FULL_XML, app_xml, server_xml


# --- embedded default ------------------------------------------------------------------------
def test_default_config_opens_ome_sample_ports_and_no_token() -> None:
    config = load_default_config()
    assert isinstance(config, ServerConfig)
    assert config.warnings == []
    assert (config.name, config.ip, config.type) == ("Kiln", "*", "origin")
    bind = config.bind
    assert (bind.api_port, bind.rtmp_port, bind.srt_port, bind.mpegts_ports) == (8081, 1935, 9999, [4000])
    assert (bind.llhls_port, bind.ovt_port, bind.srt_playback_port) == (3333, 9000, 9998)
    assert (bind.webrtc_signalling_port, bind.webrtc_candidate_ports) == (3333, "*:10000-10004/udp")
    assert bind.thumbnail_port is None and bind.api_tls_port is None
    assert config.access_token is None
    assert config.modules.ertmp is False
    assert config.source == "(embedded default)"


def test_default_config_app_shape() -> None:
    [vhost] = load_default_config().vhosts
    assert vhost["name"] == "default"
    assert vhost["host"] == {"names": ["*"]}
    [app] = vhost["applications"]["application"]
    assert (app["name"], app["type"]) == ("app", "live")
    assert sorted(app["providers"]) == ["mpegts", "ovt", "rtmp", "rtspPull", "srt", "webrtc"]
    assert app["providers"]["mpegts"] == {"streamMap": {"stream": [{"name": "stream_${Port}", "port": "4000"}]}}
    assert app["providers"]["rtmp"] == {}
    pubs = app["publishers"]
    assert {"llhls", "webrtc", "ovt", "push", "file", "thumbnail", "srt"} <= set(pubs)
    assert pubs["srt"] == {}
    assert pubs["llhls"]["chunkDuration"] == "0.5"
    assert (pubs["llhls"]["segmentDuration"], pubs["llhls"]["segmentCount"]) == ("6", "10")
    assert pubs["llhls"]["crossDomains"] == {"urls": ["*"]}
    [profile] = app["outputProfiles"]["outputProfile"]
    assert profile["name"] == "bypass_stream"
    assert profile["outputStreamName"] == "${OriginStreamName}"
    assert profile["encodes"]["videos"] == [{"name": "bypass_video", "bypass": "true"}]
    assert [a["name"] for a in profile["encodes"]["audios"]] == ["aac_audio", "opus_audio"]
    assert profile["encodes"]["audios"][0] == {"name": "aac_audio", "codec": "aac", "bitrate": "128000",
                                               "samplerate": "48000", "channel": "2",
                                               "bypassIfMatch": {"codec": "eq"}}
    assert profile["playlists"] == [{"name": "default", "fileName": "master",
                                     "options": {"webRtcAutoAbr": "true", "hlsChunklistPathDepth": "-1"},
                                     "renditions": [{"name": "bypass", "video": "bypass_video",
                                                     "audio": "aac_audio"}]}]
    validate_vhost_json(vhost)


def test_default_ports_follow_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILN_API_PORT", "0")
    monkeypatch.setenv("KILN_MPEGTS_PORT", "4100")
    config = load_default_config()
    assert config.bind.api_port == 0
    assert config.bind.mpegts_ports == [4100]
    app = config.vhosts[0]["applications"]["application"][0]
    assert app["providers"]["mpegts"]["streamMap"]["stream"][0]["port"] == "4100"


# --- a file with every section ---------------------------------------------------------------
def test_full_server_xml_maps_to_ome_json(tmp_path: Path) -> None:
    path = tmp_path / "Server.xml"
    path.write_text(FULL_XML)
    config = load_server_xml(path)
    assert config.warnings == []
    assert config.vhosts == [FULL_VHOST]
    assert config.base_dir == tmp_path.resolve()
    assert config.resolve_path(config.vhosts[0]["host"]["tls"]["certPath"]) == tmp_path.resolve() / "cert.pem"
    assert config.resolve_path("/etc/x.pem") == Path("/etc/x.pem")


def test_full_server_xml_server_settings() -> None:
    config = load_text(FULL_XML, "/srv/kiln")
    assert (config.name, config.type, config.ip, config.ips) == ("EdgeOne", "edge", "*", ["*", "::"])
    assert config.privacy_protection is True
    assert config.stun_server == "stun.example.org:3478"
    assert config.modules.ertmp is True and config.modules.http2 is False and config.modules.llhls is True
    assert config.access_token == "admin:s3cret"
    assert config.api_cross_domains == ["*.example.org", "http://tools.example.net"]
    assert config.api_cross_domain_headers == {"Access-Control-Max-Age": "600"}
    assert config.managers_host == {"names": ["api.example.org"]}
    assert config.base_dir == Path("/srv/kiln")
    assert config.bind == BindConfig(
        api_port=18081, api_tls_port=18082, rtmp_port=11935, srt_port=19999,
        srt_options={"SRTO_PASSPHRASE": "secret-pass"}, srt_stream_map={19999: "default/app/cam"},
        mpegts_ports=[14000, 14001, 14002, 14005],
        webrtc_signalling_port=13333, webrtc_signalling_tls_port=13334, webrtc_ingest_signalling_port=13333,
        webrtc_candidate_ports="*:10000-10004/udp", webrtc_tcp_relay="*:3478", llhls_port=13333, llhls_tls_port=13334,
        ovt_port=19000, thumbnail_port=0,
    )


def test_absent_bind_entries_mean_closed_listeners() -> None:
    config = load_text(server_xml(app_xml("<Providers><RTMP/></Providers>")), ".")
    bind = config.bind
    assert bind.api_port is None and bind.rtmp_port is None and bind.llhls_port is None
    assert bind.mpegts_ports == [] and bind.srt_options == {}
    assert config.access_token is None and config.api_cross_domains == []


def test_srt_publisher_port_and_socket_options_are_read() -> None:
    """Bind/Publishers/SRT: the playback port and its socket options (OME sets the passphrase there),
    apart from the SRT ingest port's options."""
    bind = load_text(server_xml(app_xml("<Publishers><SRT/></Publishers>"), bind=(
        "<Providers><SRT><Port>9999</Port><Options><Option><Key>SRTO_LATENCY</Key><Value>200</Value></Option>"
        "</Options></SRT></Providers>"
        "<Publishers><SRT><Port>9998</Port><Options>"
        "<Option><Key>SRTO_PASSPHRASE</Key><Value>playback-secret</Value></Option>"
        "<Option><Key>SRTO_PBKEYLEN</Key><Value>16</Value></Option>"
        "</Options></SRT></Publishers>")), ".").bind
    assert (bind.srt_port, bind.srt_playback_port) == (9999, 9998)
    assert bind.srt_playback_options == {"SRTO_PASSPHRASE": "playback-secret", "SRTO_PBKEYLEN": "16"}
    assert bind.srt_options == {"SRTO_LATENCY": "200"}


def test_empty_sections_become_empty_objects_and_absent_ones_stay_absent() -> None:
    config = load_text(server_xml(app_xml("<Providers><RTMP/><SRT></SRT></Providers><Publishers/>")), ".")
    app = config.vhosts[0]["applications"]["application"][0]
    assert app == {"name": "app", "type": "live", "providers": {"rtmp": {}, "srt": {}}, "publishers": {}}


def test_vhost_include_files(tmp_path: Path) -> None:
    (tmp_path / "VHost-a.xml").write_text("<VirtualHost><Name>a</Name><Host><Names><Name>a.test</Name></Names>"
                                          "</Host></VirtualHost>")
    (tmp_path / "VHost-b.xml").write_text("<VirtualHost><Name>b</Name></VirtualHost>")
    xml = server_xml().replace("<VirtualHosts>", '<VirtualHosts><VirtualHost include="VHost-*.xml"/>')
    (tmp_path / "Server.xml").write_text(xml)
    config = load_server_xml(tmp_path / "Server.xml")
    assert [v["name"] for v in config.vhosts] == ["a", "b", "default"]
    assert config.vhosts[0]["host"] == {"names": ["a.test"]}


# --- ${env:...} ------------------------------------------------------------------------------
def test_env_substitution_with_and_without_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILN_T_TOKEN", "from-env")
    monkeypatch.delenv("KILN_T_PORT", raising=False)
    xml = server_xml(
        app_xml("<OutputProfiles><OutputProfile><Name>p_${env:KILN_T_PORT:x}</Name>"
                "<OutputStreamName>${OriginStreamName}_${env:KILN_T_TOKEN}</OutputStreamName>"
                "</OutputProfile></OutputProfiles>"),
        bind="<Providers><RTMP><Port>${env:KILN_T_PORT:2935}</Port></RTMP></Providers>",
        top="<Managers><API><AccessToken>${env:KILN_T_TOKEN}</AccessToken></API></Managers>")
    config = load_text(xml, ".")
    assert config.access_token == "from-env"
    assert config.bind.rtmp_port == 2935
    profile = config.vhosts[0]["applications"]["application"][0]["outputProfiles"]["outputProfile"][0]
    assert profile == {"name": "p_x", "outputStreamName": "${OriginStreamName}_from-env"}
    monkeypatch.setenv("KILN_T_PORT", "3935")
    assert load_text(xml, ".").bind.rtmp_port == 3935


def test_missing_env_variable_names_variable_and_element(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KILN_T_MISSING", raising=False)
    path = tmp_path / "Server.xml"
    path.write_text(server_xml(top="<Managers><API><AccessToken>${env:KILN_T_MISSING}</AccessToken></API></Managers>"))
    with pytest.raises(ConfigLoadError) as info:
        load_server_xml(path)
    message = str(info.value)
    assert "KILN_T_MISSING" in message
    assert str(path) in message
    assert "Server.Managers.API.AccessToken" in message


# --- unknown elements and errors -------------------------------------------------------------
def test_unknown_elements_warn_with_path_and_stay_out_of_json() -> None:
    xml = server_xml(
        "<Foo>1</Foo>" + app_xml("<Publishers><LLHLS><ChunkDuration>1</ChunkDuration><Bogus/></LLHLS>"
                                 "<WebRTCX/></Publishers>"),
        top="<Colour>blue</Colour>")
    config = load_text(xml, ".")
    assert config.warnings == [
        "Unknown element Server.Colour ignored",
        "Unknown element Server.VirtualHosts.VirtualHost.Foo ignored",
        "Unknown element Server.VirtualHosts.VirtualHost.Applications.Application.Publishers.LLHLS.Bogus ignored",
        "Unknown element Server.VirtualHosts.VirtualHost.Applications.Application.Publishers.WebRTCX ignored",
    ]
    vhost = config.vhosts[0]
    assert "foo" not in vhost
    assert vhost["applications"]["application"][0]["publishers"] == {"llhls": {"chunkDuration": "1"}}


def test_old_layout_version_is_a_warning_not_an_error() -> None:
    config = load_text(server_xml().replace('version="8"', 'version="7"'), ".")
    assert len(config.warnings) == 1 and 'version="7"' in config.warnings[0]


def test_malformed_xml_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "Broken.xml"
    path.write_text("<Server version=\"8\">\n  <Name>x</Nme>\n</Server>\n")
    with pytest.raises(ConfigLoadError) as info:
        load_server_xml(path)
    assert str(path) in str(info.value)
    assert "malformed XML" in str(info.value) and "line 2" in str(info.value)


def test_missing_file_and_wrong_root(tmp_path: Path) -> None:
    with pytest.raises(ConfigLoadError, match="cannot read"):
        load_server_xml(tmp_path / "nope.xml")
    with pytest.raises(ConfigLoadError, match=r"root element is <Config>, expected <Server>"):
        load_text("<Config/>", ".")


@pytest.mark.parametrize(("port", "expected"), [
    ("abc", "'abc' is not a port number"),
    ("70000", "out of range"),
    ("1935/sctp", "unknown protocol"),
    ("", "empty port"),
    ("\u00b2", "'\u00b2' is not a port number"),  # isdigit, but int() refuses it: was a ValueError traceback
    ("9" * 5000, "(5000 digits) out of range"),  # more digits than int() reads: the same
])
def test_bad_port_is_an_error_with_element_path(port: str, expected: str) -> None:
    xml = server_xml(bind=f"<Providers><RTMP><Port>{port}</Port></RTMP></Providers>")
    with pytest.raises(ConfigLoadError) as info:
        load_text(xml, ".", source="my.xml")
    assert str(info.value).startswith("my.xml: Server.Bind.Providers.RTMP.Port: ")
    assert expected in str(info.value)


@pytest.mark.parametrize(("text", "expected"), [
    ("4000-\u00b2", "is not a port or port range"), ("4000-" + "9" * 5000, "(5000 digits) out of range"),
    ("\u0663", "is not a port or port range"),  # an Arabic-Indic three: \d matched it
])
def test_bad_port_lists_are_errors(text: str, expected: str) -> None:
    with pytest.raises(ConfigLoadError, match=re.escape(expected)):
        load_text(server_xml(bind=f"<Providers><MPEGTS><Port>{text}</Port></MPEGTS></Providers>"), ".")


@pytest.mark.parametrize(("text", "ports"), [
    ("4000/udp", [4000]),
    ("4000-4003/udp", [4000, 4001, 4002, 4003]),
    ("4000/udp,4001/udp", [4000, 4001]),
    ("4000-4002,4005/udp", [4000, 4001, 4002, 4005]),
    (" 4001 , 4000-4001 ", [4001, 4000]),
    ("0", [0]),
])
def test_mpegts_port_lists_and_ranges(text: str, ports: list[int]) -> None:
    config = load_text(server_xml(bind=f"<Providers><MPEGTS><Port>{text}</Port></MPEGTS></Providers>"), ".")
    assert config.bind.mpegts_ports == ports


@pytest.mark.parametrize("text", ["4003-4000/udp", "4000-/udp", "4000,,4001", "4000-70000"])
def test_bad_mpegts_port_lists(text: str) -> None:
    with pytest.raises(ConfigLoadError, match=r"Server\.Bind\.Providers\.MPEGTS\.Port"):
        load_text(server_xml(bind=f"<Providers><MPEGTS><Port>{text}</Port></MPEGTS></Providers>"), ".")


def test_unknown_server_type_is_an_error() -> None:
    with pytest.raises(ConfigLoadError, match=r"Server\.Type: Unknown type 'relay'"):
        load_text(server_xml().replace("<Type>origin</Type>", "<Type>relay</Type>"), ".")


def test_unknown_application_type_is_an_error_naming_the_app(tmp_path: Path) -> None:
    path = tmp_path / "Server.xml"
    path.write_text(server_xml(app_xml(name="tv", type_="broadcast")))
    with pytest.raises(ConfigLoadError) as info:
        load_server_xml(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert "Application (name=tv)" in message and message.endswith("Unknown type: broadcast")


def test_encode_without_bitrate_is_an_error() -> None:
    xml = server_xml(app_xml("<OutputProfiles><OutputProfile><Name>p</Name><OutputStreamName>x</OutputStreamName>"
                             "<Encodes><Video><Name>v</Name><Codec>h264</Codec></Video></Encodes>"
                             "</OutputProfile></OutputProfiles>"))
    with pytest.raises(ConfigLoadError, match="Bitrate must be specified when bypass is false"):
        load_text(xml, ".")


def test_missing_vhost_name_and_duplicates_are_errors() -> None:
    with pytest.raises(ConfigLoadError, match="virtualHost.name is not optional"):
        load_text(server_xml().replace("<Name>default</Name>", ""), ".")
    twice = server_xml().replace("</VirtualHosts>", "<VirtualHost><Name>default</Name></VirtualHost></VirtualHosts>")
    with pytest.raises(ConfigLoadError, match="duplicate virtual host name 'default'"):
        load_text(twice, ".")
    two_apps = server_xml(app_xml().replace("</Applications>", "<Application><Name>app</Name><Type>live</Type>"
                                                               "</Application></Applications>"))
    with pytest.raises(ConfigLoadError, match="duplicate application name 'app'"):
        load_text(two_apps, ".")


def test_bad_mpegts_stream_map_port_is_an_error() -> None:
    xml = server_xml(app_xml("<Providers><MPEGTS><StreamMap><Stream><Name>s</Name><Port>x</Port></Stream>"
                             "</StreamMap></MPEGTS></Providers>"))
    with pytest.raises(ConfigLoadError, match=r"MPEGTS\.StreamMap\.Stream\.Port"):
        load_text(xml, ".")
