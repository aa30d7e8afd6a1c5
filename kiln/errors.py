"""Errors that reach API users, carrying OME's status codes and message styles.

OME has three message shapes (rest-spec §1.7): ``[HTTP] <text> (<code>)`` for handler errors,
``[Config] <text>`` for configuration errors that escape a handler, and the raw text inside
multi-status arrays. ``ApiError`` keeps the raw text and its style; the HTTP layer formats it.
"""

from __future__ import annotations

from dataclasses import dataclass

REASONS = {
    200: "OK", 201: "Created", 204: "No Content", 207: "Multi Status", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 408: "Request Timeout", 409: "Conflict",
    413: "Payload Too Large", 431: "Request Header Fields Too Large",
    423: "Locked", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
    507: "Insufficient Storage",
}


@dataclass
class ApiError(Exception):
    status: int
    text: str
    style: str = "http"  # "http" | "config" | "raw"

    def __str__(self) -> str:
        return self.message

    @property
    def message(self) -> str:
        if self.style == "config":
            return f"[Config] {self.text}"
        if self.style == "raw":
            return self.text
        return f"[HTTP] {self.text} ({self.status})"


def config_error(text: str) -> ApiError:
    return ApiError(400, text, "config")


def vhost_not_found(vhost: str) -> ApiError:
    return ApiError(404, f"Could not find the virtual host: [{vhost}]")


def app_not_found(vhost: str, app: str) -> ApiError:
    return ApiError(404, f"Could not find the application: [{vhost}/{app}]")


def stream_not_found(vhost: str, app: str, stream: str) -> ApiError:
    return ApiError(404, f"Could not find the stream: [{vhost}/#{vhost}#{app}/{stream}]")


def read_only(vhost: str) -> ApiError:
    return ApiError(403, f"The VirtualHost is read-only: [{vhost}]")
