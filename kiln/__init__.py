"""Kiln: a live-streaming server that speaks OvenMediaEngine's REST API v1."""

__version__ = "0.1.0"
OME_API_COMPATIBILITY = "0.20.0"

# before any compiled module can be imported: a stale or disabled extension must load from its source
from kiln.compiled import install as _install_compiled  # noqa: E402

_install_compiled()
