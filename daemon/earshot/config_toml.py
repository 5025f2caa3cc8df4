"""The effective configuration written back as TOML (`earshot config show`), secrets masked.

The output is itself a valid config file: options left unset appear as comments, and a
secret appears as "***" (so a copy of the output never carries a password).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from . import config_schema as schema

MASK = "***"


def toml_value(value: Any) -> str:
    """One TOML value: strings quoted and escaped, paths as strings, lists and tables inline."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, (str, Path)):
        # JSON's escapes (\" \\ \n \uXXXX) are all valid in a TOML basic string
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, (list, tuple, set, frozenset)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def _masked(value: Any) -> str:
    """"***" for a secret; an empty one stays empty (no secret set is not a secret)."""
    text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
    return MASK if text else ""


def _key(name: str) -> str:
    bare = name.replace("_", "").replace("-", "").isalnum() and name.isascii()
    return name if bare else json.dumps(name)


def render(config: BaseModel, header: str = "") -> str:
    """The whole tree as TOML text: top-level options first, then one [table] per section."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    _render_table(config, (), lines)
    return "\n".join(lines).strip("\n") + "\n"


def _render_table(model: BaseModel, path: tuple[str, ...], lines: list[str]) -> None:
    fields = type(model).model_fields
    sections = []
    for name, field in fields.items():
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            sections.append((name, value))
            continue
        if value is None:
            lines.append(f"# {_key(name)}: not set" + (f" ({field.description})" if field.description else ""))
        elif schema.is_secret(name, field) or isinstance(value, SecretStr):
            lines.append(f"{_key(name)} = {toml_value(_masked(value))}")
        else:
            lines.append(f"{_key(name)} = {toml_value(value)}")
    for name, value in sections:
        lines.append("")
        lines.append(f"[{'.'.join(_key(p) for p in path + (name,))}]")
        _render_table(value, path + (name,), lines)
