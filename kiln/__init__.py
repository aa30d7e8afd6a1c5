"""Kiln: a live-streaming server that speaks OvenMediaEngine's REST API v1."""

__version__ = "0.1.0"
OME_API_COMPATIBILITY = "0.20.0"
