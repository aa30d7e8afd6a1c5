"""The ``properties`` of a pull request (rest-spec §8.2), with OME's type and default quirks."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

DEFAULT_RETRIES = 2  # when neither the request nor the config says (OME: <Origins><Properties>)
DEFAULT_FAILBACK_MS = 3000  # OME's <Origins><Properties><StreamFailbackTimeout> default


@dataclass(frozen=True)
class PullProperties:
    persistent: bool = False
    no_input_failover_timeout_ms: int = -1
    unused_stream_deletion_timeout_ms: int = -1
    ignore_rtcp_sr_timestamp: bool = False
    retry_count: int = -1
    # an Origin's <Failback> and its vhost's <StreamFailbackTimeout> (OME's API takes neither)
    failback: bool = False
    stream_failback_timeout_ms: int = -1
    relay: bool | None = None  # an Origin's <Relay> when given (None: OME's default, true for OVT only)

    @property
    def retries(self) -> int:
        return DEFAULT_RETRIES if self.retry_count < 0 else self.retry_count

    @property
    def failback_interval_s(self) -> float:
        """How often the first URL is probed while a later one streams (OME: at most once per timeout)."""
        ms = self.stream_failback_timeout_ms
        return (ms if ms > 0 else DEFAULT_FAILBACK_MS) / 1000

    def as_json(self) -> dict[str, Any]:
        names = {"no_input_failover_timeout_ms": "noInputFailoverTimeoutMs",
                 "unused_stream_deletion_timeout_ms": "unusedStreamDeletionTimeoutMs",
                 "ignore_rtcp_sr_timestamp": "ignoreRtcpSRTimestamp", "retry_count": "retryCount",
                 "stream_failback_timeout_ms": "streamFailbackTimeoutMs"}
        out = {names.get(k, k): v for k, v in asdict(self).items()}
        if not self.failback:  # only an Origins pull has them: an API pull's record stays as it was
            del out["failback"], out["streamFailbackTimeoutMs"]
        if self.relay is None:
            del out["relay"]
        return out


def _typed(props: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = props.get(key)
    if kind is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else default
    return value if isinstance(value, bool) else default


def parse_pull_properties(body: dict[str, Any], origins: bool = False) -> PullProperties:
    """Wrong types are ignored silently; a present object without an int retryCount means 1 retry.
    ``failback``/``streamFailbackTimeoutMs``/``relay`` are read only from an Origins pull (``origins``) or the
    journal: OME's ``POST …/streams`` has no such properties, so an API body's are ignored as OME ignores them."""
    props = body.get("properties")
    if not isinstance(props, dict):
        return PullProperties()
    return PullProperties(
        persistent=_typed(props, "persistent", bool, False),
        no_input_failover_timeout_ms=_typed(props, "noInputFailoverTimeoutMs", int, -1),
        unused_stream_deletion_timeout_ms=_typed(props, "unusedStreamDeletionTimeoutMs", int, -1),
        ignore_rtcp_sr_timestamp=_typed(props, "ignoreRtcpSRTimestamp", bool, False),
        retry_count=_typed(props, "retryCount", int, 1),
        failback=origins and _typed(props, "failback", bool, False),
        stream_failback_timeout_ms=_typed(props, "streamFailbackTimeoutMs", int, -1) if origins else -1,
        relay=_typed(props, "relay", bool, None) if origins else None,
    )


def properties_from_json(data: dict[str, Any]) -> PullProperties:
    """Back from the journal (PullDefined.properties)."""
    return parse_pull_properties({"properties": data}, origins=True) if data else PullProperties()
