"""What actors ask of an app or vhost configuration: validation (with OME's messages) and flags.

Validation itself lives in kiln.config (one schema for Server.xml and the API); this module
turns its errors into API errors and answers the few questions actors ask of a config dict.
"""

from __future__ import annotations

from typing import Any

from kiln.config.validate import ConfigError, fill_app_defaults, validate_app_json, validate_vhost_json
from kiln.config.values import is_true
from kiln.errors import ApiError, config_error

_LEGACY_PUSH = ("rtmpPush", "srtPush", "mpegtsPush")


def _as_config_error(exc: ConfigError) -> ApiError:
    return config_error(str(exc))


def validate_vhost(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise config_error("virtualHost must be an object")
    try:
        validate_vhost_json(item)
    except ConfigError as exc:
        raise _as_config_error(exc) from exc
    return item


def apps_of_vhost(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Applications given inside a POST vhost body, with defaults filled like POST apps."""
    section = config.get("applications")
    if not isinstance(section, dict):
        return []
    apps = section.get("application") or []
    return [fill_app_defaults(a) for a in (apps if isinstance(apps, list) else [apps]) if isinstance(a, dict)]


def validate_new_app(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise config_error("application must be an object")
    return validate_app(fill_app_defaults(item))


def validate_app(config: dict[str, Any]) -> dict[str, Any]:
    try:
        validate_app_json(config)
    except ConfigError as exc:
        raise _as_config_error(exc) from exc
    return config


def publisher_enabled(config: dict[str, Any], name: str) -> bool:
    publishers = config.get("publishers")
    if not isinstance(publishers, dict):
        return False
    if name == "push":
        return any(isinstance(publishers.get(k), dict) for k in ("push", *_LEGACY_PUSH))
    return isinstance(publishers.get(name), dict)


def provider_enabled(config: dict[str, Any], name: str) -> bool:
    providers = config.get("providers")
    return isinstance(providers, dict) and isinstance(providers.get(name), dict)


def block_duplicate_stream_name(config: dict[str, Any]) -> bool:
    providers = config.get("providers")
    rtmp = providers.get("rtmp") if isinstance(providers, dict) else None
    value = rtmp.get("blockDuplicateStreamName") if isinstance(rtmp, dict) else None
    return True if value is None else is_true(value)
