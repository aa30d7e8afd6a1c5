"""AudioMap (OME's ``Providers.SRT/MPEGTS.AudioMap``, a scheduled channel's ``audioMap``): items label the input's
audio tracks by order; with a map every audio track reaches the outputs (a bypass or an encode per track, labels
kept), without one only the first does; the LL-HLS master writes one EXT-X-MEDIA per track with the labels."""

from __future__ import annotations

from fractions import Fraction

from kiln.config.values import AudioLabel, audio_labels
from kiln.domain.settings import AppSettings
from kiln.media.model import Codec, MediaKind, Packet, Track
from kiln.media.publish.llhls.playlist import Variant, render_master
from kiln.media.stream.hub import CallbackSubscriber
from kiln.media.stream.live import LiveStream

TB = Fraction(1, 90000)
BYPASS = {"outputStreamName": "${OriginStreamName}",
          "encodes": {"videos": [{"name": "v", "bypass": True}], "audios": [{"name": "a", "bypass": True}]}}
ENGLISH = AudioLabel("English", "en", "public.accessibility.describes-video")
KOREAN = AudioLabel("Korean", "ko")


def _audio(track_id: int) -> Track:
    return Track(track_id, MediaKind.AUDIO, Codec.AAC, Fraction(1, 48000), config=b"\x11\x90", sample_rate=48000,
                 channels=2, codec_string="mp4a.40.2")


def _stream(audio_map: tuple[AudioLabel, ...], audio_tracks: int = 2) -> LiveStream:
    stream = LiveStream("default", "app", "s", source_type="SRT", source_url="", profiles=[BYPASS],
                        audio_map=audio_map)
    stream.expected = {MediaKind.VIDEO, MediaKind.AUDIO}
    stream.expected_audio_tracks = audio_tracks  # what the TS PMT announced
    stream.on_track(Track(0, MediaKind.VIDEO, Codec.H264, TB, width=320, height=180))
    for i in range(audio_tracks):
        stream.on_track(_audio(1 + i))
    return stream


def test_items_label_the_audio_tracks_by_order_and_each_goes_to_its_own_output_track() -> None:
    stream = _stream((ENGLISH, KOREAN))
    assert stream.started
    audios = [t for t in stream.outputs["s"].track_list() if t.kind is MediaKind.AUDIO]
    assert [(t.name, t.label, t.language, t.characteristics) for t in audios] == [
        ("a", "English", "en", "public.accessibility.describes-video"), ("a", "Korean", "ko", "")]
    seen: list[int] = []
    stream.outputs["s"].hub.subscribe(CallbackSubscriber("test", lambda p: seen.append(p.track_id)),
                                      from_keyframe=False)
    stream.ingest(Packet(2, 0, 0, Fraction(1, 48000), b"k"))
    stream.ingest(Packet(1, 0, 0, Fraction(1, 48000), b"e"))
    assert seen == [audios[1].id, audios[0].id]
    stream.end("test over")


def test_the_stream_waits_for_every_announced_audio_track_before_it_starts() -> None:
    stream = LiveStream("default", "app", "s", source_type="SRT", source_url="", profiles=[BYPASS],
                        audio_map=(ENGLISH, KOREAN))
    stream.expected = {MediaKind.VIDEO, MediaKind.AUDIO}
    stream.expected_audio_tracks = 2
    stream.on_track(Track(0, MediaKind.VIDEO, Codec.H264, TB, width=320, height=180))
    stream.on_track(_audio(1))
    assert not stream.started  # the second audio track would come after the tracks were fixed
    stream.on_track(_audio(2))
    assert stream.started and stream.data_track_id == 3
    stream.end("test over")


def test_tracks_beyond_the_map_get_omes_default_names_and_items_beyond_the_tracks_label_nothing() -> None:
    stream = _stream((ENGLISH, AudioLabel("", "ko")), audio_tracks=3)
    audios = [t for t in stream.outputs["s"].track_list() if t.kind is MediaKind.AUDIO]
    assert [(t.label, t.language) for t in audios] == [("English", "en"), ("Audio_2", "ko"), ("Audio_3", "")]
    stream.end("test over")
    short = _stream((ENGLISH, KOREAN, AudioLabel("Japanese", "ja")), audio_tracks=1)
    assert [t.label for t in short.outputs["s"].track_list() if t.kind is MediaKind.AUDIO] == ["English"]
    short.end("test over")


