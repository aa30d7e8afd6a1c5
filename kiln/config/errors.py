"""The error raised when Server.xml cannot be used at all."""

from __future__ import annotations


class ConfigLoadError(Exception):
    """Server.xml is unusable: the message names the file, the element path and what is wrong.

    Unknown elements are not errors (they become warnings); this is for things Kiln cannot guess
    around: malformed XML, a bad port, an unknown Type, a missing environment variable.
    """
