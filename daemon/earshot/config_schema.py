"""What the config model tree accepts, read off the pydantic models themselves.

Used to explain errors ("accepted: a number > 0 and <= 1440"), to check environment
overrides against real options, to mask secrets in `earshot config show`, and by the test
that keeps config/earshot.toml documenting every option. Nothing here knows a section by
name: a section added to `Config` is covered as soon as it exists.
"""
from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import annotated_types as at
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

# field names whose plain-string values are secrets even when not typed SecretStr
_SECRET_WORDS = ("password", "secret", "token")


def _members(annotation: Any) -> list[Any]:
    """The alternatives of a union (`X | None` gives [X, NoneType]), else [annotation]."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return [m for arg in typing.get_args(annotation) for m in _members(arg)]
    return [annotation]


def section_model(annotation: Any) -> type[BaseModel] | None:
    """The model class when a field holds a sub-section (a TOML table), else None."""
    for member in _members(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return member
    return None


def iter_options(model: type[BaseModel], prefix: tuple[str, ...] = ()
                 ) -> Iterator[tuple[tuple[str, ...], FieldInfo]]:
    """Every leaf option of the tree as (path, field), sections depth-first in declaration order."""
    for name, field in model.model_fields.items():
        sub = section_model(field.annotation)
        if sub is not None:
            yield from iter_options(sub, prefix + (name,))
        else:
            yield prefix + (name,), field


def iter_sections(model: type[BaseModel], prefix: tuple[str, ...] = ()
                  ) -> Iterator[tuple[tuple[str, ...], type[BaseModel]]]:
    """Every sub-section of the tree as (path, model class)."""
    for name, field in model.model_fields.items():
        sub = section_model(field.annotation)
        if sub is not None:
            yield prefix + (name,), sub
            yield from iter_sections(sub, prefix + (name,))


def lookup(model: type[BaseModel], path: tuple[str, ...]) -> FieldInfo | type[BaseModel] | None:
    """The field (a leaf) or the section model at `path`, or None when there is no such thing."""
    current: type[BaseModel] = model
    for i, name in enumerate(path):
        field = current.model_fields.get(name)
        if field is None:
            return None
        sub = section_model(field.annotation)
        if i == len(path) - 1:
            return sub if sub is not None else field
        if sub is None:
            return None
        current = sub
    return current


def is_secret(name: str, field: FieldInfo) -> bool:
    """A value never to be printed: typed SecretStr, or named like a password/token/secret."""
    if any(m is SecretStr for m in _members(field.annotation)):
        return True
    lowered = name.lower()
    return any(w in lowered for w in _SECRET_WORDS) and not lowered.endswith(("_file", "_path"))


def takes_text(field: FieldInfo) -> bool:
    """Whether the option's values are text (strings, paths, secrets, string choices)."""
    for member in _members(field.annotation):
        if member in (str, Path, SecretStr):
            return True
        if typing.get_origin(member) is Literal and all(isinstance(a, str) for a in typing.get_args(member)):
            return True
    return False


def _bounds(field: FieldInfo) -> str:
    low = high = ""
    for m in field.metadata:
        if isinstance(m, at.Ge):
            low = f">= {m.ge}"
        elif isinstance(m, at.Gt):
            low = f"> {m.gt}"
        elif isinstance(m, at.Le):
            high = f"<= {m.le}"
        elif isinstance(m, at.Lt):
            high = f"< {m.lt}"
    return " and ".join(b for b in (low, high) if b)


def _lengths(field: FieldInfo) -> str:
    parts = []
    for m in field.metadata:
        if isinstance(m, at.MinLen) and m.min_length:
            parts.append(f"at least {m.min_length} characters")
        elif isinstance(m, at.MaxLen):
            parts.append(f"at most {m.max_length} characters")
    return " and ".join(parts)


def _kind(annotation: Any) -> str:
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "an integer"
    if annotation is float:
        return "a number"
    if annotation is str:
        return "a string"
    if annotation is SecretStr:
        return "a string (secret)"
    if isinstance(annotation, type) and issubclass(annotation, Path):
        return "a path"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "a table"
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) if isinstance(a, str) else str(a).lower()
                                     for a in typing.get_args(annotation))
    if origin in (list, tuple, set, frozenset):
        args = typing.get_args(annotation)
        return f"a list of {_plural(_kind(args[0]))}" if args else "a list"
    if origin is dict:
        return "a table"
    return getattr(annotation, "__name__", str(annotation))


def _plural(kind: str) -> str:
    return {"an integer": "integers", "a number": "numbers", "a string": "strings",
            "a path": "paths", "true or false": "true/false values"}.get(kind, kind)


def accepted(field: FieldInfo) -> str:
    """In words, what the option accepts: 'a number > 0 and <= 1440', "one of 'single', 'dual'"."""
    members = _members(field.annotation)
    optional = type(None) in members
    kinds = [_kind(m) for m in members if m is not type(None)]
    text = " or ".join(dict.fromkeys(kinds)) or "nothing"
    for extra in (_bounds(field), _lengths(field)):
        if extra:
            text += f" {extra}" if text.startswith(("an integer", "a number")) else f" ({extra})"
    if optional:
        text += ", or unset"
    return text
