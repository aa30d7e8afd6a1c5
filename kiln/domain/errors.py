"""Why the domain refused a command. ``kiln.http.errors`` maps each kind to OME's status code.

The text is OME's own wording for that refusal (rest-spec), so the HTTP layer only adds the
envelope; ``style`` says which of OME's message shapes the text takes.
"""

from __future__ import annotations


class DomainError(Exception):
    """A command the domain refuses. Subclasses name the kind of refusal."""

    style = "http"  # "http": ``[HTTP] text (code)``; "config": ``[Config] text``; "raw": the text alone

    def __init__(self, text: str, *, style: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        if style is not None:
            self.style = style


class Invalid(DomainError):
    """The command's body or values are not acceptable (400)."""


class ConfigInvalid(Invalid):
    """A configuration value is not acceptable; OME says ``[Config] …`` (400)."""

    style = "config"


class NotFound(DomainError):
    """What the command names does not exist (404)."""


class ReadOnly(DomainError):
    """The entity comes from the configuration file and cannot change through the API (403)."""


class Forbidden(DomainError):
    """The app does not enable what the command needs (OME's bare 403 ``Forbidden``, e.g. no Schedule provider)."""

    style = "raw"


class Conflict(DomainError):
    """The command would create something that already exists (409)."""


class Failed(DomainError):
    """The command is well formed but cannot be carried out; OME answers 500 for these."""


class NotJournaled(Failed):
    """The journal cannot keep the command's events: a value it cannot store (nothing changed), or a write that
    failed and stopped it (500, in the journal's words)."""

    def __init__(self, why: str) -> None:
        super().__init__(f"Could not journal the command: {why}")


class Unreachable(DomainError):
    """A remote source the command depends on cannot be reached (502)."""
