"""Which output-stream tracks a push carries (rest-spec §9.5, seed 000/001).

With ``trackIds``/``variantNames`` a track is a candidate when its id or its variant name is
listed. With neither: RTMP takes the first video and the first audio track by id (the seed's
rule; OME's code offers them all and fails on a second video), SRT and MPEG-TS take every track.
Then each protocol drops what its container cannot carry, and says what it dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiln.media.model import Codec, MediaKind, Track

CARRIABLE = {
    "rtmp": {Codec.H264, Codec.AAC},
    "srt": {Codec.H264, Codec.H265, Codec.VP8, Codec.VP9, Codec.AAC, Codec.MP3, Codec.OPUS},
    "mpegts": {Codec.H264, Codec.H265, Codec.VP8, Codec.VP9, Codec.AAC, Codec.MP3, Codec.OPUS},
}


@dataclass(frozen=True)
class Selection:
    tracks: list[Track]
    skipped: list[str]
    unmatched: str = ""  # the selection, when it names no track of the stream

    @property
    def reason(self) -> str:
        if self.tracks:
            return ""
        if self.unmatched:
            return self.unmatched
        detail = f" ({'; '.join(self.skipped)})" if self.skipped else ""
        return "no track of the output stream can be carried by this protocol" + detail


def _describe_tracks(media: list[Track]) -> str:
    if not media:
        return "the output stream has no audio or video track"
    return "the output stream has " + ", ".join(
        f"track {t.id} ({t.name or t.kind.value}, {t.codec.value})" for t in media)


def _unmatched(media: list[Track], variant_names: list[str], track_ids: list[int]) -> str:
    asked = [f"variantNames {variant_names}"] if variant_names else []
    asked += [f"trackIds {track_ids}"] if track_ids else []
    return f"no track matches {' or '.join(asked)}: {_describe_tracks(media)}"


def select_tracks(tracks: list[Track], protocol: str, variant_names: list[str], track_ids: list[int]) -> Selection:
    media = sorted((t for t in tracks if t.kind in (MediaKind.VIDEO, MediaKind.AUDIO)), key=lambda t: t.id)
    if variant_names or track_ids:
        chosen = [t for t in media if t.id in track_ids or (t.name and t.name in variant_names)]
        if not chosen:
            return Selection([], [], _unmatched(media, variant_names, track_ids))
    elif protocol == "rtmp":
        # per kind the first carriable track; else the first one, so the skip below names it (a VP8-only
        # WebRTC input pushed to RTMP says its video cannot go instead of silently pushing audio alone)
        chosen = [t for kind in (MediaKind.VIDEO, MediaKind.AUDIO)
                  for t in [next((m for m in media if m.kind is kind and m.codec in CARRIABLE["rtmp"]),
                                 next((m for m in media if m.kind is kind), None))]
                  if t is not None]
    else:
        chosen = media
    allowed = CARRIABLE[protocol]
    kept = [t for t in chosen if t.codec in allowed]
    skipped = [f"track {t.id} ({t.name or t.kind.value}) is {t.codec.value}, which {protocol} cannot carry"
               for t in chosen if t.codec not in allowed]
    if protocol == "rtmp":  # FLV carries one video and one audio track
        video = [t for t in kept if t.kind is MediaKind.VIDEO]
        audio = [t for t in kept if t.kind is MediaKind.AUDIO]
        skipped += [f"track {t.id} ({t.name or t.kind.value}) skipped: FLV carries one video track" for t in video[1:]]
        skipped += [f"track {t.id} ({t.name or t.kind.value}) skipped: FLV carries one audio track" for t in audio[1:]]
        kept = video[:1] + audio[:1]
    return Selection(kept, skipped)
