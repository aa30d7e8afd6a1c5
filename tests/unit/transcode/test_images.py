"""Image encodes (thumbnails): listed in the streams API as OME lists them, validated with OME-style messages,
and fed from keyframes only when nothing else needs every frame."""

from __future__ import annotations

import io
from typing import Any

import av
import pytest

from kiln.config.validate import ConfigError, validate_app_json
from kiln.http.views.stream import stream_json
from kiln.media.model import Codec, Packet
from kiln.media.transcode.codecs import Decoder
from tests.unit.transcode.clip import Clip, make_clip
from tests.unit.transcode.feed import finish, start_live


@pytest.fixture(scope="module")
def clip() -> Clip:
    return make_clip(640, 360, seconds=2.0)  # a keyframe every second (30 frames at 30 fps)


def thumbs_profile(*images: dict[str, Any], videos: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"name": "thumbs", "outputStreamName": "${OriginStreamName}", "encodes": {
        "videos": videos if videos is not None else [{"name": "bypass_video", "bypass": "true"}],
        "audios": [{"name": "bypass_audio", "bypass": "true"}],
        "images": list(images)}}


def record_decodes(decoder: Decoder) -> list[Packet]:
    """Wrap ``decoder.decode`` to remember every packet it is given."""
    seen: list[Packet] = []
    decode = decoder.decode

    def recording(packet: Packet) -> list[av.frame.Frame]:
        seen.append(packet)
        return decode(packet)

    decoder.decode = recording  # type: ignore[method-assign]
    return seen


# --- the streams API -------------------------------------------------------------------------
def test_image_encodes_are_listed_as_video_tracks_with_their_configured_values(clip: Clip) -> None:
    live, subs = start_live([clip.video, clip.audio], [thumbs_profile(
        {"name": "thumb", "codec": "jpeg", "width": "320", "height": "180", "framerate": "1"},
        {"codec": "png", "width": "128"},
        {"codec": "gif", "width": "64"})])
    for packet in clip.packets:
        live.ingest(packet)
    finish(live, subs)
    tracks = stream_json(live.snapshot())["outputs"][0]["tracks"]
    assert [(t["id"], t["type"]) for t in tracks] == [(0, "Video"), (1, "Audio"), (2, "Video"), (3, "Video"),
                                                      (4, "Video"), (5, "Data")]
    jpeg, png, gif = tracks[2], tracks[3], tracks[4]
    assert jpeg["name"] == "thumb" and "name" not in png
    assert (jpeg["video"]["codec"], jpeg["video"]["bypass"]) == ("JPEG", False)
    assert (jpeg["video"]["width"], jpeg["video"]["height"]) == (320, 180)
    assert jpeg["video"]["framerateConf"] == 1.0 and jpeg["video"]["framerate"] == 1.0
    assert (png["video"]["codec"], png["video"]["width"], png["video"]["height"]) == ("PNG", 128, 72)
    assert png["video"]["framerateConf"] == 1.0  # the default image rate
    assert "unavailable" not in jpeg and "unavailable" not in png
    assert jpeg["video"]["bitrateAvg"] > 0  # measured from the stills really made
    assert "gif" in gif["unavailable"] and gif["video"]["codec"] == "None" and gif["video"]["width"] == 64
    out = live.outputs["cam"]
    # publishers never carry the images: they are served as stills
    assert [t.codec for t in out.track_list()] == [Codec.H264, Codec.AAC, Codec.ID3]
    assert set(out.hub.tracks) == {0, 1}
    still = out.images[Codec.JPEG].still
    assert still is not None
    with av.open(io.BytesIO(still.data)) as container:
        frame = next(container.decode(video=0))
    assert (frame.width, frame.height) == (320, 180)
    live.end("test over")


# --- keyframes only --------------------------------------------------------------------------
def test_a_thumbnail_only_track_decodes_keyframes_only(clip: Clip) -> None:
    live, subs = start_live([clip.video, clip.audio], [thumbs_profile({"codec": "jpeg", "framerate": "1"})])
    worker = live.transcoder.workers[0]
    seen = record_decodes(worker.decoder)
    for packet in clip.packets:
        live.ingest(packet)
    got = finish(live, subs)["cam"]
    keys = [p for p in clip.packets if p.track_id == 0 and p.keyframe]
    assert len(keys) == 2
    assert [p.pts for p in seen] == [p.pts for p in keys]  # non-key packets never reach the decoder
    assert worker.non_key_skipped == 58
    holder = live.outputs["cam"].images[Codec.JPEG]
    assert holder.still is not None and holder.still.sequence == 2  # one image a second, each from a keyframe
    assert len(got[0]) == 60  # the bypass still gets every frame
    assert 1 not in live.transcoder.workers  # bypassed audio is not decoded at all
    live.end("test over")


