"""DASH event message boxes (``emsg``, ISO/IEC 23009-1 §5.10.3.3), version 1: how Kiln, like OME,
carries ID3 timed metadata in LL-HLS parts (rest-spec §11.2). Version 1 gives an absolute 64-bit
presentation time on the media timeline, so a part can be cut anywhere without rebasing events."""

from __future__ import annotations

import struct

from kiln.media.formats.bmff.boxes import full_box
from kiln.media.formats.bmff.errors import BmffError

_V1_FIELDS = struct.Struct(">IQII")  # timescale, presentation_time, event_duration, id


def _c_string(name: str, text: str) -> bytes:
    encoded = text.encode("utf-8")
    if b"\0" in encoded:
        raise BmffError(f"emsg {name} must not contain NUL: {text!r}")
    return encoded + b"\0"


def build_emsg_v1(*, timescale: int, presentation_time: int, event_duration: int, event_id: int,
                  scheme_id_uri: str, value: str, message_data: bytes) -> bytes:
    """One ``emsg`` v1 box: timescale, presentation_time, event_duration (0xFFFFFFFF = unknown), id,
    then the NUL-terminated scheme and value strings and the message bytes (an ID3 tag for ID3)."""
    try:
        fields = _V1_FIELDS.pack(timescale, presentation_time, event_duration, event_id)
    except struct.error as exc:
        raise BmffError(f"emsg field out of range: {exc}") from exc
    return full_box(b"emsg", 1, 0, fields, _c_string("scheme_id_uri", scheme_id_uri),
                    _c_string("value", value), message_data)
