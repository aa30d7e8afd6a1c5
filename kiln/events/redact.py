"""Secrets out of what people read: journal records shown by ``kiln journal`` and log lines.

The journal stores everything replay needs (a push's stream key included); this module decides what
a reader sees. Pure functions over strings and payloads, no I/O, so the CLI, the actors and the
media code can all use it. Three rules:

- payload keys named in ``SECRET_KEYS`` (any nesting, any spelling: ``stream_key``, ``streamKey``,
  ``SecretKey``) have their value replaced by ``MASK``;
- in every URL (alone or inside a sentence) the userinfo password and the values of query
  parameters named in ``SECRET_QUERY`` are masked; an SRT ``streamid`` that is itself a URL is
  scrubbed the same way;
- secrets already seen (a push's stream key) are masked wherever they reappear as a whole token in
  a sentence or URL, e.g. in a push's error reason naming ``rtmp://host/app/<key>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import quote, unquote

MASK = "***"


def _norm(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


@lru_cache(maxsize=1024)
def _is_secret_key(name: object) -> bool:
    """Payloads repeat a few key names millions of times: decide each once."""
    return isinstance(name, str) and _norm(name) in SECRET_KEYS


# Event payload keys whose values are secrets, normalised by _norm. Where they occur:
#   streamkey   PushCreated.stream_key (OME ``:startPush`` streamKey)
#   secretkey   VhostCreated.config signedPolicy/admissionWebhooks secretKey (and in app settings)
#   passphrase  SRT provider/publisher passphrases in app configuration
#   password, token, accesstoken, secret  credentials in any configuration block
SECRET_KEYS = frozenset({"streamkey", "secretkey", "passphrase", "password", "token", "accesstoken", "secret"})

# Query parameters whose values are secrets (compared lower-case): SRT ``passphrase``, OME
# SignedPolicy's default ``policy``/``signature`` names, and the usual credential names.
SECRET_QUERY = frozenset({"passphrase", "signature", "policy", "sig", "token", "access_token", "key", "streamkey",
                          "stream_key", "secret", "password", "pass", "pwd", "auth"})

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+")
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#@]*):([^/?#@]*)@")


def redact_url(url: str) -> str:
    """``url`` with its password and secret query values masked; everything else byte for byte."""
    url = _USERINFO.sub(lambda m: f"{m.group(1)}{m.group(2)}:{MASK}@" if m.group(3) else m.group(0), url)
    base, sep, rest = url.partition("?")
    if not sep:
        return url
    query, hash_sep, fragment = rest.partition("#")
    parts = []
    for part in query.split("&"):
        key, eq, value = part.partition("=")
        if eq and value and key.lower() in SECRET_QUERY:
            part = f"{key}={MASK}"
        elif eq and key.lower() == "streamid":
            part = f"{key}={_redact_streamid_value(value)}"
        parts.append(part)
    return base + "?" + "&".join(parts) + hash_sep + fragment


def _redact_streamid_value(value: str) -> str:
    """A (percent-encoded) streamid inside a URL: scrubbed as a URL, re-encoded only if it changed."""
    decoded = unquote(value)
    scrubbed = redact_streamid(decoded)
    if scrubbed == decoded:
        return value
    return quote(scrubbed, safe="*") if decoded != value else scrubbed


def redact_streamid(streamid: str) -> str:
    """An SRT streamid: OME's is a URL (``srt://host/app/stream?policy=…&signature=…``), possibly
    percent-encoded; its secret query values are masked. Other streamids pass unchanged."""
    if "://" not in streamid and "%3A%2F%2F" in streamid.upper():
        decoded = unquote(streamid)
        scrubbed = redact_text(decoded)
        return streamid if scrubbed == decoded else scrubbed
    return redact_text(streamid)


def redact_push_destination(destination: str) -> str:
    """A push destination (``url`` + ``/`` + stream key): for RTMP the last path part is the stream
    key (as FFmpeg splits it); for other protocols the whole path is. Both are masked."""
    url = redact_url(destination)
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)(/[^?#]*)?(.*)$", url, re.DOTALL)
    if match is None or not match.group(3) or match.group(3) == "/":
        return url
    scheme, netloc, path, rest = match.groups()
    segments = path.strip("/").split("/")
    if scheme.lower().startswith("rtmp"):
        if len(segments) < 2:
            return url
        path = "/" + "/".join([*segments[:-1], MASK])
    else:
        path = "/" + MASK
    return f"{scheme}://{netloc}{path}{rest}"


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Free text (a log argument, an error reason): URLs scrubbed, known secrets masked as tokens."""
    text = _URL.sub(lambda m: redact_url(m.group(0)), text)
    present = [s for s in set(secrets) if s and s in text]  # a plain substring test first
    # longest first, ties by text: overlapping secrets mask the same way whatever set order found them
    for secret in sorted(present, key=lambda s: (-len(s), s)):
        text = _mask_token(text, secret)
    return text


