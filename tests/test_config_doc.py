"""config/earshot.toml documents every option of the config models with its real default.

When a section or option is added to daemon/earshot/config.py, these tests fail and print
the exact lines to add to config/earshot.toml.
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from earshot import config_schema
from earshot.config import Config, load_config, parse_config
from earshot.config_toml import toml_value
from pydantic.fields import FieldInfo

DOC = Path(__file__).resolve().parents[1] / "config" / "earshot.toml"
# a documented option: "#key = value", no space after the "#" (prose comments have one)
OPTION_LINE = re.compile(r"^#([A-Za-z0-9_-]+) = (.*)$")


@pytest.fixture
def service_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defaults as the service sees them (the file documents the service's state_dir)."""
    monkeypatch.delenv("EARSHOT_STATE_DIR", raising=False)
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/earshot")


def documented() -> tuple[dict[str, Any], list[str]]:
    """The file with every "#key = value" line switched on, parsed; and the raw lines."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    active = [OPTION_LINE.sub(r"\1 = \2", line) for line in lines]
    return tomllib.loads("\n".join(active)), lines


def _get(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return KeyError
        data = data[key]
    return data


def suggestion(path: tuple[str, ...], field: FieldInfo) -> str:
    """The block to paste into config/earshot.toml for one option."""
    default = None if field.default_factory else field.default
    lines = [f"# {field.description or 'WHAT IT DOES'}. Accepted: {config_schema.accepted(field)}."]
    if field.default_factory is not None:
        lines.append("# Default: SAY HOW IT IS CHOSEN.")
        lines.append(f"#{path[-1]} = AN EXAMPLE VALUE")
    elif default is None:
        lines.append("# Not set by default: SAY WHAT HAPPENS THEN.")
        lines.append(f"#{path[-1]} = AN EXAMPLE VALUE")
    else:
        lines.append(f"#{path[-1]} = {toml_value(default)}")
    return "\n".join(lines)


def test_every_option_is_documented_with_its_default(service_env: None) -> None:
    data, _ = documented()
    missing: dict[str, list[str]] = {}
    wrong: list[str] = []
    for path, field in config_schema.iter_options(Config):
        table = "[" + ".".join(path[:-1]) + "]" if len(path) > 1 else "(the top, before any [table])"
        value = _get(data, path)
        if value is KeyError:
            missing.setdefault(table, []).append(suggestion(path, field))
            continue
        if field.default_factory is not None or field.default is None:
            # unset by default, or computed on the machine (host name, state folder): the
            # documented value is an example; it must still validate (the next test)
            continue
        default = field.get_default()
        section = Config.model_validate(_nested(path, value))
        for key in path:
            section = getattr(section, key)
        if section != default:
            wrong.append(f"{'.'.join(path)}: documented as {toml_value(value)}, the model's default is "
                         f"{toml_value(default)}: change the line to #{path[-1]} = {toml_value(default)}")
    report = []
    if missing:
        report.append(f"{DOC} does not document these options. Add, under each table header "
                      f"(create the header if the section is new), a comment and the default "
                      f"commented out:")
        for table, blocks in missing.items():
            report.append(f"\n{table}\n" + "\n\n".join(blocks))
    if wrong:
        report.append(f"{DOC} documents other defaults than the models:\n" + "\n".join(wrong))
    if report:
        pytest.fail("\n".join(report), pytrace=False)


def _nested(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    data: Any = value
    for key in reversed(path):
        data = {key: data}
    return data


def test_documented_values_are_all_valid_options(service_env: None) -> None:
    data, _ = documented()
    parse_config(data, f"{DOC} with every option uncommented")  # unknown or invalid -> ConfigError


def test_every_documented_option_has_a_comment_above() -> None:
    _, lines = documented()
    bare = [m.group(1) for i, line in enumerate(lines) if (m := OPTION_LINE.match(line))
            and not (i > 0 and lines[i - 1].startswith("# "))]
    assert not bare, f"{DOC}: options without a comment line just above: {', '.join(bare)}"


def test_the_file_as_installed_gives_the_defaults(service_env: None) -> None:
    assert load_config(DOC, environ={}) == Config()
