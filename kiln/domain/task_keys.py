"""A task status's identity (vhost, app, id), read from the spec it was created with.

Push, record and dump statuses hold their spec once; callers that only need to know which task it
is (recovery, the read model's keys, logs) read these three without reaching into the spec.
"""

from __future__ import annotations

from typing import Protocol


class Keyed(Protocol):
    @property
    def vhost(self) -> str: ...

    @property
    def app(self) -> str: ...

    @property
    def id(self) -> str: ...


class SpecKeys:
    """Mixin for a dataclass with a ``spec`` field that names its vhost, app and id."""

    spec: Keyed  # declared again, with its own spec type, by the dataclass that mixes this in

    @property
    def vhost(self) -> str:
        return self.spec.vhost

    @property
    def app(self) -> str:
        return self.spec.app

    @property
    def id(self) -> str:
        return self.spec.id
