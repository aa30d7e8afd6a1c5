"""SDP helpers (pure): the candidates of a description, for OME's ``candidates`` list, and a check
that a remote description is an SDP at all before aiortc parses it (its parser raises bare errors)."""

from __future__ import annotations

from kiln.media.rtc.signalling import Candidate

MAX_SDP_BYTES = 64 * 1024


class SdpError(ValueError):
    """A description Kiln will not hand to aiortc; the text says why."""


def candidates_of(sdp: str) -> list[Candidate]:
    """Every ``a=candidate`` line with the mid and index of its m-section."""
    out: list[Candidate] = []
    index = -1
    mid: str | None = None
    for line in sdp.splitlines():
        if line.startswith("m="):
            index += 1
            mid = None
        elif line.startswith("a=mid:"):
            mid = line[len("a=mid:"):].strip()
        elif line.startswith("a=candidate:") and index >= 0:
            out.append(Candidate(line[2:].strip(), mid, index))
    return out


def check_sdp(sdp: str) -> None:
    """Refuse what is plainly not an SDP (no ``v=0``, no m-line, too large) with a reason."""
    if len(sdp) > MAX_SDP_BYTES:
        raise SdpError(f"SDP too large ({len(sdp)} bytes)")
    lines = [line.strip() for line in sdp.strip().splitlines()]
    if not lines or lines[0] != "v=0":
        raise SdpError("SDP must begin with v=0")
    if not any(line.startswith("m=") for line in lines):
        raise SdpError("SDP has no media section")
    if not any(line.startswith("a=ice-ufrag:") for line in lines):
        raise SdpError("SDP has no ICE credentials (a=ice-ufrag)")
    if not any(line.startswith("a=fingerprint:") for line in lines):
        raise SdpError("SDP has no DTLS fingerprint")
