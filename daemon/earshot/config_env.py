"""Environment overrides: `EARSHOT_<SECTION>__<KEY>=value` sets `[section] key = value`.

Handy in a systemd drop-in (`Environment=EARSHOT_MQTT__HOST=broker.lan`) or a container.
Deeper tables nest with more double underscores (`EARSHOT_MQTT__TLS__CA_FILE`). A value is
read as a TOML value when it is one (`5`, `2.5`, `true`, `[1, 2]`), else taken as text; for
options that take text (strings, paths, secrets, string choices) the text is taken as it is
(a password `1234` stays the string "1234"), a TOML-quoted string is unquoted.

A variable naming no option is an error that names the variable, as a typo in the file is;
`EARSHOT_MQTT_HOST` (one underscore) is caught too and answered with the right spelling.
"""
from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from . import config_schema as schema

PREFIX = "EARSHOT_"
# EARSHOT_* variables that are not overrides (one underscore, read elsewhere)
NOT_OVERRIDES = frozenset({"EARSHOT_CONFIG", "EARSHOT_STATE_DIR"})


@dataclass(frozen=True)
class Override:
    """One option set from the environment."""

    variable: str
    path: tuple[str, ...]
    value: Any


def _parse_value(text: str, field: FieldInfo) -> Any:
    try:
        parsed = tomllib.loads(f"v = {text}")
    except tomllib.TOMLDecodeError:
        return text
    if set(parsed) != {"v"}:  # "5\n[other]" must not smuggle in more keys
        return text
    value = parsed["v"]
    if schema.takes_text(field) and not isinstance(value, str):
        return text
    return value


def _near_miss(rest: str, config: type[BaseModel]) -> str | None:
    """`MQTT_HOST` for a known section `mqtt`: the spelling with `__` that was meant."""
    lowered = rest.lower()
    for path, _ in schema.iter_sections(config):
        head = path[0]
        if len(path) == 1 and lowered.startswith(head + "_") and len(lowered) > len(head) + 1:
            return f"{PREFIX}{head.upper()}__{rest[len(head) + 1:]}"
    return None


def find_overrides(environ: Mapping[str, str], config: type[BaseModel]
                   ) -> tuple[list[Override], list[str]]:
    """The overrides in `environ` and the errors (one line each, naming the variable)."""
    overrides: list[Override] = []
    errors: list[str] = []
    for name in sorted(environ):
        if not name.startswith(PREFIX) or name in NOT_OVERRIDES:
            continue
        rest = name[len(PREFIX):]
        if "__" not in rest:
            meant = _near_miss(rest, config)
            if meant:
                errors.append(f"{name}: not an option override; did you mean {meant}? "
                              f"(sections and keys are separated by two underscores)")
            continue
        path = tuple(part.lower() for part in rest.split("__"))
        target = schema.lookup(config, path) if all(path) else None
        if isinstance(target, FieldInfo):
            overrides.append(Override(name, path, _parse_value(environ[name], target)))
        elif target is not None:
            errors.append(f"{name}: [{'.'.join(path)}] is a section; name one of its options, "
                          f"e.g. {name}__{next(iter(target.model_fields)).upper()}")
        else:
            errors.append(f"{name}: no option {'.'.join(path)} ({_known(config, path)})")
    return overrides, errors


def _known(config: type[BaseModel], path: tuple[str, ...]) -> str:
    parent = schema.lookup(config, path[:-1]) if len(path) > 1 else None
    if isinstance(parent, type):
        return f"options of [{'.'.join(path[:-1])}]: {', '.join(parent.model_fields)}"
    sections = [p[0] for p, _ in schema.iter_sections(config) if len(p) == 1]
    return f"sections: {', '.join(sections)}"


def apply_overrides(data: dict[str, Any], overrides: list[Override]) -> dict[str, Any]:
    """A copy of the file's data with the overrides set (the environment wins over the file)."""
    result = _deep_copy(data)
    for o in overrides:
        table: Any = result
        for key in o.path[:-1]:
            table = table.setdefault(key, {})
            if not isinstance(table, dict):
                break  # the file has a value where a table belongs: let validation say so
        else:
            table[o.path[-1]] = o.value
    return result


def _deep_copy(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in data.items()}
