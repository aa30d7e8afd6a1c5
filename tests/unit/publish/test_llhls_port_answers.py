"""What the LL-HLS port answers for files it does not serve (issue 20 item 7), and that real LL-HLS files keep
OME's session rule: ``thumb.jpg`` and ``ts:playlist.m3u8`` are 404s that say where to go, not ``401 session
is required``; names in the path are percent-decoded once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import httpx
import pytest

from kiln.media.publish.llhls.claims import Claim, claim_of
from kiln.media.publish.llhls.publisher import LlhlsPublisher, settings_from
from kiln.media.publish.llhls.server import LlhlsServer
from kiln.media.publish.llhls.stream import LlhlsStream
from kiln.media.stream.hub import StreamHub
from kiln.media.stream.live import LiveStream, OutputStream

APPS: dict[str, dict[str, Any]] = {
    "app": {"name": "app", "publishers": {"llhls": {}}},
    "both": {"name": "both", "publishers": {"llhls": {}, "thumbnail": {}, "hls": {}}},
    "thumbs_only": {"name": "thumbs_only", "publishers": {"thumbnail": {}}},
}
STREAM = "caméra 1"
ENCODED = "cam%C3%A9ra%201"
NOT_LLHLS = ("is not an LL-HLS file: this port serves <playlist>.m3u8, chunklist_*_llhls.m3u8 and "
             "init_/seg_/part_*_llhls.m4s")


class Hosts:
    """One vhost, ``default``, matching every host but ``nowhere.test``."""

    def app_for_host(self, host: str, app: str) -> tuple[str, dict[str, Any] | None] | None:
        if host.startswith("nowhere.test"):
            return None
        return "default", APPS.get(app)


class NoPendingStreams:
    def in_app(self, vhost: str, app: str) -> Iterable[LiveStream]:
        return ()


class Bytes:
    def __init__(self) -> None:
        self.total = 0

    def bytes_out(self, vhost: str, app: str, stream: str, n: int) -> None:
        self.total += n


def _get(paths: list[tuple[str, str]], thumbnail_port: int | None = 3335) -> list[httpx.Response]:
    """Each (method, path) asked of an LL-HLS server whose app ``app`` has the published stream ``caméra 1``."""

    async def run() -> list[httpx.Response]:
        publisher = LlhlsPublisher(stats=None)
        live = LiveStream("default", "app", STREAM, source_type="Rtmp", source_url="", profiles=[])
        output = OutputStream(STREAM, {}, [], StreamHub(f"default/app/{STREAM}"))
        publisher.streams[("default", "app", STREAM)] = LlhlsStream(asyncio.get_running_loop(), live, output,
                                                                    settings_from({}))
        server = LlhlsServer(publisher, Hosts(), NoPendingStreams(), Bytes(), thumbnail_port=thumbnail_port)
        transport = httpx.ASGITransport(app=server.starlette)
        async with httpx.AsyncClient(transport=transport, base_url="http://kiln.test:3333") as client:
            return [await client.request(method, path) for method, path in paths]

    return asyncio.run(run())


def _one(path: str, method: str = "GET", thumbnail_port: int | None = 3335) -> httpx.Response:
    return _get([(method, path)], thumbnail_port)[0]


# -- which publisher claims a file name (media-spec §2.2) --

@pytest.mark.parametrize(("file_name", "query", "claim"), [
    ("llhls.m3u8", {}, Claim.LLHLS),
    ("master.m3u8", {}, Claim.LLHLS),
    ("chunklist_0_video_AbC12345_llhls.m3u8", {}, Claim.LLHLS),
    ("init_0_video_AbC12345_llhls.m4s", {}, Claim.LLHLS),
    ("seg_1_12_audio_AbC12345_llhls.m4s", {}, Claim.LLHLS),
    ("part_1_12_3_audio_AbC12345_llhls.m4s", {}, Claim.LLHLS),
    ("ts:playlist.m3u8", {}, Claim.HLS_V3),
    ("playlist.m3u8", {"format": ["ts"]}, Claim.HLS_V3),
    ("medialist_video_hls.m3u8", {}, Claim.HLS_V3),
    ("seg_video_3_hls.ts", {}, Claim.HLS_V3),
    ("thumb.jpg", {}, Claim.THUMBNAIL),
    ("thumb.png", {}, Claim.THUMBNAIL),
    ("thumb.webp", {}, Claim.THUMBNAIL),
    ("thumb.gif", {}, Claim.NONE),
    ("nothing.m4s", {}, Claim.NONE),
    ("index.html", {}, Claim.NONE),
    ("a b.m3u8", {}, Claim.NONE),
])
def test_claims_follow_omes_file_name_patterns(file_name: str, query: dict[str, list[str]], claim: Claim) -> None:
    assert claim_of(file_name, query) is claim


# -- answers --

def test_thumbnail_asked_of_the_llhls_port_names_the_thumbnail_port() -> None:
    r = _one(f"/app/{ENCODED}/thumb.jpg")
    assert (r.status_code, r.headers["content-type"]) == (404, "text/plain; charset=utf-8")
    assert r.text == ("thumbnails are served on port 3335, not on the LL-HLS port; "
                      "the Thumbnail publisher is not enabled for this application [default/app]")
    assert _one("/both/s/thumb.png").text == "thumbnails are served on port 3335, not on the LL-HLS port"
    assert _one("/thumbs_only/s/thumb.webp").text == "thumbnails are served on port 3335, not on the LL-HLS port"
    assert _one("/both/s/thumb.jpg", thumbnail_port=None).text == (
        "thumbnails are not served: Server.xml binds no Thumbnail port (Bind/Publishers/Thumbnail/Port)")
    head = _one(f"/app/{ENCODED}/thumb.jpg", method="HEAD")
    assert head.status_code == 404


@pytest.mark.parametrize("path", [f"/app/{ENCODED}/ts:playlist.m3u8", f"/app/{ENCODED}/playlist.m3u8?format=ts",
                                  f"/app/{ENCODED}/medialist_video_hls.m3u8", f"/app/{ENCODED}/seg_v_1_hls.ts"])
def test_hls_v3_asked_of_the_llhls_port_says_it_is_not_enabled(path: str) -> None:
    r = _one(path)
    assert r.status_code == 404
    assert r.text == ("HLS v3 (ts:) is not enabled for this application [default/app]; "
                      "play LL-HLS instead: /app/caméra 1/llhls.m3u8")


def test_hls_v3_enabled_in_the_app_is_still_not_served_and_says_so() -> None:
    r = _one("/both/s/ts:playlist.m3u8")
    assert r.status_code == 404
    assert r.text == "HLS v3 (ts:) is not implemented by Kiln; play LL-HLS instead: /both/s/llhls.m3u8"


def test_unknown_files_are_404_with_a_reason_even_for_a_live_stream() -> None:
    for file_name in ("nothing.m4s", "index.html", "thumb.gif"):
        r = _one(f"/app/{ENCODED}/{file_name}")
        assert (r.status_code, r.text) == (404, f"'{file_name}' {NOT_LLHLS}"), file_name
    short = _one("/app/llhls.m3u8")
    assert (short.status_code, short.text) == (404, "LL-HLS URLs are /<app>/<stream>/<file>")


def test_llhls_files_of_an_app_that_cannot_serve_them_say_why() -> None:
    r = _one("/thumbs_only/s/llhls.m3u8")
    assert (r.status_code, r.text) == (404, "LL-HLS is not enabled for this application [default/thumbs_only]")
    r = _one("/nope/s/llhls.m3u8")
    assert (r.status_code, r.text) == (404, "Could not find the application: [default/nope]")

    async def other_host() -> httpx.Response:
        server = LlhlsServer(LlhlsPublisher(stats=None), Hosts(), NoPendingStreams(), Bytes())
        transport = httpx.ASGITransport(app=server.starlette)
        async with httpx.AsyncClient(transport=transport, base_url="http://nowhere.test") as client:
            return await client.get("/app/s/llhls.m3u8")

    r = asyncio.run(other_host())
    assert (r.status_code, r.text) == (404, "no virtual host matches the host [nowhere.test]")


def test_real_llhls_files_keep_omes_session_rule_on_the_decoded_stream_name() -> None:
    chunklist, init = "chunklist_0_video_AbC12345_llhls.m3u8", "init_0_video_AbC12345_llhls.m4s"
    answers = _get([("GET", f"/app/{ENCODED}/{chunklist}"), ("GET", f"/app/{ENCODED}/{init}"),
                    ("GET", f"/app/{ENCODED}/{init}?session=nonsense"),
                    ("GET", f"/app/cam%C3%A9ra%202/{chunklist}"),        # no such stream
                    ("GET", f"/app/cam%25C3%25A9ra%201/{chunklist}"),    # decoded once: "cam%C3%A9ra 1"
                    ("GET", "/app/nope/llhls.m3u8")])
    assert [(r.status_code, r.content) for r in answers] == [
        (401, b"session is required"), (401, b"session is required"), (401, b"session is required"),
        (404, b""), (404, b""), (404, b"")]


def test_preflight_is_unchanged() -> None:
    r = _one("/app/s/thumb.jpg", method="OPTIONS")
    assert r.status_code == 200 and r.headers["access-control-allow-private-network"] == "true"
