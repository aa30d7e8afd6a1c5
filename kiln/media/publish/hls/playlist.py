"""HLS v3 playlist texts (media-spec §1.2): a master of muxed A/V variants and a media playlist per variant.

Names follow OME: ``medialist_<variant>_hls.m3u8`` lists ``seg_<variant>_<n>_hls.ts``. A variant is one
video and/or one audio track muxed together (EnableTsPackaging), named from their track ids
(``v0a1``, ``v0``, ``a1``) so the same pair keeps its name in every playlist that uses it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from kiln.media.model import Track
from kiln.media.publish.hls.segmenter import TsSegment


@dataclass(frozen=True)
class TsVariant:
    video: Track | None
    audio: Track | None

    @property
    def name(self) -> str:
        return (f"v{self.video.id}" if self.video else "") + (f"a{self.audio.id}" if self.audio else "")

    @property
    def tracks(self) -> list[Track]:
        return [t for t in (self.video, self.audio) if t is not None]


@dataclass(frozen=True)
class VariantInfo:
    variant: TsVariant
    bandwidth: int
    framerate: float


def medialist_name(variant: TsVariant) -> str:
    return f"medialist_{variant.name}_hls.m3u8"


def segment_name(variant: TsVariant, number: int) -> str:
    return f"seg_{variant.name}_{number}_hls.ts"


def _q(query: str) -> str:
    return f"?{query}" if query else ""


def render_master(variants: Sequence[VariantInfo], query: str, prefix: str) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:3"]
    for info in variants:
        v = info.variant
        codecs = ",".join(t.codec_string for t in v.tracks if t.codec_string)
        attrs = [f"BANDWIDTH={info.bandwidth or 1000000}"]
        if v.video is not None:
            attrs.append(f"RESOLUTION={v.video.width}x{v.video.height}")
            attrs.append(f"FRAME-RATE={info.framerate or 30.0:.3f}")
        if codecs:
            attrs.append(f'CODECS="{codecs}"')
        lines.append("#EXT-X-STREAM-INF:" + ",".join(attrs))
        lines.append(f"{prefix}{medialist_name(v)}{_q(query)}")
    return "\n".join(lines) + "\n"


def render_media(variant: TsVariant, segments: Sequence[TsSegment], target_duration: float, query: str,
                 ended: bool) -> str:
    """The media playlist: the listed segments, oldest first; ENDLIST once the stream ended."""
    longest = max((s.duration for s in segments), default=0.0)
    target = max(1, math.ceil(max(longest, target_duration) - 0.001))
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{target}",
             f"#EXT-X-MEDIA-SEQUENCE:{segments[0].number if segments else 0}"]
    for seg in segments:
        lines.append(f"#EXTINF:{seg.duration:.3f},")
        lines.append(f"{segment_name(variant, seg.number)}{_q(query)}")
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"
