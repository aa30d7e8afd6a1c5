"""What an SRT playback caller asks for: OME's streamid grammar (media-spec §1.2), then which
output stream and which of its tracks (the whole output, or a playlist's first rendition).

OME's SRT publisher takes the same streamid as SRT ingest; the 4th component names a playlist
(``Playlist/FileName``), of which SRT, having no ABR, carries only the first rendition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kiln.media.model import MediaKind, Track
from kiln.media.net.srt.streamid import SrtTarget, StreamIdError, resolve_streamid
from kiln.media.publish.push.select import CARRIABLE

NO_STREAM_MAP: dict[int, str] = {}


class NotPlayable(LookupError):
    """The caller named something Kiln cannot play; the text says what (logged, and why it was refused)."""


def parse_playback_streamid(streamid: str, local_port: int) -> SrtTarget:
    """The caller's target; an empty streamid names nothing (StreamMap is an ingest setting)."""
    if streamid == "":
        raise StreamIdError("empty streamid: a player must name {vhost}/{app}/{stream}[/{playlist}]")
    return resolve_streamid(streamid, local_port=local_port, stream_map=NO_STREAM_MAP)


@dataclass(frozen=True)
class PlaybackTracks:
    tracks: list[Track]
    playlist: str | None


def playback_tracks(tracks: list[Track], playlists: list[dict[str, Any]], playlist: str | None) -> PlaybackTracks:
    """The tracks a caller receives: every carriable audio/video track, or a playlist's first rendition."""
    media = sorted((t for t in tracks if t.kind in (MediaKind.VIDEO, MediaKind.AUDIO)
                    and t.codec in CARRIABLE["srt"]), key=lambda t: t.id)
    if playlist is None:
        if not media:
            raise NotPlayable("the output stream has no track SRT can carry")
        return PlaybackTracks(media, None)
    config = next((p for p in playlists if str(p.get("fileName") or "") == playlist), None)
    if config is None:
        names = sorted(str(p.get("fileName")) for p in playlists if p.get("fileName"))
        raise NotPlayable(f"no playlist {playlist!r} in the output stream (playlists: {', '.join(names) or 'none'})")
    renditions = config.get("renditions") or config.get("rendition") or []
    if isinstance(renditions, dict):
        renditions = [renditions]
    if not isinstance(renditions, list) or not renditions or not isinstance(renditions[0], dict):
        raise NotPlayable(f"playlist {playlist!r} has no rendition")
    first = renditions[0]
    chosen: list[Track] = []
    for kind, key in ((MediaKind.VIDEO, "video"), (MediaKind.AUDIO, "audio")):
        name = str(first.get(key) or "")
        if not name:
            continue
        track = next((t for t in media if t.kind is kind and t.name == name), None)
        if track is None:
            raise NotPlayable(f"playlist {playlist!r}: no {key} track {name!r} SRT can carry")
        chosen.append(track)
    if not chosen:
        raise NotPlayable(f"playlist {playlist!r}: its first rendition names no track")
    return PlaybackTracks(chosen, playlist)
