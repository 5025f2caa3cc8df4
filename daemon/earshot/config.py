"""earshot's configuration: one pydantic model tree, read from TOML, validated strictly.

Each part of earshot receives only its own section. Unknown keys are errors, so a typo is
never silently ignored. Files are looked up in this order: `--config FILE`, then the file
named by `$EARSHOT_CONFIG`, then `/etc/earshot/earshot.toml` when it exists, else the
built-in defaults. Environment variables `EARSHOT_<SECTION>__<KEY>` override single options
(config_env.py). Every error is listed with its field path and what is accepted.
"""
from __future__ import annotations

import difflib
import os
import re
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from . import config_schema
from .config_env import apply_overrides, find_overrides
from .errors import ConfigError

SYSTEM_CONFIG = Path("/etc/earshot/earshot.toml")
CONFIG_ENV = "EARSHOT_CONFIG"  # names the config file when --config is not given


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

    # one threshold for `identify` and the API: 1 - min_confidence is the estimated chance of
    # a coincidental match per query. 0.999, not 0.99: the null model is optimistic about
    # clustered coincidences between looped tracks (measured ~3x, worse with the query's
    # time tolerance), so the nominal rate is set where the measured rate is about 1 %
    min_confidence: float = Field(0.999, ge=0.0, le=1.0, description="matches below are 'no match'")
    speed_search: bool = Field(True, description="also try playback speeds within ±6%")


class LoudnessSection(Section):
    """Loudness metering (the daemon's meter and `earshot analyze`)."""

    mono_mode: Literal["single", "dual"] = Field(
        "single", description="one-channel input: 'single' (BS.1770 weight 1.0, as a microphone) "
        "or 'dual' (dual-mono, the same signal on two loudspeakers: +3 dB)")
    window_min: float = Field(10.0, gt=0, le=1440, description="the daemon's rolling window, minutes")
    cache: bool = Field(True, description="reuse stored analyses of the same audio")
    genres: Path | None = Field(None, description="genre baselines file; default config/genres.toml")


class ListenSection(Section):
    """The live listener (`earshot run`)."""

    input: str = Field("mic", description="'mic' (default input), 'mic:NAME' (first input device whose "
                       "name contains NAME), 'file:PATH', or '-' (raw PCM on stdin)")
    channels: int | None = Field(None, ge=1, le=8, description="channels to capture; default: up to 2 the device offers")
    hop_s: float = Field(0.25, gt=0.01, le=2.0, description="audio processed per pipeline step, seconds")
    ring_s: float = Field(10.0, ge=1.0, le=120.0, description="capture ring capacity, seconds (overruns beyond)")
    min_confidence: float = Field(0.9999, ge=0.5, le=1.0, description="a live match must be this sure at one "
                                  "evaluation (evaluated twice a second, so stricter than `identify`), then confirmed")
    window_s: float = Field(12.0, ge=3.0, le=60.0, description="seconds of evidence kept for recognition")
    lost_after_s: float = Field(10.0, ge=2.0, le=120.0, description="a song not heard this long has ended "
                                "(talking over it for less keeps it playing)")
    resume_within_s: float = Field(60.0, ge=0.0, le=3600.0, description="a song that ended unheard (drowned out, "
                                   "or paused) and is recognised again this soon, where its play could have got "
                                   "to, resumes without a second `match` event (0: every recognition is announced)")
    query_fanout: int = Field(6, ge=3, le=12, description="pairs hashed per live query peak: more finds "
                              "a damaged song sooner for more CPU and evidence memory (`identify` uses 6)")
    time_tolerance: Literal["auto", 0, 1, 2] = Field(
        "auto", description="frames (16 ms) by which the nominal speed's live query hashes may miss a "
        "pair's time gap: 'auto' starts at 0 and takes 1 while the songs announced show the room moving "
        "their peaks (room medians 16.3 / 13.6 / 16.0 -> 10.7 / 12.7 / 9.9 s on three benchmark hours); "
        "a fixed 1 recognises as soon in a room but, on a dry chain (a line-in), names a faint recording "
        "another song mixes in (7 of 8 clean captures of one hour; 0 of 24 at 0 or 'auto'); about 10 % "
        "more CPU while on (`identify` always uses 1)")
    time_tolerance_speeds: Literal["nominal", "all"] = Field(
        "nominal", description="which speed hypotheses take a fixed time tolerance: 'nominal' (songs at "
        "their own speed; about +20 % CPU at 1) or 'all' (also decks and streams off speed; about twice the "
        "CPU); 'auto' always switches the nominal speed alone")
    rarity_weight: float = Field(16.0, ge=0.0, le=64.0, description="a live hit weighs round(this / sqrt(df)) "
                                 "(1 to 16) when its hash has df postings in the catalog: rare agreements count "
                                 "for more; 0: every hit weighs 1 (`identify` uses 16)")
    silence_lufs: float = Field(-55.0, le=0.0, description="momentary loudness below which the room counts as quiet")
    loudness_interval_s: float = Field(5.0, ge=0.5, le=3600.0, description="how often a loudness event is emitted")
    health_interval_s: float = Field(60.0, ge=1.0, le=86400.0, description="how often a health event is emitted")
    stall_timeout_s: float = Field(3.0, ge=0.5, le=60.0, description="no audio for this long means the device is lost")
    retry_max_s: float = Field(30.0, ge=1.0, le=3600.0, description="longest wait between attempts to reopen a lost device")


