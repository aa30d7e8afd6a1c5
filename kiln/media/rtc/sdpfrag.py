"""The ICE part of an SDP fragment (``application/trickle-ice-sdpfrag``, RFC 8840 §9) as WHIP's PATCH
carries it (RFC 9725 §4.3): trickled candidates, or an ICE restart (new ``ice-ufrag``/``ice-pwd``), and
Kiln's answer to a restart. Pure: text in, values out; what is not a fragment raises :class:`SdpFragError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_CANDIDATES = 32   # one restart gathers a handful; more would only make Kiln check addresses for someone
UFRAG = re.compile(r"[A-Za-z0-9+/]{4,256}")   # ice-char, RFC 8839 §5.4
PWD = re.compile(r"[A-Za-z0-9+/]{22,256}")
SDP_LINE = re.compile(r"[a-z]=.*")


class SdpFragError(ValueError):
    """A PATCH body that is not an ICE fragment Kiln can use; the text says why."""


@dataclass(frozen=True, slots=True)
class FragmentCandidate:
    """One ``a=candidate`` line: its text after ``candidate:``, and the m-section it came in."""

    text: str
    mid: str | None
    mline_index: int


@dataclass(frozen=True, slots=True)
class IceFragment:
    ufrag: str | None
    pwd: str | None
    candidates: tuple[FragmentCandidate, ...]
    end_of_candidates: bool

    def restarts(self, current_ufrag: str | None) -> bool:
        """Whether this fragment asks for an ICE restart: credentials other than the session's (RFC 8839
        §4.4.1.1.1). New credentials come as a pair; a new ufrag alone is an error."""
        if self.ufrag is None or self.ufrag == current_ufrag:
            return False
        if self.pwd is None:
            raise SdpFragError("an ICE restart needs a=ice-pwd with the new a=ice-ufrag")
        return True


def parse_fragment(text: str) -> IceFragment:
    """The ICE attributes of a fragment. Every line must be an SDP line; credentials must be ice-chars and
    agree wherever they are repeated; candidates must have the fields of RFC 8839 §5.1."""
    ufrag: str | None = None
    pwd: str | None = None
    candidates: list[FragmentCandidate] = []
    end = False
    mid: str | None = None
    index = 0
    seen_media = False
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise SdpFragError("the fragment is empty")
    for number, line in enumerate(lines, 1):
        if not SDP_LINE.fullmatch(line):
            raise SdpFragError(f"line {number} is not an SDP line")
        if line.startswith("m="):
            index, mid = (index + 1 if seen_media else 0), None
            seen_media = True
        elif line.startswith("a=mid:"):
            mid = line[len("a=mid:"):].strip() or None
        elif line.startswith("a=ice-ufrag:"):
            ufrag = _same("ice-ufrag", ufrag, _credential(line, "a=ice-ufrag:", UFRAG, "4 to 256"))
        elif line.startswith("a=ice-pwd:"):
            pwd = _same("ice-pwd", pwd, _credential(line, "a=ice-pwd:", PWD, "22 to 256"))
        elif line.startswith("a=candidate:"):
            body = line[len("a=candidate:"):].strip()
            _check_candidate(body, number)
            candidates.append(FragmentCandidate(body, mid, index))
            if len(candidates) > MAX_CANDIDATES:
                raise SdpFragError(f"more than {MAX_CANDIDATES} candidates in one fragment")
        elif line == "a=end-of-candidates":
            end = True
    return IceFragment(ufrag, pwd, tuple(candidates), end)


def _credential(line: str, prefix: str, pattern: re.Pattern[str], size: str) -> str:
    value = line[len(prefix):].strip()
    if not pattern.fullmatch(value):
        raise SdpFragError(f"{prefix[2:-1]} must be {size} ice-chars (A-Z a-z 0-9 + /)")
    return value


def _same(name: str, before: str | None, value: str) -> str:
    if before is not None and before != value:
        raise SdpFragError(f"two different {name} values in one fragment")
    return value


def _number(text: str) -> int:
    """A field of ASCII digits (at most 10) as a number, else -1: ``str.isdigit`` alone also accepts '²', which
    ``int`` refuses, and ``int`` refuses more than 4,300 digits (either was a ValueError, a WHIP PATCH's 500)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 10 else -1


def _check_candidate(body: str, number: int) -> None:
    """foundation component transport priority address port typ type [...] (RFC 8839 §5.1)."""
    fields = body.split()
    ok = (len(fields) >= 8 and 1 <= _number(fields[1]) <= 256 and 0 <= _number(fields[3]) <= 0xFFFFFFFF
          and 0 <= _number(fields[5]) <= 65535 and fields[6] == "typ")
    if not ok:
        raise SdpFragError(f"line {number} is not an ICE candidate")


def first_media(sdp: str) -> tuple[str, str | None, str | None]:
    """The first m-line of ``sdp`` (port set to 9, as fragments carry it), its mid, and the session's
    ``a=group:BUNDLE`` line: what a restart answer repeats so the client finds its m-section."""
    media: str | None = None
    mid: str | None = None
    bundle: str | None = None
    for line in (raw.strip() for raw in sdp.splitlines()):
        if line.startswith("a=group:BUNDLE") and media is None:
            bundle = line
        elif line.startswith("m="):
            if media is not None:
                break
            parts = line.split()
            media = " ".join([parts[0], "9", *parts[2:]]) if len(parts) >= 3 else line
        elif line.startswith("a=mid:") and media is not None:
            mid = line[len("a=mid:"):].strip()
    if media is None:
        raise SdpFragError("the session's description has no media section")
    return media, mid, bundle


def restart_answer(ufrag: str, pwd: str, candidates: list[str], media: str, mid: str | None,
                   bundle: str | None) -> str:
    """Kiln's side of a restart (RFC 9725 §4.3.2): its new credentials and every candidate (Kiln gathers
    them before answering, so the list ends), in the bundle's first m-section."""
    lines = [bundle] if bundle else []
    lines.append(media)
    if mid is not None:
        lines.append(f"a=mid:{mid}")
    lines += [f"a=ice-ufrag:{ufrag}", f"a=ice-pwd:{pwd}"]
    lines += [f"a={c}" if c.startswith("candidate:") else f"a=candidate:{c}" for c in candidates]
    lines.append("a=end-of-candidates")
    return "\r\n".join(lines) + "\r\n"
