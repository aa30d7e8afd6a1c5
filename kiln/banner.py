"""The few lines ``kiln serve`` logs once it listens: where the token is, what is open, which URLs to use.

A new user reads these first, so they say what is true of this start (a token file generated now
or reused from an earlier start) and give the URL forms that work with these ports, with ``APP``
and ``STREAM`` for the user to fill in. Composed here from plain values; the service logs them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

WILDCARD_HOSTS = ("0.0.0.0", "::", "")
TS_OVER_UDP = ("srt", "mpegts", "srt_playback", "webrtc_ice")  # listeners on UDP ports (the others are TCP)
ORDER = ("api", "api_tls", "rtmp", "srt", "mpegts", "llhls", "llhls_tls", "hls", "thumbnail", "thumbnail_tls",
         "srt_playback", "webrtc", "webrtc_ice")  # ingest before playback


class TokenSource(Enum):
    GENERATED = "generated"    # no token file yet: this start wrote one
    REUSED = "reused"          # the file an earlier start wrote
    CONFIGURED = "configured"  # Server.xml's Managers/API/AccessToken: no file


@dataclass(frozen=True)
class Token:
    source: TokenSource
    path: Path | None = None


@dataclass(frozen=True)
class Banner:
    """What this start opened. ``listeners`` maps a listener's name (``api``, ``api_tls``, ``rtmp``,
    ``srt``, ``mpegts:<port>``, ``llhls``, ``llhls_tls``, ``hls``, ``thumbnail``, ``thumbnail_tls``,
    ``srt_playback``) to the address it is bound to."""

    version: str
    token: Token
    listeners: Mapping[str, tuple[str, int]]
    apps: Sequence[str]  # "vhost/app"
    data_dir: Path

    def lines(self) -> list[str]:
        out = [self._token_line(), "listening " + " ".join(self._listener_fields())]
        if self.apps:
            out.append("applications " + " ".join(self.apps))
        out += [f"publish {name}={url}" for name, url in self._publish_urls()]
        out += [f"play {name}={url}" for name, url in self._play_urls()]
        for name, scheme in (("api", "http"), ("api_tls", "https")):
            if (api := self._url_host(name)) is not None:
                out.append(f"console {scheme}://{_authority(*api)}/console/ (log in with the access token)")
        out.append(f"data dir={self.data_dir.resolve()}")
        return out

    def _token_line(self) -> str:
        if self.token.source is TokenSource.CONFIGURED or self.token.path is None:
            return "api access token configured source=Server.xml (Managers/API/AccessToken)"
        path = self.token.path.resolve()
        return f"api access token {self.token.source.value} file={path} (use: curl -u \"$(cat {path})\" ...)"

    def _listener_fields(self) -> list[str]:
        fields = []
        for name in sorted(self.listeners, key=_rank):
            kind, (host, port) = name.split(":")[0], self.listeners[name]
            fields.append(f"{kind}={_authority(host, port)}{'/udp' if kind in TS_OVER_UDP else ''}")
        return fields

    def _url_host(self, name: str) -> tuple[str, int] | None:
        found = self.listeners.get(name)
        if found is None:
            return None
        host, port = found
        return ("HOST" if host in WILDCARD_HOSTS else host), port

    def _publish_urls(self) -> list[tuple[str, str]]:
        urls = []
        if (rtmp := self._url_host("rtmp")) is not None:
            urls.append(("rtmp", f"rtmp://{_authority(*rtmp)}/APP/STREAM"))
        if (srt := self._url_host("srt")) is not None:
            urls.append(("srt", _srt_url(*srt)))
        for name in sorted(self.listeners, key=_rank):
            if name.startswith("mpegts:") and (udp := self._url_host(name)) is not None:
                urls.append(("mpegts", f"udp://{_authority(*udp)} (stream named by the app's MPEGTS StreamMap)"))
        return urls

    def _play_urls(self) -> list[tuple[str, str]]:
        urls = []
        if (llhls := self._url_host("llhls")) is not None:
            # llhls.m3u8 is the playlist every stream gets (unless CreateDefaultPlaylist is false)
            urls.append(("llhls", f"http://{_authority(*llhls)}/APP/STREAM/llhls.m3u8 "
                                  "(or FILENAME.m3u8 of an OutputProfile Playlist)"))
        if (llhls_tls := self._url_host("llhls_tls")) is not None:
            urls.append(("llhls_tls", f"https://{_authority(*llhls_tls)}/APP/STREAM/llhls.m3u8 (HTTP/2 or HTTP/1.1)"))
        if (hls := self._url_host("hls")) is not None:  # Bind/Publishers/HLS/Port: HLS v3 for apps with <HLS>
            urls.append(("hlsv3", f"http://{_authority(*hls)}/APP/STREAM/ts:playlist.m3u8"))
        if (thumb := self._url_host("thumbnail")) is not None:
            urls.append(("thumbnail", f"http://{_authority(*thumb)}/APP/STREAM/thumb.jpg (needs an Image encode)"))
        if (thumb_tls := self._url_host("thumbnail_tls")) is not None:
            urls.append(("thumbnail_tls", f"https://{_authority(*thumb_tls)}/APP/STREAM/thumb.jpg"))
        if (srt := self._url_host("srt_playback")) is not None:
            urls.append(("srt", _srt_url(*srt) + " (add %2FFILENAME for an OutputProfile Playlist)"))
        if (rtc := self._url_host("webrtc")) is not None:
            urls.append(("webrtc", f"ws://{_authority(*rtc)}/APP/STREAM (OvenPlayer webrtc source; WHEP: "
                                   f"http://{_authority(*rtc)}/APP/STREAM?direction=whep)"))
        return urls


def _rank(name: str) -> tuple[int, str]:
    kind = name.split(":")[0]
    return (ORDER.index(kind) if kind in ORDER else len(ORDER), name)


def _srt_url(host: str, port: int) -> str:
    """OME's form: the streamid is the percent-encoded srt://HOST:PORT/APP/STREAM."""
    authority = _authority(host, port)
    return f"srt://{authority}?streamid=srt%3A%2F%2F{authority.replace(':', '%3A')}%2FAPP%2FSTREAM"


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