def test_keyframes_too_sparse_for_the_image_rate_decode_every_frame(clip: Clip) -> None:
    live, subs = start_live([clip.video, clip.audio], [thumbs_profile({"codec": "jpeg", "framerate": "4"})])
    worker = live.transcoder.workers[0]
    seen = record_decodes(worker.decoder)
    for packet in clip.packets:
        live.ingest(packet)
    finish(live, subs)
    # a keyframe a second cannot give 4 images a second: from the second keyframe on, every frame is decoded
    video = [p for p in clip.packets if p.track_id == 0]
    assert [p.pts for p in seen] == [video[0].pts] + [p.pts for p in video[30:]]
    assert not worker.keyframes_only
    assert live.outputs["cam"].images[Codec.JPEG].still.sequence == 5  # t=0, then 1.0, 1.25, 1.5, 1.75
    live.end("test over")


def test_an_image_next_to_a_video_encode_shares_the_full_decode(clip: Clip) -> None:
    videos = [{"name": "v", "codec": "h264", "height": "90", "bitrate": "100K"}]
    live, subs = start_live([clip.video, clip.audio], [thumbs_profile({"codec": "webp"}, videos=videos)])
    worker = live.transcoder.workers[0]
    seen = record_decodes(worker.decoder)
    for packet in clip.packets:
        live.ingest(packet)
    got = finish(live, subs)["cam"]
    assert len(seen) == 60 and worker.non_key_skipped == 0 and not worker.keyframes_only
    assert len(got[0]) == 60
    assert live.outputs["cam"].images[Codec.WEBP].still is not None
    live.end("test over")


# --- validation ------------------------------------------------------------------------------
def app_with_images(*images: dict[str, Any]) -> dict[str, Any]:
    return {"name": "app", "type": "live", "outputProfiles": {"outputProfile": [{
        "name": "p", "outputStreamName": "${OriginStreamName}",
        "encodes": {"videos": [{"name": "bypass_video", "bypass": True}], "images": list(images)}}]}}


def message(*images: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        validate_app_json(app_with_images(*images))
    return str(info.value)


@pytest.mark.parametrize("image", [
    {"codec": "jpeg", "width": "320", "height": "180", "framerate": "1"},
    {"name": "t", "codec": "PNG", "width": 128, "framerate": 0.5},
    {"codec": "webp", "skipFrames": "29"},
    {"codec": "jpeg", "width": "", "framerate": None},
])
def test_valid_image_encodes_pass(image: dict[str, Any]) -> None:
    validate_app_json(app_with_images(image))


@pytest.mark.parametrize(("image", "text"), [
    ({"width": "320"}, "Codec must be specified for an image encode"),
    ({"codec": " "}, "Codec must be specified for an image encode"),
    ({"codec": "gif"}, "Codec must be jpeg, png or webp for an image encode: gif"),
    ({"codec": "h264"}, "Codec must be jpeg, png or webp for an image encode: h264"),
    ({"codec": "jpeg", "width": "wide"}, "Width must be a number: wide"),
    ({"codec": "jpeg", "height": True}, "Height must be a number: True"),
    ({"codec": "jpeg", "height": "-90"}, "Height must be 0 or greater: -90"),
    ({"codec": "png", "framerate": "fast"}, "Framerate must be a number: fast"),
    ({"codec": "png", "framerate": -1}, "Framerate must be 0 or greater: -1"),
    ({"codec": "webp", "skipFrames": "121"}, "SkipFrames must be between 0 and 120"),
    ({"codec": "webp", "skipFrames": "x"}, "SkipFrames must be between 0 and 120"),
    ({"codec": "jpeg", "quality": "9"}, "Unknown item found: application.outputProfiles.outputProfile.encodes.images"
                                        ".quality"),
])
def test_invalid_image_encodes_get_ome_style_messages(image: dict[str, Any], text: str) -> None:
    assert message(image) == text


def test_the_first_invalid_image_is_the_one_reported() -> None:
    assert message({"codec": "jpeg"}, {"codec": "bmp"}, {"codec": "png", "width": "x"}) == (
        "Codec must be jpeg, png or webp for an image encode: bmp")


def test_the_api_rejects_an_invalid_image_encode_with_a_config_error() -> None:
    from kiln.domain.app_config import valid_app
    from kiln.domain.errors import ConfigInvalid
    from kiln.http.errors import api_error

    with pytest.raises(ConfigInvalid) as info:
        valid_app(app_with_images({"codec": "jpeg", "framerate": "often"}))
    error = api_error(info.value)
    assert error.status == 400 and "Framerate must be a number: often" in error.message

