"""Body checks of the output-profile endpoints, with OME's messages (rest-spec §7.3–7.4)."""

from __future__ import annotations

from typing import Any

from kiln.errors import ApiError

_PREFIX = "Invalid request body: "


def check_profile_body(profile: Any) -> None:
    """Raise the first applicable 400 for one element of POST outputProfiles."""
    if not isinstance(profile, dict) or not all(k in profile for k in ("name", "outputStreamName", "encodes")):
        raise ApiError(400, _PREFIX + '"name", "outputStreamName", "encodes" are required')
    if not isinstance(profile["name"], str) or not isinstance(profile["outputStreamName"], str) \
            or not isinstance(profile["encodes"], dict):
        raise ApiError(400, _PREFIX + '"name" must be a string and "encodes" must be an object')
    encodes = profile["encodes"]
    if "videos" not in encodes and "audios" not in encodes:
        raise ApiError(400, _PREFIX + '"encodes" must have at least one item (videos array or audios array)')
    for key in ("videos", "audios"):
        if key in encodes and not isinstance(encodes[key], list):
            raise ApiError(400, _PREFIX + f'"encodes.{key}" must be an array')
    if not encodes.get("videos") and not encodes.get("audios"):
        raise ApiError(400, _PREFIX + '"encodes" must have at least one item (videos array or audios array)'
                       " and each item must have at least one item")


def check_patch_profile_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be an object")
    for key in body:
        if key.lower() == "name":
            raise ApiError(400, f"The {key} entry cannot be specified in the modification")
    return body
