"""A stream's OME JSON rendered from a media snapshot (rest-spec §8.3), field by field."""

from __future__ import annotations

from kiln.http.views.stream import stream_json
from kiln.media.stream.snapshot import MeterReading, OutputSnapshot, StreamSnapshot, TrackSnapshot
from kiln.timefmt import format_time

METER = MeterReading(bitrate_avg=500_000, bitrate_latest=480_000, framerate_avg=29.9704, framerate_latest=30.0,
                     has_bframes=True, key_frame_interval_avg=1.99996, key_frame_interval_latest=2,
                     frames_since_key=7)
VIDEO = TrackSnapshot(0, "Video", codec="H264", width=320, height=180, meter=METER)
AUDIO = TrackSnapshot(1, "Audio", codec="AAC", sample_rate=48000, channels=2, meter=MeterReading(bitrate_avg=64000))
CONFIGURED = TrackSnapshot(0, "Video", "h265_720", "None", width=1280, height=720, bitrate_conf=2_000_000,
                           framerate_conf=30.0, unavailable="encoder not available", configured=True)
PLAYLIST = {"name": "abr", "fileName": "abr", "options": {"webRtcAutoAbr": "true", "hlsChunklistPathDepth": "0"},
            "rendition": {"name": "hd", "video": "h265_720"}}


def test_input_output_and_playlists_render_as_ome_does() -> None:
    snap = StreamSnapshot("s", 1_700_000_000.5, "Rtmp", "rtmp://peer", (VIDEO, AUDIO, TrackSnapshot(2, "Data")),
                          (OutputSnapshot("s_hd", (CONFIGURED, TrackSnapshot(1, "Data")), (PLAYLIST,)),))
    assert stream_json(snap) == {
        "name": "s",
        "input": {"createdTime": format_time(1_700_000_000.5), "sourceType": "Rtmp", "sourceUrl": "rtmp://peer",
                  "tracks": [
                      {"id": 0, "type": "Video", "video": {
                          "bypass": False, "codec": "H264", "width": 320, "maxWidth": 320, "height": 180,
                          "maxHeight": 180, "bitrate": 500_000, "bitrateConf": 0, "bitrateAvg": 500_000,
                          "bitrateLatest": 480_000, "framerate": 29.97, "framerateConf": 0.0, "framerateAvg": 29.97,
                          "framerateLatest": 30.0, "hasBframes": True, "keyFrameInterval": 2.0,
                          "keyFrameIntervalConf": 0.0, "keyFrameIntervalAvg": 2.0, "keyFrameIntervalLatest": 2.0,
                          "deltaFramesSinceLastKeyFrame": 7}},
                      {"id": 1, "type": "Audio", "audio": {
                          "bypass": False, "codec": "AAC", "samplerate": 48000, "channel": 2, "bitrate": 64000,
                          "bitrateConf": 0, "bitrateAvg": 64000, "bitrateLatest": 0}},
                      {"id": 2, "type": "Data"}]},
        "outputs": [{"name": "s_hd", "tracks": [
            {"id": 0, "type": "Video", "name": "h265_720", "video": {
                "bypass": False, "codec": "None", "width": 1280, "height": 720, "bitrate": 2_000_000,
                "bitrateConf": 2_000_000, "framerate": 30.0, "framerateConf": 30.0},
             "unavailable": "encoder not available"},
            {"id": 1, "type": "Data"}],
            "playlists": [{"name": "abr", "fileName": "abr", "options": {
                "webrtcAutoAbr": True, "hlsChunklistPathDepth": 0, "enableTsPackaging": False},
                "renditions": [{"name": "hd", "videoVariantName": "h265_720"}]}]}],
    }


def test_a_track_that_stopped_keeps_its_measurements_and_says_why() -> None:
    stopped = TrackSnapshot(0, "Audio", "aac_low", "AAC", sample_rate=48000, channels=1, bitrate_conf=64000,
                            unavailable="encoder failed")
    snap = StreamSnapshot("s", 0.0, "SRT", "", (), (OutputSnapshot("o", (stopped,), ()),))
    out = stream_json(snap)
    assert "sourceUrl" not in out["input"] and out["input"]["tracks"] == []
    assert out["outputs"][0]["tracks"] == [{
        "id": 0, "type": "Audio", "name": "aac_low", "unavailable": "encoder failed",
        "audio": {"bypass": False, "codec": "AAC", "samplerate": 48000, "channel": 1, "bitrate": 64000,
                  "bitrateConf": 64000, "bitrateAvg": 0, "bitrateLatest": 0}}]


def test_an_output_says_what_webrtc_viewers_miss_as_last_warning() -> None:
    warned = StreamSnapshot("s", 0.0, "Rtmp", "", (), (OutputSnapshot("o", (), (), "WebRTC viewers get no video"),))
    assert stream_json(warned)["outputs"][0]["lastWarning"] == "WebRTC viewers get no video"
    quiet = StreamSnapshot("s", 0.0, "Rtmp", "", (), (OutputSnapshot("o", (), ()),))
    assert "lastWarning" not in stream_json(quiet)["outputs"][0]
