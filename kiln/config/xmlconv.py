"""Server.xml elements → OME's REST JSON, following the element table in ``schema``.

Leaf values stay strings, as OME echoes them for XML-loaded config (rest-spec §1.12). Unknown
elements are reported with their full path and left out, so one typo does not stop the server.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kiln.config.errors import ConfigLoadError
from kiln.config.schema import Node, json_key

log = logging.getLogger(__name__)

# OME syntax: ${env:NAME} or ${env:NAME:default}; other ${...} macros (${OriginStreamName}) are left alone.
_ENV_REF = re.compile(r"\$\{env:([^}:]*)(?::([^}]*))?\}")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def substitute_env(text: str, environ: Mapping[str, str], where: str) -> str:
    """Expand ``${env:...}`` references; ``where`` ("file: element path") goes into the error."""

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if not _ENV_NAME.match(name):
            raise ConfigLoadError(f"{where}: invalid environment variable name '{name}' in {match.group(0)}")
        value = environ.get(name)
        if value is not None:
            return value
        if default is None:
            raise ConfigLoadError(f"{where}: environment variable {name} is not set and {match.group(0)} "
                                  f"has no default (write ${{env:{name}:default}} to give one)")
        return default

    return _ENV_REF.sub(replace, text)


def substitute_tree(elem: ET.Element, path: str, environ: Mapping[str, str], source: str) -> None:
    """Expand env references in every text and attribute below ``elem`` (in place)."""
    where = f"{source}: {path}"
    if elem.text and "${env:" in elem.text:
        elem.text = substitute_env(elem.text, environ, where)
    for name, value in elem.attrib.items():
        if "${env:" in value:
            elem.attrib[name] = substitute_env(value, environ, f"{where}@{name}")
    for child in elem:
        substitute_tree(child, f"{path}.{child.tag}", environ, source)


def generic(elem: ET.Element) -> Any:
    """Convert an element nobody modelled: text if it has no children, repeated tags become lists."""
    children = list(elem)
    if not children:
        text = (elem.text or "").strip()
        return text if text else {}
    out: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for child in children:
        counts[child.tag] = counts.get(child.tag, 0) + 1
    for child in children:
        key = json_key(child.tag)
        if counts[child.tag] > 1:
            out.setdefault(key, []).append(generic(child))
        else:
            out[key] = generic(child)
    return out


@dataclass
class Converter:
    """Walks one XML tree; collects warnings instead of failing on things it can ignore."""

    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        log.debug("config warning %s", message)

    def convert(self, elem: ET.Element, node: Node, path: str) -> Any:
        if node.kind == "open":
            return generic(elem)
        if node.kind == "leaf":
            if len(elem):
                self.warn(f"Element {path} holds text, child elements "
                          f"{', '.join(sorted({c.tag for c in elem}))} ignored")
            return (elem.text or "").strip()
        text = (elem.text or "").strip()
        if text:
            self.warn(f"Text '{text}' in element {path} ignored (it holds elements, not text)")
        if node.kind == "wrap":
            assert node.item is not None
            items: list[Any] = []
            for child in elem:
                if child.tag != node.item.tag:
                    self.warn(f"Unknown element {path}.{child.tag} ignored")
                    continue
                items.append(self.convert(child, node.item.node, f"{path}.{child.tag}"))
            return items
        out: dict[str, Any] = {}
        for child in elem:
            child_path = f"{path}.{child.tag}"
            spec = node.by_tag.get(child.tag)
            if spec is None:
                self.warn(f"Unknown element {child_path} ignored")
                continue
            value = self.convert(child, spec.node, child_path)
            if spec.many:
                out.setdefault(spec.key, []).append(value)
                continue
            if spec.key in out:
                self.warn(f"Element {child_path} repeated; the last one is used")
            out[spec.key] = value
        return out