def _mask_token(text: str, secret: str) -> str:
    """``secret`` masked where it stands as a whole token: an alphanumeric edge must not touch
    another alphanumeric, so a one-letter key masks ``…/live/f`` but not the f in ``refused``.
    (A scan with str.find: compiling a pattern per secret was most of a large journal's cost.)"""
    check_before, check_after = _is_alnum(secret[0]), _is_alnum(secret[-1])
    out, start, size = [], 0, len(secret)
    at = text.find(secret)
    while at >= 0:
        end = at + size
        if (check_before and at > 0 and _is_alnum(text[at - 1])) or \
                (check_after and end < len(text) and _is_alnum(text[end])):
            at = text.find(secret, at + 1)
            continue
        out += [text[start:at], MASK]
        start = end
        at = text.find(secret, end)
    return "".join(out) + text[start:] if out else text


def _is_alnum(char: str) -> bool:
    return char.isascii() and char.isalnum()


_ALNUM_RUN = re.compile(r"[A-Za-z0-9]+")
_SPACE = re.compile(r"\s")


@dataclass
class _SecretIndex:
    """Known secrets found in a text without testing each one: a secret can only match (as a whole
    token, see ``_mask_token``) where its longest alphanumeric run is a whole run of the text, so
    secrets are filed under that run. The few without one are tested as substrings."""

    by_run: dict[str, set[str]] = field(default_factory=dict)
    without_run: set[str] = field(default_factory=set)

    def add(self, secret: str) -> None:
        runs = _ALNUM_RUN.findall(secret)
        if runs:
            self.by_run.setdefault(max(runs, key=len), set()).add(secret)
        else:
            self.without_run.add(secret)

    def in_text(self, text: str) -> set[str]:
        found = {s for s in self.without_run if s in text}
        for run in set(_ALNUM_RUN.findall(text)):
            found |= self.by_run.get(run, set())
        return found


@dataclass
class Redactor:
    """Scrubs journal payloads for display. It remembers the values of secret keys (a push's stream
    key), so a later record that repeats one (a push error naming its destination) is masked too:
    use one per reading. URL secrets need no memory: every URL shown is scrubbed."""

    secrets: set[str] = field(default_factory=set)
    _index: _SecretIndex = field(default_factory=_SecretIndex, repr=False)

    def learn(self, payload: dict[str, object]) -> None:
        """Remember a payload's secrets without showing it (a record read but not printed)."""
        self._collect(payload)

    def payload(self, payload: dict[str, object]) -> dict[str, object]:
        self._collect(payload)
        return {key: self._scrub(item, _is_secret_key(key)) for key, item in payload.items()}

    def text(self, text: str) -> str:
        return redact_text(text, self._index.in_text(text))

    def _collect(self, value: object, secret: bool = False) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                self._collect(item, secret or _is_secret_key(key))
        elif isinstance(value, list | tuple):
            for item in value:
                self._collect(item, secret)
        elif isinstance(value, str) and value and secret and value not in self.secrets:
            self.secrets.add(value)
            self._index.add(value)

    def _scrub(self, value: object, secret: bool = False) -> object:
        if isinstance(value, dict):
            return {key: self._scrub(item, secret or _is_secret_key(key))
                    for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self._scrub(item, secret) for item in value]
        if isinstance(value, str):
            if secret and value:
                return MASK
            # known secrets are looked for in sentences and URLs, not in names: a key that happens
            # to equal an app or stream name must not hide that name
            prose = "://" in value or _SPACE.search(value) is not None
            return self.text(value) if prose else redact_text(value)
        return value
