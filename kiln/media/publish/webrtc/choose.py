"""Which tracks of an output stream a WebRTC viewer gets, and why a track is left out (pure).

Browsers take H.264 (pre-encoded, packetized as is: never decoded), VP8 and Opus. A track WebRTC
cannot carry is left out of the offer and the reason is logged; video with B-frames is never
passed through (Chromium decodes 16 of 240 frames of it, with a PLI storm): another H.264/VP8
track of the same output without B-frames is used when there is one, otherwise the viewer is told.
A playlist (``/app/stream/<FileName>``) offers its renditions; without one OME's
``webrtc_default`` is the first playable video and the first Opus audio.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kiln.media.model import Codec, MediaKind, Track
from kiln.media.stream.groups import named_track

VIDEO_CODECS = (Codec.H264, Codec.VP8)
AUDIO_CODECS = (Codec.OPUS,)
DEFAULT_PLAYLIST = "webrtc_default"
BFRAMES = ("video track {name!r} has B-frames, which browsers do not play over WebRTC; add an H.264 encode "
           "with <BFrames>0</BFrames> to the output profile (or publish with -bf 0 / -tune zerolatency)")
AS_IT_COMES = "this stream is served as it comes (a relay or a dynamic app's stream: no output profile runs on it here)"
BFRAMES_AS_IT_COMES = ("video track {name!r} has B-frames, which browsers do not play over WebRTC; " + AS_IT_COMES +
                       ", so its source must send none (publish with -bf 0 / -tune zerolatency, or an H.264 encode "
                       "with <BFrames>0</BFrames> in the origin's output profile)")


class NotPlayable(LookupError):
    """Nothing this viewer can be sent; the text says why (logged and sent in the signalling error)."""


@dataclass(frozen=True)
class Rendition:
    name: str
    video: Track | None
    audio: Track | None

    @property
    def tracks(self) -> list[Track]:
        return [t for t in (self.video, self.audio) if t is not None]


@dataclass(frozen=True)
class Choice:
    """The renditions a viewer may switch between (the first is where it starts) and what was left out."""

    renditions: tuple[Rendition, ...]
    auto: bool = False
    left_out: tuple[str, ...] = field(default=())


def _playable_video(track: Track, has_bframes: Callable[[Track], bool], as_it_comes: bool = False) -> str | None:
    """None when the track can be sent, else why not (``as_it_comes``: no profile can fix it here, the source can)."""
    if track.codec not in VIDEO_CODECS:
        return f"video track {track.name or track.id!r} is {track.codec.value}, which Kiln does not send over WebRTC"
    if has_bframes(track):
        return (BFRAMES_AS_IT_COMES if as_it_comes else BFRAMES).format(name=track.name or str(track.id))
    return None


def video_warning(tracks: list[Track], has_bframes: Callable[[Track], bool], as_it_comes: bool = False) -> str | None:
    """Why WebRTC viewers of these tracks get no video (e.g. B-frames and no encode without them), or None
    when one video track can be sent or there is no video at all. Shown in the stream's JSON."""
    reasons = []
    for track in tracks:
        if track.kind is MediaKind.VIDEO:
            why = _playable_video(track, has_bframes, as_it_comes)
            if why is None:
                return None
            reasons.append(why)
    return "WebRTC viewers get no video: " + "; ".join(reasons) if reasons else None


def _playable_audio(track: Track, as_it_comes: bool = False) -> str | None:
    """None when the track can be sent, else why not and what an operator can do: an output made by a profile
    can get an Opus encode; a stream served as it comes (a relay, any stream of a dynamic app: no profile of this
    app applies, as in OME, which only logs "Ignore unsupported codec") needs Opus from its source."""
    if track.codec in AUDIO_CODECS:
        return None
    head = f"audio track {track.name or track.id!r} is {track.codec.value}; WebRTC carries Opus "
    if as_it_comes:
        return head + "and " + AS_IT_COMES + ", so its source must send Opus (e.g. an Opus encode in the origin's " \
            "output profile)"
    return head + "(add an Opus encode to the output profile)"


