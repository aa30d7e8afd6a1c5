"""SRT socket options by name, as OME's ``Bind/.../SRT/Options/Option{Key,Value}`` writes them.

Keys are exact libsrt names (``SRTO_LATENCY``); values are strings converted to the option's C type.
Values are checked here, before any socket exists, so a bad Server.xml entry fails with the key
in the message instead of an opaque libsrt error. Like OME, ``SRTO_RCVSYN``/``SRTO_SNDSYN`` are
refused because Kiln decides blocking mode itself; read-only options are refused too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kiln.media.net.srt import abi, libsrt
from kiln.media.net.srt.abi import SockOpt, TransType

OptionValue = int | bool | str


@dataclass(frozen=True)
class OptionSpec:
    name: str
    opt: SockOpt
    kind: str  # "int32" | "int64" | "bool" | "string" | "linger" | "transtype"


_KINDS: dict[str, tuple[SockOpt, ...]] = {
    "int32": (SockOpt.MSS, SockOpt.FC, SockOpt.SNDBUF, SockOpt.RCVBUF, SockOpt.UDP_SNDBUF, SockOpt.UDP_RCVBUF,
              SockOpt.SNDTIMEO, SockOpt.RCVTIMEO, SockOpt.OHEADBW, SockOpt.LATENCY, SockOpt.PBKEYLEN,
              SockOpt.IPTTL, SockOpt.IPTOS, SockOpt.SNDDROPDELAY, SockOpt.CONNTIMEO, SockOpt.LOSSMAXTTL,
              SockOpt.RCVLATENCY, SockOpt.PEERLATENCY, SockOpt.MINVERSION, SockOpt.PAYLOADSIZE,
              SockOpt.KMREFRESHRATE, SockOpt.KMPREANNOUNCE, SockOpt.IPV6ONLY, SockOpt.PEERIDLETIMEO,
              SockOpt.RETRANSMITALGO),
    "int64": (SockOpt.MAXBW, SockOpt.INPUTBW, SockOpt.MININPUTBW),
    "bool": (SockOpt.REUSEADDR, SockOpt.RENDEZVOUS, SockOpt.SENDER, SockOpt.TSBPDMODE, SockOpt.TLPKTDROP,
             SockOpt.NAKREPORT, SockOpt.DRIFTTRACER, SockOpt.MESSAGEAPI, SockOpt.ENFORCEDENCRYPTION),
    "string": (SockOpt.PASSPHRASE, SockOpt.STREAMID, SockOpt.CONGESTION, SockOpt.PACKETFILTER,
               SockOpt.BINDTODEVICE),
    "linger": (SockOpt.LINGER,),
    "transtype": (SockOpt.TRANSTYPE,),
}

SETTABLE: dict[str, OptionSpec] = {
    "SRTO_" + opt.name: OptionSpec("SRTO_" + opt.name, opt, kind) for kind, opts in _KINDS.items() for opt in opts
}

_MANAGED = {"SRTO_RCVSYN", "SRTO_SNDSYN"}
_READ_ONLY = {"SRTO_" + o.name for o in (SockOpt.ISN, SockOpt.STATE, SockOpt.EVENT, SockOpt.SNDDATA, SockOpt.RCVDATA,
                                         SockOpt.KMSTATE, SockOpt.VERSION, SockOpt.PEERVERSION, SockOpt.SNDKMSTATE,
                                         SockOpt.RCVKMSTATE)}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
PBKEYLENS = (0, 16, 24, 32)


def parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"not a boolean: {text!r}")


def parse_int(text: str, *, bits: int = 32, base: int = 10) -> int:
    try:
        value = int(text.strip(), base)
    except ValueError:
        raise ValueError(f"not an integer: {text!r}") from None
    limit = 1 << (bits - 1)
    if not -limit <= value < limit:
        raise ValueError(f"out of range for int{bits}: {value}")
    return value


def _convert(spec: OptionSpec, text: str) -> OptionValue:
    if spec.kind == "int32":
        value: OptionValue = parse_int(text, base=0 if spec.opt == SockOpt.MINVERSION else 10)
    elif spec.kind == "int64":
        value = parse_int(text, bits=64)
    elif spec.kind == "bool":
        value = parse_bool(text)
    elif spec.kind == "linger":
        value = parse_int(text)
    elif spec.kind == "transtype":
        low = text.strip().lower()
        names = {"live": TransType.LIVE, "file": TransType.FILE}
        value = int(names[low]) if low in names else parse_int(text)
        if value not in (TransType.LIVE, TransType.FILE):
            raise ValueError(f"not a transmission type (live, file, 0 or 1): {text!r}")
    else:
        value = text
    validate(spec, value)
    return value


def validate(spec: OptionSpec, value: OptionValue) -> None:
    """Checks libsrt would make anyway, with messages a user can act on."""
    if spec.opt == SockOpt.PASSPHRASE and isinstance(value, str) and value and not 10 <= len(value) <= 79:
        raise ValueError("a passphrase must be 10 to 79 characters long (or empty for no encryption)")
    if spec.opt == SockOpt.PBKEYLEN and value not in PBKEYLENS:
        raise ValueError(f"key length must be one of {', '.join(map(str, PBKEYLENS))}, not {value}")
    if spec.opt == SockOpt.STREAMID and isinstance(value, str) and len(value.encode()) > abi.STRING_OPTION_MAX:
        raise ValueError(f"a stream id is at most {abi.STRING_OPTION_MAX} bytes")
    if spec.opt == SockOpt.PAYLOADSIZE and isinstance(value, int) and value > abi.LIVE_MAX_PAYLOAD_SIZE:
        raise ValueError(f"live payload size is at most {abi.LIVE_MAX_PAYLOAD_SIZE} bytes")
    if spec.opt in (SockOpt.LATENCY, SockOpt.RCVLATENCY, SockOpt.PEERLATENCY, SockOpt.CONNTIMEO,
                    SockOpt.PEERIDLETIMEO) and isinstance(value, int) and value < 0:
        raise ValueError(f"must not be negative: {value}")


def spec_for(name: str) -> OptionSpec:
    key = name.strip()
    if key in _MANAGED:
        raise ValueError(f"{key}: Kiln decides blocking mode itself; remove this option")
    if key in _READ_ONLY:
        raise ValueError(f"{key}: read-only option")
    spec = SETTABLE.get(key)
    if spec is None:
        raise ValueError(f"{key}: no such SRT option")
    return spec


def parse_options(options: Mapping[str, str]) -> list[tuple[OptionSpec, OptionValue]]:
    """Validated (spec, value) pairs in the given order; ``ValueError`` names the bad key."""
    parsed: list[tuple[OptionSpec, OptionValue]] = []
    for key, text in options.items():
        spec = spec_for(key)
        try:
            parsed.append((spec, _convert(spec, str(text))))
        except ValueError as exc:
            raise ValueError(f"{spec.name}: {exc}") from None
    return parsed


def apply_option(sock: int, spec: OptionSpec, value: OptionValue) -> None:
    if spec.kind == "int32" or spec.kind == "transtype":
        libsrt.set_int(sock, spec.opt, int(value))
    elif spec.kind == "int64":
        libsrt.set_int64(sock, spec.opt, int(value))
    elif spec.kind == "bool":
        libsrt.set_bool(sock, spec.opt, bool(value))
    elif spec.kind == "linger":
        libsrt.set_linger(sock, int(value))
    else:
        libsrt.set_str(sock, spec.opt, str(value))


def apply_options(sock: int, parsed: Iterable[tuple[OptionSpec, OptionValue]]) -> None:
    for spec, value in parsed:
        apply_option(sock, spec, value)
