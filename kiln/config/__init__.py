"""Server.xml loading and defaults: OME's configuration file read into what Kiln runs.

Server-level settings become typed dataclasses; virtual hosts and applications become OME's REST
JSON so that XML-configured and API-created apps share one schema (see ``validate``).
"""

from kiln.config.errors import ConfigLoadError
from kiln.config.loader import load_default_config, load_server_xml, load_server_xml_text
from kiln.config.model import BindConfig, ModulesConfig, ServerConfig

__all__ = [
    "BindConfig",
    "ConfigLoadError",
    "ModulesConfig",
    "ServerConfig",
    "load_default_config",
    "load_server_xml",
    "load_server_xml_text",
]