def default_device_id() -> str:
    """This machine's host name, sanitised for MQTT topics and Home Assistant ids."""
    return sanitise_device_id(socket.gethostname())


def sanitise_device_id(name: str) -> str:
    """Lower case, `[a-z0-9_-]` only (others become `_`), at most 64 characters."""
    cleaned = re.sub(r"[^a-z0-9_-]+", "_", name.strip().lower()).strip("_-")
    return cleaned[:64] or "earshot"


# topic levels without wildcards, blanks or empty levels ("a/b", not "/a", "a/", "a/+")
TOPIC_PREFIX_PATTERN = r"^[^#+/\s]+(/[^#+/\s]+)*$"


class MqttTlsSection(Section):
    """TLS to the broker (off unless enabled or a certificate file is given)."""

    enabled: bool = Field(False, description="use TLS; the system's CA certificates verify the broker "
                          "unless ca_file is set (the host name is always checked)")
    ca_file: Path | None = Field(None, description="CA certificate(s) that signed the broker's certificate (PEM)")
    certfile: Path | None = Field(None, description="client certificate (PEM), for brokers that require one")
    keyfile: Path | None = Field(None, description="the client certificate's private key (PEM); "
                                 "default: in certfile")

    @property
    def active(self) -> bool:
        return self.enabled or self.ca_file is not None or self.certfile is not None


class MqttSection(Section):
    """Publishing to an MQTT broker, with Home Assistant discovery (off while `host` is unset)."""

    host: str | None = Field(None, min_length=1, description="broker host name or address; unset = no MQTT "
                             "(`earshot run` prints JSON lines only)")
    port: int | None = Field(None, ge=1, le=65535, description="broker port; default 1883, or 8883 with TLS")
    protocol: Literal["3.1.1", "5"] = Field("3.1.1", description="MQTT protocol version")
    client_id: str | None = Field(None, min_length=1, max_length=128,
                                  description="MQTT client id; default earshot-<device_id>")
    username: str | None = Field(None, min_length=1, description="user name at the broker")
    password: SecretStr | None = Field(None, description="password at the broker (prefer password_file "
                                       "or the systemd credential mqtt_password); never logged")
    password_file: Path | None = Field(None, description="file holding the password (first line); "
                                       "default: $CREDENTIALS_DIRECTORY/mqtt_password when systemd provides it")
    tls: MqttTlsSection = MqttTlsSection()
    base_topic: str = Field("earshot", pattern=TOPIC_PREFIX_PATTERN,
                            description="topics are <base_topic>/<device_id>/...")
    device_id: str = Field(default_factory=default_device_id, pattern=r"^[a-z0-9_-]{1,64}$",
                           description="this device's name in topics and Home Assistant ids; "
                           "default: the host name, sanitised to [a-z0-9_-]")
    discovery: bool = Field(True, description="announce the device and its entities to Home Assistant")
    discovery_prefix: str = Field("homeassistant", pattern=TOPIC_PREFIX_PATTERN,
                                  description="Home Assistant's discovery prefix")
    keepalive_s: int = Field(60, ge=5, le=3600, description="seconds between keep-alive pings; the broker "
                             "publishes the last will ('offline') after 1.5 times this without a word")
    qos: Literal[0, 1, 2] = Field(1, description="QoS of match, report and now_playing (0 gives up the "
                                  "delivery guarantee: spooled events are dropped once written to the socket)")
    spool_max_events: int = Field(10000, ge=10, le=1_000_000,
                                  description="events kept on disk while the broker is away; when full, "
                                  "the oldest superseded now_playing change goes first, then the oldest event")
    reconnect_min_s: float = Field(1.0, gt=0, le=3600, description="first wait before reconnecting")
    reconnect_max_s: float = Field(60.0, gt=0, le=3600, description="longest wait between reconnect attempts "
                                   "(the wait doubles after each failure)")
    sound_level_offset_db: float | None = Field(
        None, ge=-200, le=200, description="calibration: dB added to short-term loudness (LUFS) to estimate "
        "the room's sound level in dBA (measure with a sound level meter); unset = no sound level entity")

    @property
    def enabled(self) -> bool:
        """Whether to publish at all: a broker host is configured."""
        return self.host is not None

    @property
    def effective_port(self) -> int:
        return self.port or (8883 if self.tls.active else 1883)

    @property
    def effective_client_id(self) -> str:
        return self.client_id or f"earshot-{self.device_id}"


