"""OME's rules for vhost and app JSON as domain refusals, and the pure edits of an app's config.

Validation itself is ``kiln.config.validate`` (one schema for Server.xml and the API); this module
turns its errors into ``ConfigInvalid`` and holds the body checks of the endpoints (rest-spec §5-7)
with OME's exact texts, so every aggregate of the catalog refuses in the same words.
"""

from __future__ import annotations

import copy
from typing import Any

from kiln.config.validate import ConfigError, fill_app_defaults, validate_app_json, validate_vhost_json
from kiln.domain.errors import ConfigInvalid, Invalid
from kiln.domain.settings import profiles_of as profiles_of  # beside the edits below

_BODY = "Invalid request body: "

# -- whole-request shapes --------------------------------------------------------------------------


def require_array(body: Any) -> list[Any]:
    if not isinstance(body, list):
        raise Invalid("Request body must be an array")
    return body


def require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise Invalid("Request body must be an object")
    return body


# -- vhosts and apps -------------------------------------------------------------------------------


def valid_vhost(item: Any) -> dict[str, Any]:
    """One element of POST vhosts, checked as OME checks it (apps inside included)."""
    if not isinstance(item, dict):
        raise ConfigInvalid("virtualHost must be an object")
    try:
        validate_vhost_json(item)
    except ConfigError as exc:
        raise ConfigInvalid(str(exc)) from exc
    return item


def apps_of_vhost(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Applications given inside a POST vhost body, with defaults filled like POST apps."""
    section = config.get("applications")
    if not isinstance(section, dict):
        return []
    apps = section.get("application") or []
    return [fill_app_defaults(a) for a in (apps if isinstance(apps, list) else [apps]) if isinstance(a, dict)]


def valid_new_app(item: Any) -> dict[str, Any]:
    """One element of POST apps: OME's defaults for absent sections, then the schema."""
    if not isinstance(item, dict):
        raise ConfigInvalid("application must be an object")
    return valid_app(fill_app_defaults(item))


def valid_app(config: dict[str, Any]) -> dict[str, Any]:
    try:
        validate_app_json(config)
    except ConfigError as exc:
        raise ConfigInvalid(str(exc)) from exc
    return config


def valid_app_after_profile_change(config: dict[str, Any]) -> dict[str, Any]:
    """The profile endpoints wrap a config error in an HTTP one: ``[HTTP] [Config] … (400)``."""
    try:
        return valid_app(config)
    except ConfigInvalid as exc:
        raise Invalid(f"[Config] {exc.text}") from exc


# -- output profile bodies (rest-spec §7.3-7.4) ----------------------------------------------------


def checked_profile(profile: Any) -> dict[str, Any]:
    """One element of POST outputProfiles, or the first applicable refusal."""
    if not isinstance(profile, dict) or not all(k in profile for k in ("name", "outputStreamName", "encodes")):
        raise Invalid(_BODY + '"name", "outputStreamName", "encodes" are required')
    if not isinstance(profile["name"], str) or not isinstance(profile["outputStreamName"], str) \
            or not isinstance(profile["encodes"], dict):
        raise Invalid(_BODY + '"name" must be a string and "encodes" must be an object')
    encodes = profile["encodes"]
    if "videos" not in encodes and "audios" not in encodes:
        raise Invalid(_BODY + '"encodes" must have at least one item (videos array or audios array)')
    for key in ("videos", "audios"):
        if key in encodes and not isinstance(encodes[key], list):
            raise Invalid(_BODY + f'"encodes.{key}" must be an array')
    if not encodes.get("videos") and not encodes.get("audios"):
        raise Invalid(_BODY + '"encodes" must have at least one item (videos array or audios array)'
                      " and each item must have at least one item")
    return profile


def checked_profile_patch(body: Any) -> dict[str, Any]:
    """PATCH outputProfile replaces everything but the name, which the body may not carry."""
    patch = require_object(body)
    for key in patch:
        if key.lower() == "name":
            raise Invalid(f"The {key} entry cannot be specified in the modification")
    return patch


# -- pure edits of an app's configuration ----------------------------------------------------------


def with_profiles(config: dict[str, Any], profiles: list[dict[str, Any]]) -> dict[str, Any]:
    new = copy.deepcopy(config)
    section = new.get("outputProfiles")
    section = dict(section) if isinstance(section, dict) else {}
    section["outputProfile"] = copy.deepcopy(profiles)
    new["outputProfiles"] = section
    return new


def with_profiles_added(config: dict[str, Any], added: list[dict[str, Any]]) -> dict[str, Any]:
    return with_profiles(config, profiles_of(config) + list(added))


def with_profile_replaced(config: dict[str, Any], profile: dict[str, Any]) -> dict[str, Any]:
    return with_profiles(config, [profile if p.get("name") == profile.get("name") else p
                                  for p in profiles_of(config)])


def with_profile_deleted(config: dict[str, Any], name: str) -> dict[str, Any]:
    return with_profiles(config, [p for p in profiles_of(config) if p.get("name") != name])


def merge_patch(base: Any, patch: Any) -> Any:
    """OME's PATCH merge: objects merge recursively; scalars and arrays replace; null removes."""
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_patch(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
