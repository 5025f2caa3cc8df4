"""The loudness report: measurements set against delivery references and a genre's band ranges.

Rules, not mastering advice: each rule compares one figure with a common reference and says
in words where the track sits. Genre baselines come from a TOML file (config/genres.toml by
default): a typical range per band, in dB relative to the six bands' total power.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import bands as band_defs
from .errors import ConfigError, UsageError

STREAMING_TARGET_LUFS = -14.0   # what the large streaming services normalise to
BROADCAST_TARGET_LUFS = -23.0   # EBU R128
BROADCAST_TOLERANCE_LU = 1.0    # EBU R128 s1: +-1 LU where exact normalisation is not feasible
STREAMING_TOLERANCE_LU = 1.0
TRUE_PEAK_CEILING_DBTP = -1.0   # EBU R128 / common streaming delivery ceiling
DEFAULT_GENRE = "general"


@dataclass(frozen=True)
class Genre:
    """A genre's typical band ranges (dB relative to the total)."""

    name: str
    description: str
    ranges: dict[str, tuple[float, float]]


def default_genres_path() -> Path:
    """The genre baselines: config/genres.toml of the source tree, else /etc/earshot/genres.toml."""
    candidates = [Path(__file__).resolve().parents[2] / "config" / "genres.toml",
                  Path("/etc/earshot/genres.toml")]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    return candidates[0]


def load_genres(path: Path | None = None) -> dict[str, Genre]:
    """Read genre baselines; ConfigError names the file and the problem."""
    path = Path(path) if path else default_genres_path()
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: genre baselines file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    genres = {}
    for name, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [{name}] must be a table of band ranges")
        ranges = {}
        for band in band_defs.NAMES:
            value = table.get(band)
            if (not isinstance(value, list) or len(value) != 2
                    or not all(isinstance(v, (int, float)) for v in value) or value[0] > value[1]):
                raise ConfigError(f"{path}: [{name}] {band} must be [low, high] in dB")
            ranges[band] = (float(value[0]), float(value[1]))
        genres[name] = Genre(name, str(table.get("description", "")), ranges)
    if not genres:
        raise ConfigError(f"{path}: no genres defined")
    return genres


def pick_genre(genres: dict[str, Genre], name: str | None) -> Genre:
    """The named genre (or the general profile); UsageError lists the known ones."""
    key = (name or DEFAULT_GENRE).strip().lower()
    if key not in genres:
        raise UsageError(f"unknown genre {name!r}; known genres: {', '.join(sorted(genres))}")
    return genres[key]


def _r(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def bands_report(powers: list[float] | None, genre: Genre) -> dict[str, Any]:
    """Each band's level with the genre's range and where the level sits."""
    out: dict[str, Any] = {}
    for band in band_defs.band_levels(powers):
        low, high = genre.ranges[band.name]
        status = None
        if band.level_db is not None:
            status = "below" if band.level_db < low else "above" if band.level_db > high else "within"
        out[band.name] = {
            "low_hz": band.low_hz, "high_hz": band.high_hz, "level_db": _r(band.level_db),
            "typical_db": [low, high], "status": status,
        }
    return out


def _item(check: str, status: str, message: str) -> dict[str, str]:
    return {"check": check, "status": status, "message": message}


def verdict(m: dict[str, Any], band_table: dict[str, Any], genre: Genre) -> dict[str, Any]:
    """Rule-based orientation: loudness against delivery targets, peaks, bands vs genre."""
    items = []
    i = m.get("integrated_lufs")
    if i is None:
        items.append(_item("loudness", "undefined",
                           "No integrated loudness: the audio is silent or shorter than 400 ms."))
    else:
        d = i - STREAMING_TARGET_LUFS
        if abs(d) <= STREAMING_TOLERANCE_LU:
            items.append(_item("streaming", "ok", f"{i:.1f} LUFS is at the common -14 LUFS streaming reference."))
        elif d > 0:
            items.append(_item("streaming", "louder",
                               f"{i:.1f} LUFS is {d:.1f} LU above the -14 LUFS streaming reference: "
                               f"services that normalise would turn it down by about {d:.1f} dB."))
        else:
            items.append(_item("streaming", "quieter",
                               f"{i:.1f} LUFS is {-d:.1f} LU below the -14 LUFS streaming reference: "
                               "it may play quieter than other tracks or be turned up."))
        d = i - BROADCAST_TARGET_LUFS
        if abs(d) <= BROADCAST_TOLERANCE_LU:
            items.append(_item("broadcast", "ok", f"Within {BROADCAST_TOLERANCE_LU:g} LU of the -23 LUFS broadcast target (EBU R128)."))
        else:
            word = "above" if d > 0 else "below"
            items.append(_item("broadcast", "louder" if d > 0 else "quieter",
                               f"{abs(d):.1f} LU {word} the -23 LUFS broadcast target (EBU R128)."))
    tp = m.get("true_peak_dbtp")
    if tp is not None:
        if tp > TRUE_PEAK_CEILING_DBTP:
            items.append(_item("true_peak", "over",
                               f"True peak {tp:+.1f} dBTP is above the -1 dBTP delivery ceiling: "
                               "conversion or lossy encoding may clip."))
        else:
            items.append(_item("true_peak", "ok", f"True peak {tp:+.1f} dBTP is at or under the -1 dBTP ceiling."))
    outside = [(name, b) for name, b in band_table.items() if b["status"] in ("above", "below")]
    for name, b in outside:
        low, high = b["typical_db"]
        edge = high if b["status"] == "above" else low
        items.append(_item(f"band_{name}", b["status"],
                           f"{name.replace('_', '-')} ({b['low_hz']:g}-{b['high_hz']:g} Hz) is "
                           f"{abs(b['level_db'] - edge):.1f} dB {b['status']} the typical "
                           f"{genre.name} range."))
    if not outside and any(b["status"] for b in band_table.values()):
        items.append(_item("bands", "ok", f"All six bands are within the typical {genre.name} range."))
    summary = _summary(i, tp, [name for name, _ in outside], genre)
    return {"summary": summary, "genre": genre.name, "notes": items,
            "disclaimer": "Orientation against common references, not mastering advice."}


def _summary(i: float | None, tp: float | None, bands_out: list[str], genre: Genre) -> str:
    """One line: what stands out, or that nothing does."""
    parts = []
    if i is None:
        parts.append("no integrated loudness (silent or too short)")
    else:
        d = i - STREAMING_TARGET_LUFS
        if abs(d) > STREAMING_TOLERANCE_LU:
            parts.append(f"{'louder' if d > 0 else 'quieter'} than the -14 LUFS streaming reference ({d:+.1f} LU)")
        d = i - BROADCAST_TARGET_LUFS
        if abs(d) > BROADCAST_TOLERANCE_LU:
            parts.append(f"{d:+.1f} LU from the -23 LUFS broadcast target")
    if tp is not None and tp > TRUE_PEAK_CEILING_DBTP:
        parts.append("true peak over -1 dBTP")
    if bands_out:
        names = ", ".join(b.replace("_", "-") for b in bands_out)
        parts.append(f"{names} outside the typical {genre.name} range")
    if not parts:
        return "Within the common references."
    text = "; ".join(parts) + "."
    return text[0].upper() + text[1:]
