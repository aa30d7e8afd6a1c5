"""Push URLs read with FFmpeg's libsrt semantics (latency and timeout in microseconds)."""

from __future__ import annotations

import logging

import pytest

from kiln.media.net.srt.abi import SockOpt
from kiln.media.net.srt.url import SrtUrlError, parse_srt_url


def test_host_port_and_defaults() -> None:
    url = parse_srt_url("srt://127.0.0.1:9000")
    assert (url.host, url.port, url.options, url.io_timeout_ms, url.streamid) == ("127.0.0.1", 9000, [], None, None)


def test_latency_is_microseconds() -> None:
    url = parse_srt_url("srt://h:1?latency=120000&rcvlatency=200000&peerlatency=80000")
    assert url.option(SockOpt.LATENCY) == 120
    assert url.option(SockOpt.RCVLATENCY) == 200
    assert url.option(SockOpt.PEERLATENCY) == 80


def test_timeout_is_microseconds_and_connect_timeout_milliseconds() -> None:
    url = parse_srt_url("srt://h:1?timeout=2500000&connect_timeout=1500")
    assert url.io_timeout_ms == 2500
    assert url.connect_timeout_ms == 1500


def test_negative_numbers_mean_unset_as_in_ffmpeg() -> None:
    url = parse_srt_url("srt://h:1?latency=-1&timeout=-1&pbkeylen=-1")
    assert url.options == [] and url.io_timeout_ms is None


def test_streamid_is_passed_raw_and_hash_is_not_a_fragment() -> None:
    url = parse_srt_url("srt://h:1?streamid=#!::u=default/app/stream,m=publish&latency=200000")
    assert url.streamid == "#!::u=default/app/stream,m=publish"
    assert url.option(SockOpt.LATENCY) == 200


def test_percent_encoded_streamid_is_not_decoded() -> None:
    assert parse_srt_url("srt://h:1?streamid=default%2Fapp%2Fs").streamid == "default%2Fapp%2Fs"


def test_passphrase_pbkeylen_and_masking() -> None:
    url = parse_srt_url("srt://h:1?passphrase=0123456789abc&pbkeylen=32&mode=caller")
    assert url.option(SockOpt.PASSPHRASE) == "0123456789abc"
    assert url.option(SockOpt.PBKEYLEN) == 32
    assert "0123456789abc" not in url.display and "passphrase=***" in url.display


def test_first_occurrence_wins() -> None:
    assert parse_srt_url("srt://h:1?latency=1000&latency=9000").option(SockOpt.LATENCY) == 1


def test_booleans_and_other_options() -> None:
    url = parse_srt_url("srt://h:1?tlpktdrop=0&nakreport=1&maxbw=1000000&pkt_size=1316&transtype=live&minversion=0x010300")
    assert url.option(SockOpt.TLPKTDROP) is False
    assert url.option(SockOpt.NAKREPORT) is True
    assert url.option(SockOpt.MAXBW) == 1_000_000
    assert url.option(SockOpt.PAYLOADSIZE) == 1316
    assert url.option(SockOpt.TRANSTYPE) == 0
    assert url.option(SockOpt.MINVERSION) == 0x010300


def test_ipv6_host() -> None:
    url = parse_srt_url("srt://[::1]:9000?latency=1000")
    assert (url.host, url.port) == ("::1", 9000)


@pytest.mark.parametrize("mode", ["listener", "rendezvous", "bogus"])
def test_only_caller_mode(mode: str) -> None:
    with pytest.raises(SrtUrlError, match="mode=caller only"):
        parse_srt_url(f"srt://h:1?mode={mode}")


@pytest.mark.parametrize(("url", "message"), [
    ("rtmp://h:1/app", "not an srt://"),
    ("srt://h", "no port"),
    ("srt://:9000", "no host"),
    ("srt://h:99999", "bad port"),
    ("srt://h:1?latency=abc", "latency: not an integer"),
    ("srt://h:1?passphrase=short", "10 to 79"),
    ("srt://h:1?pbkeylen=20", "key length"),
    ("srt://h:1?pkt_size=1500", "at most 1456"),
    ("srt://h:1?transtype=bulk", "live or file"),
])
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(SrtUrlError, match=message):
        parse_srt_url(url)


def test_unknown_keys_are_ignored_with_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kiln.media.net.srt.url"):
        url = parse_srt_url("srt://h:1?latancy=1000&passphrase=0123456789")
    assert url.options and url.option(SockOpt.LATENCY) is None
    assert "key=latancy" in caplog.text and "0123456789" not in caplog.text


def test_zero_timeout_means_no_limit_as_in_ffmpeg() -> None:
    assert parse_srt_url("srt://h:1?timeout=0").io_timeout_ms is None
    assert parse_srt_url("srt://h:1?timeout=10").io_timeout_ms == 1
