"""Every input a fuzz target broke Kiln with, minimal, as a plain test (tests/fuzz/README.md lists them)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from kiln.media.formats import amf0
from kiln.media.formats.rtmp.messages import DATA_AMF0
from tests.fuzz.budget import bounded

# F1 (test_amf0_decode): an object holding two references to itself. Decoding was instant, but the
# value is a cycle with fan-out 2, so any tree walk (the session's onMetaData to plain dict) visits
# 2^33 nodes: 29 bytes in one RTMP data message froze the event loop, and with it every connection.
AMF_CYCLE = b"\x02\x00\x0aonMetaData" + b"\x03" + b"\x00\x01a\x07\x00\x00" + b"\x00\x01b\x07\x00\x00" + b"\x00\x00\x09"


def _doubling(levels: int) -> bytes:
    """No cycle: object k holds object k+1 and a reference to it, so the tree doubles per level."""
    inner = b"\x03\x00\x00\x09"
    for level in range(levels - 1, -1, -1):
        inner = b"\x03" + b"\x00\x01a" + inner + b"\x00\x01b\x07" + (level + 1).to_bytes(2, "big") + b"\x00\x00\x09"
    return inner


def test_f1_amf0_reference_cycle_is_refused() -> None:
    with bounded(seconds=5), pytest.raises(amf0.AmfError, match="cycle"):
        amf0.decode_all(AMF_CYCLE)


def test_f1_amf0_reference_expansion_is_bounded() -> None:
    with bounded(seconds=5), pytest.raises(amf0.AmfError, match="expand"):
        amf0.decode_all(_doubling(30))  # 2^30 values from ~500 bytes


def test_f1_amf0_shared_references_still_decode() -> None:
    """What encoders really send: an object referenced a few times, after it is complete."""
    values = amf0.decode_all(_doubling(4))
    top = values[0]
    assert top["b"] is top["a"] and top["a"]["b"] is top["a"]["a"]


def test_f1_metadata_cycle_closes_only_that_connection() -> None:
    """The same bytes as an RTMP data message: the connection ends with a protocol error, at once."""
    from kiln.media.ingest.rtmp.session import RtmpConnection, SessionConfig
    from tests.fuzz.test_fuzz_rtmp import PREAMBLE, _writer_bytes
    from tests.unit.rtmp.test_session import Handler, MemoryTransport

    closed: list[object] = []

    async def scenario() -> None:
        conn = RtmpConnection(Handler(), SessionConfig(), asyncio.get_running_loop(), closed.append, lambda t: None)
        transport = MemoryTransport()
        conn.connection_made(transport)
        conn.data_received(PREAMBLE + _writer_bytes([(5, DATA_AMF0, 0, AMF_CYCLE)]))
        assert transport.aborted and closed == [conn]
    with bounded(seconds=5):
        asyncio.run(scenario())


# F2 (test_id3_builder_round_trip): a plain text frame with the id TXXX. The builder wrote it, but
# TXXX needs a description and its terminator, so the tag it made could not be read back (nor by
# players). sendEvent never builds one (it maps any case of "txxx" to a user text frame), but the
# builder now refuses ids that are not a text information frame's.
def test_f2_id3_text_frame_with_a_non_text_id_is_refused() -> None:
    from kiln.media.formats import id3

    for frame_id in ("TXXX", "PRIV", "APIC"):
        with pytest.raises(id3.Id3Error, match="not a text information frame id"):
            id3.build_id3v24_tag([id3.Id3Frame.text(frame_id, "")])
    frames = [id3.Id3Frame.text("TIT2", ""), id3.Id3Frame.txxx("", "")]
    assert id3.parse_id3v24_tag(id3.build_id3v24_tag(frames)) == frames


# F3 (test_server_xml): an XML declaration naming an encoding expat does not know (a typo such as
# "TTF-8") or a multi-byte one (UTF-32, Shift_JIS). `kiln config check` and `kiln serve` died with a
# LookupError/ValueError traceback instead of the one-line error the rest of Server.xml gets.
@pytest.mark.parametrize("encoding", ["TTF-8", "UTF-32", "Shift_JIS"])
def test_f3_server_xml_with_an_unusable_encoding_is_a_config_error(encoding: str, tmp_path: Path) -> None:
    from kiln.config.check import EXIT_INVALID, run_check

    path = tmp_path / "Server.xml"
    path.write_bytes(f'<?xml version="1.0" encoding="{encoding}"?><Server version="8"/>'.encode())
    out = io.StringIO()
    assert run_check(str(path), out) == EXIT_INVALID
    assert out.getvalue() == f"error: {path}: unsupported XML encoding: " + out.getvalue().split(": ", 3)[-1]
    assert encoding.lower() in out.getvalue().lower() or "multi-byte" in out.getvalue()


# F4 (test_json_bodies): a JSON body nested about 500 levels deep inside a part of the app config Kiln
# keeps as given (persistentStreams, outputProfiles.mediaOptions). The parser took it, then copying
# and journaling it ran out of stack: 500 Internal Server Error with a traceback in the log. Bodies
# deeper than 128 levels now get jsoncpp's own stack-limit 400, before anything else looks at them.
def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("where", ['"persistentStreams":{"a":DEEP}', '"outputProfiles":{"mediaOptions":DEEP}'])
def test_f4_deeply_nested_body_is_a_400(where: str, tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from tests.unit.http.conftest import AUTH, start_service

    service = start_service(tmp_path / "data")
    try:
        with TestClient(service.build_api().starlette, base_url="http://kiln.test") as client:
            assert client.post("/v1/vhosts", headers=AUTH, json=[{"name": "sx"}]).status_code == 200
            body = '[{"name":"a","type":"live",' + where.replace("DEEP", _deep(600)) + "}]"
            response = client.post("/v1/vhosts/sx/apps", headers=AUTH, content=body.encode())
            assert response.status_code == 400
            assert response.json() == {"message": "[HTTP] [JSON] * Line 1, Column 1\n  Exceeded stackLimit in "
                                                  "readValue().\n (400)", "statusCode": 400}
            assert client.get("/v1/vhosts/sx/apps", headers=AUTH).json()["response"] == []  # nothing half-made
            body = '[{"name":"b","type":"live",' + where.replace("DEEP", _deep(100)) + "}]"
            assert client.post("/v1/vhosts/sx/apps", headers=AUTH, content=body.encode()).status_code == 200
    finally:
        service.close()


# F5 (test_sch_files): a .sch file whose XML declaration names an encoding expat does not know. Reading the
# ScheduleFilesDir at start raised LookupError out of the app's stream supervisor as it started (the app then
# had no stream supervisor: no ingest, no channel). Now the file is logged and skipped, the others load.
@pytest.mark.parametrize("encoding", ["TTF-8", "UTF-32"])
def test_f5_sch_file_with_an_unusable_encoding_is_skipped(encoding: str, tmp_path: Path) -> None:
    from kiln.actors.schedules import ChannelFiles

    (tmp_path / "bad.sch").write_bytes(f'<?xml version="1.0" encoding="{encoding}"?><Schedule/>'.encode())
    (tmp_path / "good.sch").write_bytes(b"<Schedule><Stream/></Schedule>")
    files = ChannelFiles("default/tv", {"providers": {"schedule": {"scheduleFilesDir": str(tmp_path)}}}, None)
    assert [s.name for s in files.found(set())] == ["good"]


# F6 (test_fuzz_multiplex.py::test_json_bodies): a multiplexChannels body with a NUL or CR in a name was accepted
# (201) and written into a .mux file XML cannot carry: the file no longer read back. Now it is a 400.
@pytest.mark.parametrize("text", ["a\x00b", "a\rb"])
def test_f6_mux_body_with_a_control_character_is_a_400(text: str) -> None:
    from kiln.domain.multiplex import MultiplexError, multiplex_from_json

    body = {"outputStream": {"name": "tv1"}, "sourceStreams": [], "playlists": [{"name": "tv1", "fileName": text}]}
    with pytest.raises(MultiplexError):
        multiplex_from_json(body)
