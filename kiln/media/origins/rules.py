"""A vhost's ``Origins`` (media spec §4.1–4.2): which URLs a requested ``/<app>/<stream>`` pulls from.

Pure: the vhost's OME JSON in, a :class:`Resolved` (URLs, the pull's properties, the rule that
matched) out. Values may be strings (Server.xml) or JSON types (the API), as everywhere in the
configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kiln.config.values import as_int, is_true

SCHEMES = ("ovt", "rtsp")
DEFAULT_NO_INPUT_MS = 3000
DEFAULT_UNUSED_MS = 60000
DEFAULT_RETRY_COUNT = 1
DEFAULT_FAILBACK_MS = 3000


@dataclass(frozen=True)
class OriginRule:
    location: str
    scheme: str
    urls: tuple[str, ...]
    forward_query: bool = True
    strict: bool = False
    persistent: bool = False
    failback: bool = False  # <Failback>: go back to the first URL once it answers again
    relay: bool | None = None  # <Relay> when given (OME: true for ovt unless set, false otherwise)

    def matches(self, location: str) -> bool:
        return location == self.location if self.strict else location.startswith(self.location)

    def urls_for(self, location: str, query: str) -> list[str]:
        rest = location[len(self.location):]
        out = []
        for url in self.urls:
            base, _, own_query = url.partition("?")
            full = f"{self.scheme}://{base}{rest}"
            if own_query:
                full += "?" + own_query
            if self.forward_query and query:
                full += ("&" if "?" in full else "?") + query
            out.append(full)
        return out


@dataclass(frozen=True)
class Resolved:
    urls: list[str]
    properties: dict[str, Any]  # a pull's ``properties`` (OME's API names)
    cause: str                  # for the journal: which rule


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def parse_rules(origins: Any) -> list[OriginRule]:
    """Every usable ``Origin``, in file order; one with an unknown scheme or no URL is left out."""
    if not isinstance(origins, dict):
        return []
    rules = []
    for origin in _list(origins.get("origin")):
        if not isinstance(origin, dict):
            continue
        found = origin.get("pass")
        passing: dict[str, Any] = found if isinstance(found, dict) else {}
        scheme = str(passing.get("scheme") or "").lower()
        urls_node = passing.get("urls")
        raw_urls = _list(urls_node.get("url")) if isinstance(urls_node, dict) else _list(urls_node)
        urls = tuple(str(u).strip() for u in raw_urls if isinstance(u, str) and u.strip())
        location = str(origin.get("location") or "")
        if scheme not in SCHEMES or not urls or not location.startswith("/"):
            continue
        forward = passing.get("forwardQueryParams")
        rules.append(OriginRule(location, scheme, urls, forward is None or is_true(forward),
                                is_true(origin.get("strictLocation")), is_true(origin.get("persistent")),
                                is_true(origin.get("failback")), _relay(origin.get("relay"))))
    return rules


def _relay(value: Any) -> bool | None:
    """``<Relay>``: None when not given (OME then relays OVT pulls only)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return is_true(value)


def pull_properties(origins: Any, persistent: bool, failback: bool = False,
                    relay: bool | None = None) -> dict[str, Any]:
    """``Origins/Properties`` as a pull's properties (defaults: OME's); ``failback`` and ``relay`` are the
    Origin's own."""
    props = origins.get("properties") if isinstance(origins, dict) else None
    props = props if isinstance(props, dict) else {}
    out = {"persistent": persistent,
           "noInputFailoverTimeoutMs": as_int(props.get("noInputFailoverTimeout"), DEFAULT_NO_INPUT_MS),
           "unusedStreamDeletionTimeoutMs": as_int(props.get("unusedStreamDeletionTimeout"), DEFAULT_UNUSED_MS),
           "retryCount": as_int(props.get("retryCount"), DEFAULT_RETRY_COUNT)}
    if failback:
        out["failback"] = True
        out["streamFailbackTimeoutMs"] = as_int(props.get("streamFailbackTimeout"), DEFAULT_FAILBACK_MS)
    if relay is not None:
        out["relay"] = relay
    return out


def resolve(origins: Any, app: str, stream: str, query: str = "") -> Resolved | None:
    """The first matching Origin's URLs for ``/<app>/<stream>``, or None (then OriginMapStore, then 404)."""
    location = f"/{app}/{stream}"
    for rule in parse_rules(origins):
        if rule.matches(location):
            return Resolved(rule.urls_for(location, query),
                            pull_properties(origins, rule.persistent, rule.failback, rule.relay),
                            f"Origins rule location={rule.location} scheme={rule.scheme}")
    return None
