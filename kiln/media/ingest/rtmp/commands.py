"""The AMF0 command replies a publish-side RTMP server sends (NetConnection / NetStream)."""

from __future__ import annotations

from typing import Any

from kiln.media.formats import amf0

FMS_VERSION = "FMS/3,0,1,123"
CAPABILITIES = 31
FOURCC_CAN_FORWARD = 0x04


def connect_result(transaction_id: float, object_encoding: float, enhanced: bool) -> bytes:
    properties: dict[str, Any] = {"fmsVer": FMS_VERSION, "capabilities": CAPABILITIES, "mode": 1}
    if enhanced:
        # Enhanced RTMP: the server answers the client's codec list with what it accepts
        properties["fourCcList"] = ["avc1", "hvc1", "mp4a"]
        properties["videoFourCcInfoMap"] = {"avc1": FOURCC_CAN_FORWARD, "hvc1": FOURCC_CAN_FORWARD}
        properties["audioFourCcInfoMap"] = {"mp4a": FOURCC_CAN_FORWARD}
    information = {"level": "status", "code": "NetConnection.Connect.Success",
                   "description": "Connection succeeded.", "objectEncoding": object_encoding}
    return amf0.encode("_result", transaction_id, properties, information)


def result(transaction_id: float, *values: Any) -> bytes:
    return amf0.encode("_result", transaction_id, None, *values)


def error(transaction_id: float, code: str, description: str) -> bytes:
    return amf0.encode("_error", transaction_id, None,
                       {"level": "error", "code": code, "description": description})


def on_status(level: str, code: str, description: str, **extra: Any) -> bytes:
    info: dict[str, Any] = {"level": level, "code": code, "description": description}
    info.update(extra)
    return amf0.encode("onStatus", 0, None, info)


def on_fc_publish(stream: str) -> bytes:
    return amf0.encode("onFCPublish", 0, None,
                       {"code": "NetStream.Publish.Start", "description": stream})