def choose(tracks: list[Track], playlists: list[dict[str, Any]], playlist: str | None,
           has_bframes: Callable[[Track], bool], create_default: bool = True, as_it_comes: bool = False) -> Choice:
    """The viewer's renditions, or NotPlayable saying why there is none. ``create_default`` is the app's
    ``Publishers/WebRTC/CreateDefaultPlaylist`` (OME: false, no playlist is made for a URL that names none);
    ``as_it_comes``: the output is the input itself (a relay or a dynamic app's stream), which no profile encodes."""
    left_out: list[str] = []
    videos, audios = [], []
    for track in tracks:
        if track.kind is MediaKind.VIDEO:
            why = _playable_video(track, has_bframes, as_it_comes)
            (left_out.append(why) if why else videos.append(track))
        elif track.kind is MediaKind.AUDIO:
            why = _playable_audio(track, as_it_comes)
            (left_out.append(why) if why else audios.append(track))
    if playlist is None or playlist == DEFAULT_PLAYLIST:
        config = next((p for p in playlists if str(p.get("fileName") or "") == DEFAULT_PLAYLIST), None)
        if config is None:
            if not create_default:
                raise NotPlayable(f"no default playlist: Publishers/WebRTC/CreateDefaultPlaylist is false and no "
                                  f"playlist's FileName is {DEFAULT_PLAYLIST}; name a playlist in the URL")
            if not videos and not audios:
                raise NotPlayable("; ".join(left_out) or "the output stream has no audio or video track")
            return Choice((Rendition(DEFAULT_PLAYLIST, videos[0] if videos else None,
                                     audios[0] if audios else None),), False, tuple(left_out))
    else:
        config = next((p for p in playlists if str(p.get("fileName") or "") == playlist), None)
        if config is None:
            names = sorted(str(p.get("fileName")) for p in playlists if p.get("fileName"))
            listed = ", ".join(names) or "none"
            raise NotPlayable(f"no playlist {playlist!r} in the output stream (playlists: {listed})")
    return _from_playlist(config, videos, audios, left_out, tracks)


def _from_playlist(config: dict[str, Any], videos: list[Track], audios: list[Track], left_out: list[str],
                   every: list[Track]) -> Choice:
    raw = config.get("renditions") or config.get("rendition") or []
    raw = [raw] if isinstance(raw, dict) else raw
    renditions: list[Rendition] = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        name = str(item.get("name") or "")
        video_name, audio_name = str(item.get("video") or ""), str(item.get("audio") or "")
        video = named_track(videos, video_name, item.get("videoIndexHint")) if video_name else None  # a layer
        audio = named_track(audios, audio_name, item.get("audioIndexHint")) if audio_name else None
        if video_name and video is None:
            if any(t.name == video_name for t in every):
                left_out.append(f"rendition {name!r}: its video is left out")
            else:
                left_out.append(f"rendition {name!r}: no video track {video_name!r}")
        if audio_name and audio is None and audios:
            audio = audios[0]  # OME's sample pairs AAC for LL-HLS; WebRTC takes the output's Opus instead
        if video is None and audio is None:
            continue
        renditions.append(Rendition(name, video, audio))
    if not renditions:
        raise NotPlayable(f"playlist {config.get('fileName')!r} has no rendition WebRTC can play"
                          + (f": {'; '.join(left_out)}" if left_out else ""))
    options = config.get("options") if isinstance(config.get("options"), dict) else {}
    auto = str((options or {}).get("webRtcAutoAbr", (options or {}).get("webrtcAutoAbr", "false"))).lower() == "true"
    return Choice(tuple(renditions), auto, tuple(left_out))


def rendition_json(rendition: Rendition) -> dict[str, Any]:
    """A rendition as OvenPlayer reads the ``playlist`` notification (quality levels)."""
    out: dict[str, Any] = {"name": rendition.name}
    if rendition.video is not None:
        v = rendition.video
        out["video_track"] = {"id": v.id, "name": v.name, "video": {
            "codec": v.codec.value, "bitrate": v.bitrate_conf, "width": v.width, "height": v.height,
            "framerate": v.framerate_conf}}
    if rendition.audio is not None:
        a = rendition.audio
        out["audio_track"] = {"id": a.id, "name": a.name, "bitrate": a.bitrate_conf, "audio": {
            "codec": a.codec.value, "bitrate": a.bitrate_conf, "samplerate": a.sample_rate, "channel": a.channels}}
    return out
