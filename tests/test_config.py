"""Configuration: lookup order, environment overrides, error messages, `earshot config`."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from earshot import config as config_mod
from earshot.cli import main
from earshot.config import Config, ConfigError, _format_errors, load_config, parse_config
from earshot.config_toml import render
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError


@pytest.fixture
def no_system_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No /etc file, no EARSHOT_* variables of the caller's shell."""
    monkeypatch.setattr(config_mod, "SYSTEM_CONFIG", tmp_path / "absent.toml")
    for name in list(__import__("os").environ):
        if name.startswith("EARSHOT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("EARSHOT_STATE_DIR", str(tmp_path / "state"))
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- where the config comes from -------------------------------------------------------

def test_defaults_when_no_file_exists(no_system_config: Path) -> None:
    assert load_config() == Config(state_dir=no_system_config / "state")


def test_system_file_is_read_when_present(no_system_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system = write(no_system_config / "system.toml", "[loudness]\nwindow_min = 3\n")
    monkeypatch.setattr(config_mod, "SYSTEM_CONFIG", system)
    assert load_config().loudness.window_min == 3


def test_earshot_config_variable_wins_over_the_system_file(no_system_config: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_mod, "SYSTEM_CONFIG", write(no_system_config / "s.toml", "[loudness]\nwindow_min = 3\n"))
    monkeypatch.setenv("EARSHOT_CONFIG", str(write(no_system_config / "e.toml", "[loudness]\nwindow_min = 4\n")))
    assert load_config().loudness.window_min == 4


def test_explicit_file_wins_over_earshot_config(no_system_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EARSHOT_CONFIG", str(write(no_system_config / "e.toml", "[loudness]\nwindow_min = 4\n")))
    explicit = write(no_system_config / "x.toml", "[loudness]\nwindow_min = 7\n")
    assert load_config(explicit).loudness.window_min == 7


def test_a_named_file_that_does_not_exist_is_an_error(no_system_config: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EARSHOT_CONFIG", str(no_system_config / "nope.toml"))
    with pytest.raises(ConfigError, match="nope.toml: configuration file not found"):
        load_config()


def test_invalid_toml_names_the_file_and_line(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.toml", "[loudness]\nwindow_min = \n")
    with pytest.raises(ConfigError, match=r"bad.toml: not valid TOML .*line 2"):
        load_config(bad, environ={})


# --- environment overrides -------------------------------------------------------------

def test_overrides_set_numbers_booleans_choices_and_paths(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path / "c.toml", "[loudness]\nwindow_min = 3\n"), environ={
        "EARSHOT_LOUDNESS__WINDOW_MIN": "5",
        "EARSHOT_RECOGNITION__SPEED_SEARCH": "false",
        "EARSHOT_LOUDNESS__MONO_MODE": "dual",
        "EARSHOT_CATALOG__PATH": "/srv/music catalog",
        "EARSHOT_CATALOG__MAP_SIZE_MB": "128",
    })
    assert cfg.loudness.window_min == 5  # the environment wins over the file
    assert cfg.recognition.speed_search is False
    assert cfg.loudness.mono_mode == "dual"
    assert cfg.catalog.path == Path("/srv/music catalog")
    assert cfg.catalog.map_size_mb == 128


def test_text_options_keep_digits_as_text_and_unquote_toml_strings(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path / "c.toml", ""), environ={
        "EARSHOT_CATALOG__PATH": "1234", "EARSHOT_LOUDNESS__MONO_MODE": '"dual"'})
    assert cfg.catalog.path == Path("1234")
    assert cfg.loudness.mono_mode == "dual"


def test_unrelated_earshot_variables_are_not_overrides(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path / "c.toml", ""), environ={
        "EARSHOT_STATE_DIR": str(tmp_path), "EARSHOT_CONFIG": "", "EARSHOT_SOMETHING": "x"})
    assert cfg == Config(state_dir=cfg.state_dir)


@pytest.mark.parametrize(("name", "expected"), [
    ("EARSHOT_NOSUCH__HOST", "EARSHOT_NOSUCH__HOST: no option nosuch.host (sections: catalog,"),
    ("EARSHOT_LOUDNESS__WINDOW", ("EARSHOT_LOUDNESS__WINDOW: no option loudness.window (options of "
                                  "[loudness]: mono_mode, window_min")),
    ("EARSHOT_LOUDNESS_WINDOW_MIN", "did you mean EARSHOT_LOUDNESS__WINDOW_MIN?"),
    ("EARSHOT_LOUDNESS__WINDOW_MIN__X", "EARSHOT_LOUDNESS__WINDOW_MIN__X: no option"),
    ("EARSHOT_LOUDNESS__", "EARSHOT_LOUDNESS__: no option"),
])
def test_an_override_naming_no_option_is_an_error_naming_the_variable(tmp_path: Path, name: str,
                                                                      expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path / "c.toml", ""), environ={name: "5"})
    assert expected in str(err.value)


def test_an_invalid_override_value_names_the_field_and_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path / "c.toml", ""), environ={"EARSHOT_LOUDNESS__WINDOW_MIN": "-5"})
    assert ("loudness.window_min: Input should be greater than 0 (got -5; accepted: a number > 0 "
            "and <= 1440; set by EARSHOT_LOUDNESS__WINDOW_MIN)") in str(err.value)