class Config(Section):
    """The whole configuration."""

    state_dir: Path = Field(default_factory=default_state_dir)
    catalog: CatalogSection = CatalogSection()
    limits: LimitsSection = LimitsSection()
    recognition: RecognitionSection = RecognitionSection()
    loudness: LoudnessSection = LoudnessSection()
    listen: ListenSection = ListenSection()
    mqtt: MqttSection = MqttSection()

    @property
    def catalog_path(self) -> Path:
        return self.catalog.path or (self.state_dir / "catalog")


def _format_errors(source: str, exc: ValidationError,
                   origins: dict[tuple[str, ...], str] | None = None,
                   extra_lines: list[str] | None = None,
                   model: type[BaseModel] | None = None) -> str:
    """One line per problem: field path, pydantic's message, the value given (never a
    secret's), what is accepted."""
    lines = [f"invalid configuration in {source}:"]
    lines += [f"  {line}" for line in extra_lines or []]
    for err in exc.errors():
        lines.append("  " + _explain(err, origins or {}, model or Config))
    return "\n".join(lines)


def _explain(err: Any, origins: dict[tuple[str, ...], str], model: type[BaseModel]) -> str:
    path = tuple(p for p in err["loc"] if isinstance(p, str) and not p.startswith(("function-", "lax-")))
    where = ".".join(str(p) for p in err["loc"] if isinstance(p, (str, int))
                     and not str(p).startswith(("function-", "lax-"))) or "(top level)"
    target = config_schema.lookup(model, path)
    msg, notes = err["msg"], []
    if err["type"] == "extra_forbidden":
        parent = config_schema.lookup(model, path[:-1]) if len(path) > 1 else model
        known = list(parent.model_fields) if isinstance(parent, type) else []
        close = difflib.get_close_matches(path[-1], known, n=1) if path else []
        msg = "unknown option"
        if close:
            notes.append(f"did you mean {close[0]}?")
        table = f"[{'.'.join(path[:-1])}]" if len(path) > 1 else "the top level"
        notes.append(f"known in {table}: {', '.join(known)}")
    elif err["type"] == "model_type":
        msg = f"should be a table ([{where}] section)"
    else:
        if err["type"] == "path_type":
            msg = "Input should be a path (text in quotes)"
        field = target if not isinstance(target, type) else None
        secret = field is not None and config_schema.is_secret(path[-1], field)
        value = err.get("input")
        if not secret and isinstance(value, (str, int, float, bool)):
            shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
            notes.append(f"got {shown}")
        if field is not None:
            notes.append(f"accepted: {config_schema.accepted(field)}")
    if path in origins:
        notes.append(f"set by {origins[path]}")
    return f"{where}: {msg}" + (f" ({'; '.join(notes)})" if notes else "")


def parse_config(data: dict[str, Any], source: str = "<config>",
                 environ: Mapping[str, str] | None = None) -> Config:
    """Validate a config mapping (plus environment overrides when `environ` is given).

    ConfigError lists every problem with its field path and what is accepted.
    """
    overrides, env_errors = find_overrides(environ or {}, Config)
    origins = {o.path: o.variable for o in overrides}
    try:
        config = Config.model_validate(apply_overrides(data, overrides))
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc, origins, env_errors)) from None
    if env_errors:
        raise ConfigError("\n".join([f"invalid configuration in {source}:"]
                                    + [f"  {line}" for line in env_errors]))
    return config


def config_file(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The file to read: `path` (--config), else $EARSHOT_CONFIG, else the system file if any."""
    environ = os.environ if environ is None else environ
    if path is not None:
        return Path(path)
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    return SYSTEM_CONFIG if SYSTEM_CONFIG.exists() else None


def read_config_file(path: Path) -> dict[str, Any]:
    """The TOML data of a config file; ConfigError when it is missing, unreadable or not TOML."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a configuration file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """The effective configuration: the file (see config_file), else the defaults, plus the
    environment's overrides (`environ` defaults to os.environ)."""
    environ = os.environ if environ is None else environ
    source = config_file(path, environ)
    data = read_config_file(source) if source is not None else {}
    return parse_config(data, str(source) if source else "the built-in defaults", environ)