def test_without_a_map_only_the_first_audio_track_reaches_the_outputs_as_before() -> None:
    stream = _stream(())
    audios = [t for t in stream.outputs["s"].track_list() if t.kind is MediaKind.AUDIO]
    assert [(t.name, t.label, t.language) for t in audios] == [("a", "", "")]
    stream.end("test over")


def test_a_redescribed_track_keeps_its_label() -> None:
    stream = _stream((ENGLISH, KOREAN))
    stream.on_track(_audio(2))  # e.g. a new AudioSpecificConfig
    audios = [t for t in stream.outputs["s"].track_list() if t.kind is MediaKind.AUDIO]
    assert [t.label for t in audios] == ["English", "Korean"]
    stream.end("test over")


def test_the_map_is_read_from_the_srt_and_mpegts_providers_in_either_shape() -> None:
    config = {"providers": {
        "srt": {"audioMap": {"item": [{"name": "English", "language": "en",
                                       "characteristics": "public.accessibility.describes-video"},
                                      {"name": " Korean ", "language": "ko"}]}},
        "mpegts": {"audioMap": {"item": {"name": "Only"}}},
        "rtmp": {"audioMap": {"item": [{"name": "ignored"}]}}}}
    settings = AppSettings.parse(config)
    assert settings.audio_maps == {"srt": (ENGLISH, KOREAN), "mpegts": (AudioLabel("Only"),)}
    assert audio_labels([{"name": "x", "language": 1}, "junk", None]) == (AudioLabel("x", "1"),)
    assert audio_labels("junk") == () and AppSettings.parse({}).audio_maps == {}


def test_the_master_writes_one_rendition_per_track_with_its_name_language_and_characteristics() -> None:
    video = Track(0, MediaKind.VIDEO, Codec.H264, TB, name="v", width=320, height=180, codec_string="avc1.64000d")
    english = Track(1, MediaKind.AUDIO, Codec.AAC, TB, name="a", channels=2, codec_string="mp4a.40.2",
                    label="English", language="en", characteristics="public.accessibility.describes-video")
    korean = Track(2, MediaKind.AUDIO, Codec.AAC, TB, name="a", channels=2, label='Ko"rean', language="ko")
    text = render_master([Variant(video, english, "a")], {"a": [english, korean]}, key="K", query="", prefix="")
    media = [line for line in text.splitlines() if line.startswith("#EXT-X-MEDIA:")]
    assert media == [
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="English",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",'
        'LANGUAGE="en",CHARACTERISTICS="public.accessibility.describes-video",URI="chunklist_1_audio_K_llhls.m3u8"',
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="Ko\'rean",DEFAULT=NO,AUTOSELECT=YES,CHANNELS="2",'
        'LANGUAGE="ko",URI="chunklist_2_audio_K_llhls.m3u8"']
    plain = Track(1, MediaKind.AUDIO, Codec.AAC, TB, name="a", channels=2)
    assert render_master([Variant(video, plain, "a")], {"a": [plain]}, key="K", query="", prefix="").splitlines()[3] \
        == '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="a",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",' \
           'URI="chunklist_1_audio_K_llhls.m3u8"'


def test_an_audio_encode_runs_once_per_track_and_keeps_each_tracks_label() -> None:
    profile = {"outputStreamName": "${OriginStreamName}_opus",
               "encodes": {"audios": [{"name": "opus", "codec": "opus", "bitrate": "64000", "samplerate": "48000",
                                       "channel": "2"}]}}
    stream = LiveStream("default", "app", "s", source_type="SRT", source_url="", profiles=[profile],
                        audio_map=(ENGLISH, KOREAN))
    stream.expected = {MediaKind.VIDEO, MediaKind.AUDIO}
    stream.expected_audio_tracks = 2
    stream.on_track(Track(0, MediaKind.VIDEO, Codec.H264, TB, width=320, height=180))
    stream.on_track(_audio(1))
    stream.on_track(_audio(2))
    try:
        out = stream.outputs["s_opus"]
        encoded = [t for t in out.tracks if t.kind is MediaKind.AUDIO]
        assert [(t.source_id, t.failed) for t in encoded] == [(1, ""), (2, "")]
        assert [(t.codec, t.label, t.language) for t in out.track_list() if t.kind is MediaKind.AUDIO] == [
            (Codec.OPUS, "English", "en"), (Codec.OPUS, "Korean", "ko")]
    finally:
        stream.end("test over")
