"""earshot's configuration: one pydantic model tree, read from TOML, validated strictly.

Each part of earshot receives only its own section. Unknown keys are errors, so a typo is
never silently ignored. Files are looked up in this order: `--config FILE`, then
`/etc/earshot/earshot.toml` when it exists, else the built-in defaults.
"""
from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ConfigError

SYSTEM_CONFIG = Path("/etc/earshot/earshot.toml")


def default_state_dir() -> Path:
    """Where the catalog and caches live: systemd's StateDirectory, else per user."""
    if os.environ.get("EARSHOT_STATE_DIR"):
        return Path(os.environ["EARSHOT_STATE_DIR"])
    if os.environ.get("STATE_DIRECTORY"):  # set by systemd's StateDirectory=
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    if os.geteuid() == 0:
        return Path("/var/lib/earshot")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "earshot"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CatalogSection(Section):
    """The song catalog (an LMDB environment)."""

    path: Path | None = Field(None, description="catalog folder; default <state_dir>/catalog")
    map_size_mb: int = Field(64, ge=1, le=1 << 20, description="initial map size; it grows when full")


class LimitsSection(Section):
    """Bounds on input files (the defaults admit a three-hour DJ set)."""

    max_file_mb: float = Field(2048, gt=0, description="largest input file, MB")
    max_duration_min: float = Field(240, gt=0, description="longest input, minutes")


class RecognitionSection(Section):
    """How sure a match must be before it is reported."""

    # one threshold for `identify`, the API and (later) the daemon: 1 - min_confidence is the
    # estimated chance of a coincidental match per query
    min_confidence: float = Field(0.99, ge=0.0, le=1.0, description="matches below are 'no match'")
    speed_search: bool = Field(True, description="also try playback speeds within ±6%")


class LoudnessSection(Section):
    """Loudness metering (the daemon's meter and `earshot analyze`)."""

    mono_mode: Literal["single", "dual"] = Field(
        "single", description="one-channel input: 'single' (BS.1770 weight 1.0, as a microphone) "
        "or 'dual' (dual-mono, the same signal on two loudspeakers: +3 dB)")
    window_min: float = Field(10.0, gt=0, le=1440, description="the daemon's rolling window, minutes")
    cache: bool = Field(True, description="reuse stored analyses of the same audio")
    genres: Path | None = Field(None, description="genre baselines file; default config/genres.toml")


class Config(Section):
    """The whole configuration."""

    state_dir: Path = Field(default_factory=default_state_dir)
    catalog: CatalogSection = CatalogSection()
    limits: LimitsSection = LimitsSection()
    recognition: RecognitionSection = RecognitionSection()
    loudness: LoudnessSection = LoudnessSection()

    @property
    def catalog_path(self) -> Path:
        return self.catalog.path or (self.state_dir / "catalog")


def _format_errors(source: str, exc: ValidationError) -> str:
    lines = [f"invalid configuration in {source}:"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown option (check its spelling)"
        lines.append(f"  {where}: {msg}")
    return "\n".join(lines)


def parse_config(data: dict[str, Any], source: str = "<config>") -> Config:
    """Validate a config mapping; ConfigError lists every problem with its field path."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc)) from None


def load_config(path: Path | None = None) -> Config:
    """Read and validate the configuration file (or the defaults)."""
    if path is None:
        if not SYSTEM_CONFIG.exists():
            return Config()
        path = SYSTEM_CONFIG
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    return parse_config(data, str(path))
