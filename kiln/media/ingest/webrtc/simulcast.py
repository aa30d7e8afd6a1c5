"""Simulcast through WHIP (RFC 8853): the publisher's ``a=simulcast:send`` layers, accepted in Kiln's answer.

aiortc neither reads nor writes ``a=rid``/``a=simulcast``: its answer leaves them out, and the publisher
then sends one layer. Here the offer's layers (rids on a video m-section) are put back in the answer as
``recv``, with the RTP stream id header extension, so the publisher sends each layer on its own SSRC;
the tap makes each SSRC a track of the input. Paused (``~``) and alternative (``,``) rids follow RFC 8853:
a paused rid is left out, of alternatives the first is taken. The repaired RTP stream id extension is
accepted too: browsers signal no SSRCs for rid layers, so a layer's retransmissions (RTX) are matched to it
by the rid they repair (``tap.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

RID_URI = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
RRID_URI = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
MAX_LAYERS = 4  # more layers than any browser sends; each one costs a track and its packets


@dataclass(frozen=True)
class Layers:
    """The simulcast layers a video m-section offers, in the offer's order."""

    mid: str
    rids: tuple[str, ...]
    rid_extension: int | None   # the offer's extmap id for the RTP stream id, None when not offered
    rrid_extension: int | None = None  # and for the repaired RTP stream id (RTX of a layer)


def _sections(sdp: str) -> list[list[str]]:
    """The SDP's lines cut at each ``m=`` (the first list is the session part)."""
    out: list[list[str]] = [[]]
    for line in sdp.replace("\r\n", "\n").split("\n"):
        if line.startswith("m="):
            out.append([])
        if line:
            out[-1].append(line)
    return out


def _value(section: list[str], prefix: str) -> str | None:
    return next((line[len(prefix):].strip() for line in section if line.startswith(prefix)), None)


def offered_layers(offer: str) -> dict[str, Layers]:
    """The video m-sections (by mid) that offer simulcast with at least two usable rids."""
    found: dict[str, Layers] = {}
    for section in _sections(offer)[1:]:
        mid = _value(section, "a=mid:")
        spec = _value(section, "a=simulcast:")
        if not section[0].startswith("m=video") or mid is None or spec is None:
            continue
        words = spec.split()
        if len(words) < 2 or words[0] != "send":
            continue
        sending = {line[len("a=rid:"):].split()[0] for line in section
                   if line.startswith("a=rid:") and len(line.split()) >= 2 and line.split()[1] == "send"}
        rids = []
        for choice in words[1].split(";"):
            first = choice.split(",")[0]
            if first and not first.startswith("~") and first in sending and first not in rids:
                rids.append(first)
        if len(rids) >= 2:
            found[mid] = Layers(mid, tuple(rids[:MAX_LAYERS]), _extmap(section, RID_URI), _extmap(section, RRID_URI))
    return found


def _extmap(section: list[str], uri: str) -> int | None:
    """The id a section's ``a=extmap`` gives ``uri`` (None: not offered)."""
    found = next((line[len("a=extmap:"):].split()[0].split("/")[0] for line in section
                  if line.startswith("a=extmap:") and line.split()[-1] == uri), None)
    return int(found) if found and found.isdigit() else None


def accept_layers(answer: str, layers: dict[str, Layers]) -> str:
    """``answer`` with each simulcast m-section's layers accepted (``a=rid:X recv``, ``a=simulcast:recv``)."""
    if not layers:
        return answer
    sections = _sections(answer)
    for section in sections[1:]:
        offered = layers.get(_value(section, "a=mid:") or "")
        if offered is None or not section[0].startswith("m=video") or section[0].split()[1] == "0":
            continue
        for ident, uri in ((offered.rid_extension, RID_URI), (offered.rrid_extension, RRID_URI)):
            if ident is not None and _extmap(section, uri) is None:
                section.append(f"a=extmap:{ident} {uri}")
        section.extend(f"a=rid:{rid} recv" for rid in offered.rids)
        section.append("a=simulcast:recv " + ";".join(offered.rids))
    return "\r\n".join(line for section in sections for line in section) + "\r\n"
