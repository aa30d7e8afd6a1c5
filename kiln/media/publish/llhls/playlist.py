"""LL-HLS playlists as OME writes them (media-spec §2.2–2.4): file names, chunklists, masters."""

from __future__ import annotations

import math
from dataclasses import dataclass

from kiln.media.model import MediaKind, Track
from kiln.media.publish.llhls.packager import TrackPackager
from kiln.timefmt import format_time

PARTS_LISTED_SEGMENTS = 3


def media_type(track: Track) -> str:
    return {MediaKind.VIDEO: "video", MediaKind.AUDIO: "audio"}.get(track.kind, "subtitle")


def chunklist_name(track: Track, key: str) -> str:
    return f"chunklist_{track.id}_{media_type(track)}_{key}_llhls.m3u8"


def init_name(track: Track, key: str) -> str:
    return f"init_{track.id}_{media_type(track)}_{key}_llhls.m4s"


def segment_name(track: Track, number: int, key: str) -> str:
    return f"seg_{track.id}_{number}_{media_type(track)}_{key}_llhls.m4s"


def part_name(track: Track, number: int, index: int, key: str) -> str:
    return f"part_{track.id}_{number}_{index}_{media_type(track)}_{key}_llhls.m4s"


def _q(query: str) -> str:
    return f"?{query}" if query else ""


@dataclass(frozen=True)
class ChunklistOptions:
    key: str
    query: str = ""               # appended to every URI (session, _HLS_legacy …)
    legacy: bool = False          # _HLS_legacy=YES: plain HLS
    rewind: bool = True           # _HLS_rewind=YES lists every retained segment
    part_hold_back: float = 0.0   # configured; the real value is at least 3 × the largest part
    target_duration: float = 6.0
    longest_segment: float = 0.0  # s, the longest segment of any track of the stream (one TARGETDURATION for all)
    preload_hint: bool = True
    concluded: bool = False


def render_chunklist(pkg: TrackPackager, opts: ChunklistOptions,
                     reports: list[tuple[str, int, int]] | None = None) -> str:
    """The media playlist of one track; ``reports`` are (uri, last msn, last part) of sibling tracks."""
    track, ts = pkg.track, pkg.timescale
    segments = pkg.listed_segments() if (opts.rewind or opts.concluded) else pkg.live_segments()[-4:]
    if opts.legacy:
        segments = [s for s in segments if s.complete]
    first = segments[0].number if segments else pkg.next_segment_number
    # OME prints round(SegmentDuration); a GOP longer than that makes longer segments, and the HLS spec needs
    # TARGETDURATION >= every EXTINF, so Kiln raises it when that happens, alike in every media playlist of the
    # stream (RFC 8216 6.2.4: the same target duration in every variant; variants of a multiplex channel come
    # from encoders with different GOPs)
    longest = max(pkg.max_segment_duration / ts, opts.longest_segment)
    target = max(1, round(opts.target_duration), math.ceil(longest - 0.001))
    lines = ["#EXTM3U", "#EXT-X-VERSION:6", f"#EXT-X-TARGETDURATION:{target}"]
    part_target = max(pkg.part_target_seconds, pkg.max_part_duration / ts)
    if not opts.legacy:
        hold_back = max(opts.part_hold_back, 3 * part_target)
        lines.append(f"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={hold_back:.6f}")
        lines.append(f"#EXT-X-PART-INF:PART-TARGET={part_target:.6f}")
    lines.append(f"#EXT-X-MEDIA-SEQUENCE:{first}")
    lines.append(f'#EXT-X-MAP:URI="{init_name(track, opts.key)}{_q(opts.query)}"')
    with_parts = {s.number for s in segments[-PARTS_LISTED_SEGMENTS:]}
    for seg in segments:
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{format_time(seg.wall_start)}")
        if not opts.legacy and seg.number in with_parts:
            for part in seg.parts:
                uri = part_name(track, seg.number, part.index, opts.key) + _q(opts.query)
                attrs = f'DURATION={part.duration / ts:.6f},URI="{uri}"'
                if part.independent:
                    attrs += ",INDEPENDENT=YES"
                lines.append(f"#EXT-X-PART:{attrs}")
        if seg.complete:
            lines.append(f"#EXTINF:{seg.duration / ts:.6f},")
            lines.append(f"{segment_name(track, seg.number, opts.key)}{_q(opts.query)}")
    if opts.concluded:
        lines.append("#EXT-X-ENDLIST")
    elif not opts.legacy:
        if opts.preload_hint:
            nxt = next_part(pkg)
            lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{part_name(track, nxt[0], nxt[1], opts.key)}'
                         f'{_q(opts.query)}"')
        for uri, msn, last_part in reports or []:
            lines.append(f'#EXT-X-RENDITION-REPORT:URI="{uri}",LAST-MSN={msn},LAST-PART={last_part}')
    return "\n".join(lines) + "\n"


def next_part(pkg: TrackPackager) -> tuple[int, int]:
    """The (msn, part) that will be produced next: what PRELOAD-HINT announces."""
    return pkg.next_part()


@dataclass(frozen=True)
class Variant:
    """One EXT-X-STREAM-INF of a master playlist."""

    video: Track | None
    audio: Track | None
    audio_group: str = ""
    bandwidth: int = 0
    framerate: float = 0.0


def _quoted(text: str) -> str:
    """A quoted-string attribute value (RFC 8216 4.2): no double quote, CR or LF inside. An AudioMap item is
    configuration text; one that holds them would otherwise end the attribute, or the line, early."""
    return text.replace('"', "'").replace("\r", " ").replace("\n", " ")


def render_master(variants: list[Variant], audio_groups: dict[str, list[Track]], *, key: str, query: str,
                  prefix: str) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:6", "#EXT-X-INDEPENDENT-SEGMENTS"]
    referenced = {v.audio_group for v in variants if v.video is not None and v.audio_group}
    for group, tracks in audio_groups.items():
        if group not in referenced and not (len(tracks) > 1 and any(v.video is None for v in variants)):
            continue
        for i, t in enumerate(tracks):
            lines.append(
                f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="{group}",NAME="{_quoted(t.label or t.name or group)}",'
                f'DEFAULT={"YES" if i == 0 else "NO"},AUTOSELECT=YES,CHANNELS="{t.channels or 2}",'
                + (f'LANGUAGE="{_quoted(t.language)}",' if t.language else "")
                + (f'CHARACTERISTICS="{_quoted(t.characteristics)}",' if t.characteristics else "")
                + f'URI="{prefix}{chunklist_name(t, key)}{_q(query)}"')
    for v in variants:
        main = v.video or v.audio
        if main is None:
            continue
        codecs = ",".join(c for c in ((v.video.codec_string if v.video else ""),
                                      (v.audio.codec_string if v.audio else "")) if c)
        attrs = [f"BANDWIDTH={v.bandwidth or 1000000}"]
        if v.video is not None:
            attrs.append(f"RESOLUTION={v.video.width}x{v.video.height}")
            attrs.append(f"FRAME-RATE={v.framerate or 30.0:.3f}")
        attrs.append(f'CODECS="{codecs}"')
        if v.video is not None and v.audio_group:
            attrs.append(f'AUDIO="{v.audio_group}"')
        lines.append("#EXT-X-STREAM-INF:" + ",".join(attrs))
        lines.append(f"{prefix}{chunklist_name(main, key)}{_q(query)}")
    return "\n".join(lines) + "\n"
