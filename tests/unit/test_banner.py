"""The startup lines: true to this start (token generated or reused), every listener, usable URL forms."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from kiln.banner import Banner, Token, TokenSource
from kiln.uvicorn_logging import UpgradeNotice

ALL = {"llhls": ("0.0.0.0", 3333), "api": ("0.0.0.0", 8081), "thumbnail": ("0.0.0.0", 20081),
       "rtmp": ("0.0.0.0", 1935), "srt": ("0.0.0.0", 9999), "mpegts:4001": ("0.0.0.0", 4001),
       "mpegts:4000": ("0.0.0.0", 4000), "api_tls": ("0.0.0.0", 8082)}


def test_a_wildcard_bind_lists_every_listener_and_the_url_forms_with_host(tmp_path: Path) -> None:
    token = Token(TokenSource.GENERATED, tmp_path / "access_token")
    lines = Banner("1.2.3", token, ALL, ["default/app"], tmp_path).lines()
    file = tmp_path / "access_token"
    assert lines == [
        f"api access token generated file={file} (use: curl -u \"$(cat {file})\" ...)",
        "listening api=0.0.0.0:8081 api_tls=0.0.0.0:8082 rtmp=0.0.0.0:1935 srt=0.0.0.0:9999/udp "
        "mpegts=0.0.0.0:4000/udp mpegts=0.0.0.0:4001/udp llhls=0.0.0.0:3333 thumbnail=0.0.0.0:20081",
        "applications default/app",
        "publish rtmp=rtmp://HOST:1935/APP/STREAM",
        "publish srt=srt://HOST:9999?streamid=srt%3A%2F%2FHOST%3A9999%2FAPP%2FSTREAM",
        "publish mpegts=udp://HOST:4000 (stream named by the app's MPEGTS StreamMap)",
        "publish mpegts=udp://HOST:4001 (stream named by the app's MPEGTS StreamMap)",
        "play llhls=http://HOST:3333/APP/STREAM/llhls.m3u8 (or FILENAME.m3u8 of an OutputProfile Playlist)",
        "play thumbnail=http://HOST:20081/APP/STREAM/thumb.jpg (needs an Image encode)",
        "console http://HOST:8081/console/ (log in with the access token)",
        "console https://HOST:8082/console/ (log in with the access token)",
        f"data dir={tmp_path}",
    ]


def test_srt_playback_is_listed_last_as_udp_and_offered_as_a_play_url(tmp_path: Path) -> None:
    listeners = {"srt_playback": ("0.0.0.0", 9998), "srt": ("0.0.0.0", 9999), "api": ("0.0.0.0", 8081)}
    lines = Banner("1", Token(TokenSource.CONFIGURED), listeners, [], tmp_path).lines()
    assert lines[1:] == [
        "listening api=0.0.0.0:8081 srt=0.0.0.0:9999/udp srt_playback=0.0.0.0:9998/udp",
        "publish srt=srt://HOST:9999?streamid=srt%3A%2F%2FHOST%3A9999%2FAPP%2FSTREAM",
        "play srt=srt://HOST:9998?streamid=srt%3A%2F%2FHOST%3A9998%2FAPP%2FSTREAM "
        "(add %2FFILENAME for an OutputProfile Playlist)",
        "console http://HOST:8081/console/ (log in with the access token)",
        f"data dir={tmp_path}",
    ]


def test_webrtc_signalling_and_its_udp_ports_are_listed_with_the_player_urls(tmp_path: Path) -> None:
    listeners = {"llhls": ("0.0.0.0", 3333), "webrtc": ("0.0.0.0", 3333), "webrtc_ice:10001": ("0.0.0.0", 10001),
                 "webrtc_ice:10000": ("0.0.0.0", 10000)}
    lines = Banner("1", Token(TokenSource.CONFIGURED), listeners, [], tmp_path).lines()
    assert lines[1] == ("listening llhls=0.0.0.0:3333 webrtc=0.0.0.0:3333 webrtc_ice=0.0.0.0:10000/udp "
                        "webrtc_ice=0.0.0.0:10001/udp")
    assert "play webrtc=ws://HOST:3333/APP/STREAM (OvenPlayer webrtc source; WHEP: " \
           "http://HOST:3333/APP/STREAM?direction=whep)" in lines


def test_a_reused_or_configured_token_is_called_so(tmp_path: Path) -> None:
    reused = Banner("1", Token(TokenSource.REUSED, tmp_path / "t"), {}, [], tmp_path).lines()[0]
    assert reused.startswith(f"api access token reused file={tmp_path}/t ")
    configured = Banner("1", Token(TokenSource.CONFIGURED), {}, [], tmp_path).lines()[0]
    assert configured == "api access token configured source=Server.xml (Managers/API/AccessToken)"


def test_only_what_is_open_is_offered_and_ipv6_hosts_are_bracketed(tmp_path: Path) -> None:
    lines = Banner("1", Token(TokenSource.CONFIGURED), {"api": ("::1", 8081), "rtmp": ("::1", 1935)}, [],
                   tmp_path).lines()
    assert lines[1:] == ["listening api=[::1]:8081 rtmp=[::1]:1935", "publish rtmp=rtmp://[::1]:1935/APP/STREAM",
                         "console http://[::1]:8081/console/ (log in with the access token)", f"data dir={tmp_path}"]


def test_the_llhls_tls_port_is_listed_after_llhls_with_its_https_url(tmp_path: Path) -> None:
    listeners = {"llhls_tls": ("0.0.0.0", 3334), "llhls": ("0.0.0.0", 3333), "api": ("0.0.0.0", 8081)}
    lines = Banner("1", Token(TokenSource.CONFIGURED), listeners, [], tmp_path).lines()
    assert lines[1] == "listening api=0.0.0.0:8081 llhls=0.0.0.0:3333 llhls_tls=0.0.0.0:3334"
    assert lines[3] == "play llhls_tls=https://HOST:3334/APP/STREAM/llhls.m3u8 (HTTP/2 or HTTP/1.1)"


def test_the_thumbnail_tls_port_is_listed_after_thumbnail_with_its_https_url(tmp_path: Path) -> None:
    listeners = {"thumbnail_tls": ("0.0.0.0", 20082), "thumbnail": ("0.0.0.0", 20081)}
    lines = Banner("1", Token(TokenSource.CONFIGURED), listeners, [], tmp_path).lines()
    assert lines[1] == "listening thumbnail=0.0.0.0:20081 thumbnail_tls=0.0.0.0:20082"
    assert lines[2:4] == ["play thumbnail=http://HOST:20081/APP/STREAM/thumb.jpg (needs an Image encode)",
                          "play thumbnail_tls=https://HOST:20082/APP/STREAM/thumb.jpg"]


def test_uvicorn_upgrade_warnings_become_one_true_line(caplog: pytest.LogCaptureFixture) -> None:
    uvicorn_logger = logging.getLogger("test.uvicorn.error")
    uvicorn_logger.addFilter(UpgradeNotice())
    with caplog.at_level(logging.INFO):
        uvicorn_logger.warning("Unsupported upgrade request.")
        uvicorn_logger.warning("No supported WebSocket library detected. Please use \"pip install ...\"")
        uvicorn_logger.warning("Invalid HTTP request received.")
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        ("kiln.uvicorn_logging", "INFO", "http upgrade request answered as plain HTTP (this port serves no WebSocket)"),
        ("test.uvicorn.error", "WARNING", "Invalid HTTP request received.")]
