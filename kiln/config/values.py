"""Reading OME config values that arrive as XML text (``"true"``, ``"128000"``) or as JSON values.

One place for the leniency, so Server.xml apps and API-created apps read the same way everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def is_true(value: object) -> bool:
    """OME booleans: JSON ``true`` or the XML text ``true`` (any case)."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def number(value: object) -> float | None:
    """A finite number from text or JSON; None when it is not one (booleans and empty text are not)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str) or value == "":
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if result == result and abs(result) != float("inf") else None


def as_float(value: object, default: float = 0.0) -> float:
    found = number(value)
    return default if found is None else found


def as_int(value: object, default: int = 0) -> int:
    found = number(value)
    return default if found is None else int(found)


def publisher_section(app_config: object, name: str) -> dict[str, Any] | None:
    """An app's ``Publishers/<name>`` section (``llhls``, ``hls``, ``thumbnail``…); None when the app
    does not enable that publisher (absent, or not an object)."""
    publishers = app_config.get("publishers") if isinstance(app_config, dict) else None
    section = publishers.get(name) if isinstance(publishers, dict) else None
    return section if isinstance(section, dict) else None


@dataclass(frozen=True)
class AudioLabel:
    """One ``AudioMap`` item: how the input's audio track at its position is shown to players (LL-HLS
    ``EXT-X-MEDIA`` NAME, LANGUAGE, CHARACTERISTICS). OME matches items to audio tracks by order."""

    name: str
    language: str = ""
    characteristics: str = ""


def audio_labels(value: object) -> tuple[AudioLabel, ...]:
    """The items of an ``AudioMap``, in order: a Server.xml/API provider's ``{"item": [...]}`` (one item may
    arrive as a lone object) or a schedule's JSON list. Items that are not objects are skipped; a missing
    field is empty, as OME leaves it."""
    items: object = value.get("item") if isinstance(value, dict) else value
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        return ()
    return tuple(AudioLabel(_text(item.get("name")), _text(item.get("language")), _text(item.get("characteristics")))
                 for item in items if isinstance(item, dict))


def _text(value: object) -> str:
    if isinstance(value, str):
        return value.strip()
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else ""
