"""The one table from the domain's refusals to OME's status codes (rest-spec §1.7).

The domain says *why* it refused (``NotFound``, ``Conflict``…) in OME's words; HTTP alone knows
which status code each kind of refusal carries.
"""

from __future__ import annotations

from kiln.domain.errors import (
    Conflict,
    DomainError,
    Failed,
    Forbidden,
    Invalid,
    NotFound,
    ReadOnly,
    Unreachable,
)
from kiln.errors import ApiError

STATUS: dict[type[DomainError], int] = {
    Invalid: 400,
    ReadOnly: 403,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Failed: 500,
    Unreachable: 502,
}


def status_of(exc: DomainError) -> int:
    """The status of the most specific kind in the table (``ConfigInvalid`` is an ``Invalid``)."""
    for kind in type(exc).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 500


def api_error(exc: DomainError) -> ApiError:
    return ApiError(status_of(exc), exc.text, exc.style)


def item_text(exc: DomainError) -> str:
    """The message of one refused element of a multi-status answer: OME writes the bare text
    there, except configuration errors, which keep their ``[Config]`` prefix (rest-spec §1.8)."""
    return f"[Config] {exc.text}" if exc.style == "config" else exc.text