def test_a_toml_value_cannot_smuggle_in_other_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="loudness.window_min"):
        load_config(write(tmp_path / "c.toml", ""), environ={"EARSHOT_LOUDNESS__WINDOW_MIN": "5\nx = 1"})


# --- error messages --------------------------------------------------------------------

BAD = """\
[catalog]
map_size_mb = 0
pth = "x"
[loudness]
mono_mode = "tri"
window_min = "abc"
cache = "maybe"
[limits]
max_file_mb = -1
"""


def test_every_error_is_listed_with_its_path_and_what_is_accepted(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path / "bad.toml", BAD), environ={})
    lines = str(err.value).splitlines()
    assert lines[0] == f"invalid configuration in {tmp_path / 'bad.toml'}:"
    assert lines[1:] == [
        ("  catalog.map_size_mb: Input should be greater than or equal to 1 (got 0; accepted: an "
         "integer >= 1 and <= 1048576)"),
        "  catalog.pth: unknown option (did you mean path?; known in [catalog]: path, map_size_mb)",
        "  limits.max_file_mb: Input should be greater than 0 (got -1; accepted: a number > 0)",
        ("  loudness.mono_mode: Input should be 'single' or 'dual' (got 'tri'; accepted: one of "
         "'single', 'dual')"),
        ("  loudness.window_min: Input should be a valid number, unable to parse string as a number "
         "(got 'abc'; accepted: a number > 0 and <= 1440)"),
        ("  loudness.cache: Input should be a valid boolean, unable to interpret input (got 'maybe'; "
         "accepted: true or false)"),
    ]
    assert err.value.exit_code == 78


def test_an_unknown_section_and_a_scalar_section_are_reported() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"loudnes": {}, "limits": 5})
    text = str(err.value)
    assert "loudnes: unknown option (did you mean loudness?; known in the top level: state_dir, catalog" in text
    assert "limits: should be a table ([limits] section)" in text


class _Secretive(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: SecretStr | None = None
    api_token: str = ""
    password_file: Path | None = None


def test_secret_values_are_never_echoed_in_errors() -> None:
    with pytest.raises(ValidationError) as exc:
        _Secretive.model_validate({"password": 987654, "api_token": 4242, "pasword": "hunter2"})
    text = _format_errors("x.toml", exc.value, model=_Secretive)
    assert "password: Input should be a valid string (accepted: a string (secret), or unset)" in text
    assert "api_token: Input should be a valid string (accepted: a string)" in text
    assert "pasword: unknown option (did you mean password?" in text
    for secret in ("987654", "4242", "hunter2"):
        assert secret not in text


# --- earshot config show / check -------------------------------------------------------

def test_render_masks_secrets_and_notes_unset_options() -> None:
    text = render(_Secretive(password=SecretStr("hunter2"), api_token="tok", password_file=None))
    assert "hunter2" not in text and "tok\"" not in text
    assert 'password = "***"' in text and 'api_token = "***"' in text
    assert "# password_file: not set" in text
    assert 'password = ""' in render(_Secretive(password=SecretStr("")))


def test_show_prints_the_effective_config_as_toml_that_reads_back(
        no_system_config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    f = write(no_system_config / "c.toml", '[loudness]\nmono_mode = "dual"\n[catalog]\npath = "/srv/c"\n')
    monkeypatch.setenv("EARSHOT_LOUDNESS__WINDOW_MIN", "5")
    assert main(["config", "show", "--config", str(f)]) == 0
    out = capsys.readouterr().out
    assert f"# from: {f} + environment: EARSHOT_LOUDNESS__WINDOW_MIN" in out
    shown = tomllib.loads(out)
    assert shown["loudness"] == {"mono_mode": "dual", "window_min": 5.0, "cache": True}
    assert parse_config(shown) == load_config(f)


def test_show_takes_the_global_config_option_too(no_system_config: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    f = write(no_system_config / "c.toml", "[loudness]\nwindow_min = 2\n")
    assert main(["--config", str(f), "config", "show"]) == 0
    assert tomllib.loads(capsys.readouterr().out)["loudness"]["window_min"] == 2


def test_check_says_ok_and_exits_0(no_system_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write(no_system_config / "c.toml", "[loudness]\nwindow_min = 2\n")
    assert main(["config", "check", str(f)]) == 0
    assert capsys.readouterr().out == f"OK: {f}\n"


def test_check_without_a_file_checks_the_defaults(no_system_config: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check"]) == 0
    assert capsys.readouterr().out == "OK: built-in defaults (no config file)\n"


def test_check_lists_every_error_and_exits_78(no_system_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write(no_system_config / "bad.toml", BAD)
    assert main(["config", "check", str(f)]) == 78
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"earshot: invalid configuration in {f}:\n")
    assert len(captured.err.splitlines()) == 7  # the heading and the six errors


def test_check_of_a_missing_file_exits_78(no_system_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(no_system_config / "nope.toml")]) == 78
    assert "nope.toml: configuration file not found" in capsys.readouterr().err


def test_show_masks_the_mqtt_password(no_system_config: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EARSHOT_MQTT__USERNAME", "earshot")
    monkeypatch.setenv("EARSHOT_MQTT__PASSWORD", "1234hunter2")
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "1234hunter2" not in out
    mqtt = tomllib.loads(out)["mqtt"]
    assert mqtt["password"] == "***" and mqtt["username"] == "earshot"
