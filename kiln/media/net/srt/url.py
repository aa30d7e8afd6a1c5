"""``srt://host:port?…`` caller URLs with FFmpeg's libsrt semantics (OME pushes through FFmpeg).

So that a push URL that works with OME works with Kiln unchanged:
- ``latency``/``rcvlatency``/``peerlatency``/``tsbpddelay`` and ``timeout`` are in MICROseconds,
  ``connect_timeout`` is in milliseconds; a negative number means "not set", as in FFmpeg;
- values are used as written, without percent-decoding (FFmpeg 5.1 passes ``streamid`` and
  ``passphrase`` through raw), and everything after the first ``?`` is the query, so a
  ``streamid=#!::u=…`` is not cut at ``#`` as a fragment;
- the first occurrence of a key wins; keys FFmpeg does not know are ignored (and logged);
- only ``mode=caller`` is accepted: OME pushes over SRT as a caller only (media-spec §7).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from kiln.events.redact import redact_push_destination
from kiln.media.net.srt.abi import SockOpt
from kiln.media.net.srt.options import SETTABLE, OptionSpec, OptionValue, parse_bool, parse_int, validate

log = logging.getLogger(__name__)


class SrtUrlError(ValueError):
    """A push URL Kiln cannot use, with the reason."""


# query key -> (socket option, how to read the value)
_QUERY: dict[str, tuple[SockOpt, str]] = {
    "latency": (SockOpt.LATENCY, "us"),
    "tsbpddelay": (SockOpt.LATENCY, "us"),
    "rcvlatency": (SockOpt.RCVLATENCY, "us"),
    "peerlatency": (SockOpt.PEERLATENCY, "us"),
    "connect_timeout": (SockOpt.CONNTIMEO, "int"),
    "passphrase": (SockOpt.PASSPHRASE, "str"),
    "pbkeylen": (SockOpt.PBKEYLEN, "int"),
    "enforced_encryption": (SockOpt.ENFORCEDENCRYPTION, "bool"),
    "kmrefreshrate": (SockOpt.KMREFRESHRATE, "int"),
    "kmpreannounce": (SockOpt.KMPREANNOUNCE, "int"),
    "mss": (SockOpt.MSS, "int"),
    "ffs": (SockOpt.FC, "int"),
    "ipttl": (SockOpt.IPTTL, "int"),
    "iptos": (SockOpt.IPTOS, "int"),
    "inputbw": (SockOpt.INPUTBW, "int64"),
    "oheadbw": (SockOpt.OHEADBW, "int"),
    "maxbw": (SockOpt.MAXBW, "int64"),
    "tlpktdrop": (SockOpt.TLPKTDROP, "bool"),
    "nakreport": (SockOpt.NAKREPORT, "bool"),
    "payload_size": (SockOpt.PAYLOADSIZE, "int"),
    "pkt_size": (SockOpt.PAYLOADSIZE, "int"),
    "sndbuf": (SockOpt.SNDBUF, "int"),
    "rcvbuf": (SockOpt.RCVBUF, "int"),
    "send_buffer_size": (SockOpt.UDP_SNDBUF, "int"),
    "recv_buffer_size": (SockOpt.UDP_RCVBUF, "int"),
    "lossmaxttl": (SockOpt.LOSSMAXTTL, "int"),
    "minversion": (SockOpt.MINVERSION, "hexint"),
    "streamid": (SockOpt.STREAMID, "str"),
    "smoother": (SockOpt.CONGESTION, "str"),
    "messageapi": (SockOpt.MESSAGEAPI, "bool"),
    "transtype": (SockOpt.TRANSTYPE, "transtype"),
    "linger": (SockOpt.LINGER, "int"),
}
_NOT_OPTIONS = {"mode", "timeout", "listen_timeout"}


@dataclass(frozen=True)
class SrtUrl:
    host: str
    port: int
    options: list[tuple[OptionSpec, OptionValue]] = field(default_factory=list)
    io_timeout_ms: int | None = None  # FFmpeg's ``timeout``: bounds connecting and each send
    display: str = ""  # the URL with its passphrase, secret query values and stream key path masked, for logs

    def option(self, opt: SockOpt) -> OptionValue | None:
        for spec, value in self.options:
            if spec.opt == opt:
                return value
        return None

    @property
    def streamid(self) -> str | None:
        value = self.option(SockOpt.STREAMID)
        return value if isinstance(value, str) else None

    @property
    def connect_timeout_ms(self) -> int | None:
        value = self.option(SockOpt.CONNTIMEO)
        return value if isinstance(value, int) else None


def _split_query(query: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for part in query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((key, value))
    return pairs


def _value(kind: str, text: str) -> OptionValue | None:
    """Convert one query value; ``None`` for FFmpeg's negative "unset" numbers."""
    if kind == "str":
        return text
    if kind == "bool":
        try:
            return parse_int(text) != 0
        except ValueError:
            return parse_bool(text)
    if kind == "transtype":
        if text not in ("live", "file"):
            raise ValueError(f"transtype must be live or file, not {text!r}")
        return 0 if text == "live" else 1
    number = parse_int(text, bits=64 if kind == "int64" else 32, base=0 if kind == "hexint" else 10)
    if number < 0:
        return None
    return number // 1000 if kind == "us" else number


def parse_srt_url(url: str) -> SrtUrl:
    """Parse a caller URL; ``SrtUrlError`` explains what is wrong."""
    base, sep, query = url.partition("?")
    parts = urlsplit(base)
    if parts.scheme.lower() != "srt":
        raise SrtUrlError(f"not an srt:// URL: {redact_push_destination(url)}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise SrtUrlError(f"bad port in {redact_push_destination(url)}: {exc}") from None
    if not host:
        raise SrtUrlError(f"no host in {redact_push_destination(url)}")
    if not port:
        raise SrtUrlError(f"no port in {redact_push_destination(url)}")
    pairs = _split_query(query) if sep else []
    seen: set[str] = set()
    options: list[tuple[OptionSpec, OptionValue]] = []
    io_timeout_ms: int | None = None
    for key, text in pairs:
        if key in seen:
            continue  # FFmpeg's av_find_info_tag uses the first occurrence
        seen.add(key)
        if key == "mode":
            if text != "caller":
                raise SrtUrlError(f"SRT push supports mode=caller only, not mode={text}")
            continue
        if key in _NOT_OPTIONS:
            if key == "timeout":
                micros = _number(key, text)
                io_timeout_ms = max(micros // 1000, 1) if micros > 0 else None  # 0 or less: no limit
            continue
        if key not in _QUERY:
            log.warning("srt url option ignored key=%s url=%s", key, redact_push_destination(url))
            continue
        opt, kind = _QUERY[key]
        spec = SETTABLE["SRTO_" + opt.name]
        try:
            value = _value(kind, text)
            if value is not None:
                validate(spec, value)
        except ValueError as exc:
            raise SrtUrlError(f"{key}: {exc}") from None
        if value is not None:
            options.append((spec, value))
    return SrtUrl(host=host, port=port, options=options, io_timeout_ms=io_timeout_ms,
                  display=redact_push_destination(url))


def _number(key: str, text: str) -> int:
    try:
        return parse_int(text, bits=64)
    except ValueError as exc:
        raise SrtUrlError(f"{key}: {exc}") from None
