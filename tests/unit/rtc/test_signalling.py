"""OME's signalling frames as OvenPlayer and OvenLiveKit send them, and every way a frame can be wrong."""

from __future__ import annotations

import json

import pytest

from kiln.media.rtc import signalling as sig


def test_request_offer_and_answer_as_ovenplayer_sends_them() -> None:
    assert sig.parse_client_message('{"command":"request_offer"}') == sig.RequestOffer()
    answer = sig.parse_client_message(json.dumps(
        {"id": 7, "peer_id": 0, "command": "answer", "sdp": {"type": "answer", "sdp": "v=0\r\n"}}))
    assert answer == sig.Answer(7, 0, "v=0\r\n")


def test_candidates_list_and_single() -> None:
    msg = sig.parse_client_message(json.dumps({"command": "candidate", "id": 3, "peer_id": 0, "candidates": [
        {"candidate": "candidate:1 1 udp 1 10.0.0.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}]}))
    assert msg == sig.Candidates(3, 0, (sig.Candidate("candidate:1 1 udp 1 10.0.0.1 5000 typ host", "0", 0),))
    single = sig.parse_client_message(json.dumps({"command": "candidate", "id": 3, "candidate": {"candidate": ""}}))
    assert isinstance(single, sig.Candidates) and single.candidates == (sig.Candidate(""),)


def test_change_rendition_stop_and_keepalives() -> None:
    assert sig.parse_client_message('{"command":"change_rendition","id":1,"rendition_name":"720p"}') == \
        sig.ChangeRendition(1, "720p", None)
    assert sig.parse_client_message('{"command":"change_rendition","id":"1","auto":true}') == \
        sig.ChangeRendition(1, None, True)
    assert sig.parse_client_message('{"command":"stop","id":1}') == sig.Stop(1)
    assert sig.parse_client_message('{"command":"pong"}') == sig.Ping()


@pytest.mark.parametrize(("frame", "text"), [
    ("not json", "message is not JSON"),
    ("[1,2]", "message must be a JSON object"),
    ('{"id":1}', "message has no command"),
    ('{"command":"dance"}', "unknown command 'dance'"),
    ('{"command":"answer","sdp":{"type":"answer","sdp":"v=0"}}', sig.INVALID_ID),
    ('{"command":"answer","id":"x","sdp":"v=0"}', sig.INVALID_ID),
    ('{"command":"answer","id":true,"sdp":"v=0"}', sig.INVALID_ID),
    ('{"command":"answer","id":1}', "an answer needs an SDP"),
    ('{"command":"answer","id":1,"sdp":{"type":"offer","sdp":"v=0"}}', "sdp type must be 'answer', not 'offer'"),
    ('{"command":"candidate","id":1,"candidates":"x"}', "candidates must be a list"),
    ('{"command":"candidate","id":1,"candidates":[{"sdpMid":"0"}]}', "a candidate needs a 'candidate' string"),
    ('{"command":"change_rendition","id":1}', "change_rendition needs rendition_name or auto"),
    ('{"command":"change_rendition","id":1,"auto":"yes"}', "auto must be true or false"),
    ('{"command":"stop"}', sig.INVALID_ID),
])
def test_bad_frames_get_a_400_saying_why(frame: str, text: str) -> None:
    with pytest.raises(sig.SignallingError) as caught:
        sig.parse_client_message(frame)
    assert (caught.value.code, caught.value.text) == (400, text)


def test_oversized_frame_is_refused_before_parsing() -> None:
    with pytest.raises(sig.SignallingError, match="too large"):
        sig.parse_client_message('{"command":"answer","sdp":"' + "a" * sig.MAX_MESSAGE_BYTES + '"}')


def test_offer_carries_ice_servers_only_when_given() -> None:
    plain = sig.offer_message(5, 0, "v=0", [sig.Candidate("candidate:x", "0", 0)])
    assert plain == {"command": "offer", "id": 5, "peer_id": 0, "code": 200,
                     "sdp": {"type": "offer", "sdp": "v=0"},
                     "candidates": [{"candidate": "candidate:x", "sdpMid": "0", "sdpMLineIndex": 0}]}
    relay = sig.offer_message(5, 0, "v=0", [], (sig.IceServer(("turn:1.2.3.4:3478?transport=tcp",), "ome", "airen"),))
    assert relay["iceServers"] == [{"urls": ["turn:1.2.3.4:3478?transport=tcp"], "username": "ome",
                                    "credential": "airen"}]
    assert relay["ice_servers"][0]["user_name"] == "ome"


def test_server_messages() -> None:
    assert sig.error_message(404, sig.CANNOT_CREATE_OFFER) == {"code": 404, "error": "Cannot create offer"}
    assert sig.rendition_changed_notification("low", False)["message"] == {"rendition_name": "low", "auto": False}
    assert json.loads(sig.encode(sig.playlist_notification([], True)))["type"] == "playlist"
