"""The ``connections`` object of the stats JSON: OME 0.20's keys plus the older keys dashboards still read.

OME 0.20 counts per publisher type (``file, hlsv3, llhls, ovt, push, srt, thumbnail, webrtc``) and
``totalConnections`` is their sum. Older OME (the seeds' Statistics page) named them ``dash, file, hls,
lldash, llhls, mpegtspush, ovt, rtmppush, thumbnail, webrtc``. Both sets are shown so a dashboard
written against either keeps working; the older keys are views of the same counts and never add to
the total: ``hls`` is HLS v3, ``rtmppush``/``mpegtspush`` are the pushes of that protocol (a push is
counted by its protocol's kind, below, and also under ``push``), ``dash``/``lldash`` are publishers
Kiln does not have and stay 0.
"""

from __future__ import annotations

CONNECTION_TYPES = ("file", "hlsv3", "llhls", "ovt", "push", "srt", "thumbnail", "webrtc")
PUSH_KINDS = {"rtmp": "rtmppush", "mpegts": "mpegtspush", "srt": "srtpush"}  # push protocol -> its kind
LEGACY_KEYS = ("dash", "hls", "lldash", "mpegtspush", "rtmppush")


def push_kind(protocol: str) -> str:
    """The connection kind a push of ``protocol`` is counted under (``push`` when the protocol is unknown)."""
    return PUSH_KINDS.get(protocol.lower(), "push")


def counted_kinds(kind: str) -> tuple[str, ...]:
    """The counters one connection of ``kind`` moves: its type, and for a push also its protocol's."""
    if kind in PUSH_KINDS.values():
        return ("push", kind)
    if kind in CONNECTION_TYPES:
        return (kind,)
    raise ValueError(f"unknown connection type {kind}")


def connections_json(types: dict[str, int], pushes: dict[str, int]) -> dict[str, int]:
    """OME 0.20's keys from ``types`` and the older keys from the same counts, sorted by name."""
    out = dict(types)
    out.update(dash=0, lldash=0, hls=types.get("hlsv3", 0), mpegtspush=pushes.get("mpegtspush", 0),
               rtmppush=pushes.get("rtmppush", 0))
    return dict(sorted(out.items()))
