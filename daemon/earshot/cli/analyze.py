"""`earshot analyze FILE...`: loudness, true peak, six bands and a verdict for each file.

The file is decoded block by block straight into the same LoudnessMeter the daemon uses,
so a three-hour set never has to fit in memory. Results are stored by the file's content
digest, the meter's version and the mono mode; `--no-cache` measures afresh.
"""
from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from ..analysis_cache import AnalysisCache, cache_key
from ..audio.decode import Limits, check_input_file, decode, file_digest, find_audio_files
from ..config import Config
from ..errors import AudioError, EarshotError, UsageError
from ..loudness import METER_VERSION, LoudnessMeter, Reading, Series
from ..plots import check_plot_target, numbered_paths
from ..report import Genre, bands_report, load_genres, pick_genre, verdict
from .common import Progress, config_from_args, limits_from, print_json

BLOCK_FRAMES = 1 << 16
_READ_AS = {"PCM_16": ("int16", 2.0 ** -15), "PCM_24": ("int32", 2.0 ** -31),
            "PCM_32": ("int32", 2.0 ** -31)}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "analyze", help="measure loudness (EBU R128), true peak and tonal balance of files",
        description="Integrated loudness, loudness range, true and sample peak, maximum "
        "momentary and short-term loudness, six bands against a genre's typical range, "
        "and a rule-based verdict (orientation, not mastering advice).")
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files (folders are searched)")
    p.add_argument("--genre", metavar="G", help="compare the bands with this genre (default: general)")
    p.add_argument("--json", action="store_true", help="one JSON object per file per line")
    p.add_argument("--series", action="store_true",
                   help="also momentary and short-term loudness every 10 ms (implies --json)")
    p.add_argument("--no-cache", action="store_true", help="measure again even if stored")
    p.add_argument("--plot", metavar="OUT.png",
                   help="also draw the report: loudness over time against the references, true "
                   "peak against the ceiling, the six bands against the genre's range (.png, .svg "
                   "or .pdf; with several files OUT-1.png, OUT-2.png… in order; "
                   "needs matplotlib: pip install 'earshot[plot]')")
    p.add_argument("--mono", choices=("single", "dual"),
                   help="one-channel files: as one channel or as dual-mono (+3 dB); default from config")
    p.set_defaults(handler=run)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 600 else f"{seconds / 60:.1f} min"


def _blocks(path: Path, limits: Limits) -> tuple[int, int, Iterator[np.ndarray]]:
    """(rate, channels, float32 blocks): libsndfile streams; anything else goes through decode()."""
    try:
        f = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError):
        audio = decode(path, limits)  # ffmpeg fallback; raises AudioError with the reason
        return audio.sample_rate, audio.channels, iter([audio.samples])
    if f.frames > 0 and f.frames / f.samplerate > limits.max_seconds:
        f.close()
        raise AudioError(f"{path}: {_minutes(f.frames / f.samplerate)} is over the "
                         f"{_minutes(limits.max_seconds)} input limit")

    # integer PCM is read as integers and scaled here: the same values libsndfile's float
    # conversion gives (a power-of-two scale), at a fraction of its cost
    dtype, scale = _READ_AS.get(f.subtype, ("float32", None))

    def gen() -> Iterator[np.ndarray]:
        with f:
            seen = 0
            while True:
                try:
                    raw = f.read(BLOCK_FRAMES, dtype=dtype, always_2d=True)
                except (sf.LibsndfileError, RuntimeError) as exc:
                    raise AudioError(f"{path}: the audio data is damaged ({exc})") from None
                if raw.shape[0] == 0:
                    return
                if scale is None:
                    block = raw
                else:
                    block = np.multiply(raw, np.float32(scale), dtype=np.float32)
                seen += block.shape[0]
                if seen > limits.max_seconds * f.samplerate:
                    raise AudioError(f"{path}: longer than the {_minutes(limits.max_seconds)} input limit")
                if not np.isfinite(block).all():
                    block = np.nan_to_num(block, nan=0.0, posinf=1.0, neginf=-1.0)
                yield block
    return int(f.samplerate), int(f.channels), gen()


def _r(v: float | None, digits: int = 2) -> float | None:
    return None if v is None or not math.isfinite(v) else round(v, digits)


def _series_json(parts: list[Series], step_s: float) -> dict[str, Any]:
    mom = np.concatenate([p.momentary for p in parts]) if parts else np.empty(0)
    sht = np.concatenate([p.short_term for p in parts]) if parts else np.empty(0)
    return {"step_s": step_s,
            "momentary_lufs": [_r(float(v)) for v in mom],
            "short_term_lufs": [_r(float(v)) for v in sht]}


def measure(path: Path, cfg: Config, mono_mode: str, series: bool) -> dict[str, Any]:
    """Decode and meter one file: the measurements (no verdict)."""
    limits = limits_from(cfg)
    rate, channels, blocks = _blocks(path, limits)
    try:
        # exact gating for the whole file: every 400 ms block is kept verbatim
        meter = LoudnessMeter(rate, channels, mono_mode=mono_mode,  # type: ignore[arg-type]
                              exact_seconds=limits.max_seconds + 60)
    except ValueError as exc:
        raise AudioError(f"{path}: {exc}") from None
    parts: list[Series] = []
    frames = 0
    for block in blocks:
        frames += block.shape[0]
        out = meter.process(block, series=series)
        if out is not None:
            parts.append(out)
    if frames == 0:
        raise AudioError(f"{path}: the file holds no audio samples")
    r: Reading = meter.reading("all")
    result: dict[str, Any] = {
        "duration_s": round(frames / rate, 3),
        "sample_rate": rate,
        "channels": channels,
        "integrated_lufs": _r(r.integrated_lufs),
        "loudness_range_lu": _r(r.loudness_range_lu),
        "true_peak_dbtp": _r(r.true_peak_dbtp),
        "sample_peak_dbfs": _r(r.sample_peak_dbfs),
        "max_momentary_lufs": _r(r.max_momentary_lufs),
        "max_short_term_lufs": _r(r.max_short_term_lufs),
        "true_peak_per_channel_dbtp": [_r(v) for v in r.true_peak_per_channel_dbtp],
        "sample_peak_per_channel_dbfs": [_r(v) for v in r.sample_peak_per_channel_dbfs],
        "band_powers": r.band_powers,
        "mono_mode": mono_mode if channels == 1 else None,
        "meter_version": METER_VERSION,
    }
    if series:
        result["series"] = _series_json(parts, meter.step_s)
    return result


def analyze_file(path: Path, cfg: Config, genre: Genre, *, mono_mode: str, series: bool,
                 cache: AnalysisCache | None) -> dict[str, Any]:
    """Measurements (stored or fresh) plus the bands against the genre and the verdict."""
    check_input_file(path, limits_from(cfg))
    key = cache_key(file_digest(path), mono_mode=mono_mode) if cache else ""
    stored = cache.get(key) if cache else None
    if stored is not None and (not series or "series" in stored):
        m, cached = stored, True
    else:
        m, cached = measure(path, cfg, mono_mode, series), False
        if cache:
            cache.put(key, m)
    band_table = bands_report(m.get("band_powers"), genre)
    out: dict[str, Any] = {"file": str(path)}
    out.update({k: v for k, v in m.items() if k not in ("band_powers", "series", "_key")})
    out["bands"] = band_table
    out["verdict"] = verdict(m, band_table, genre)
    out["cached"] = cached
    if series:
        out["series"] = m["series"]
    return out


def _fmt(v: float | None, unit: str, signed: bool = False) -> str:
    if v is None:
        return "—"
    return f"{v:+.1f} {unit}" if signed else f"{v:.1f} {unit}"


def human(res: dict[str, Any]) -> str:
    """A short readable report."""
    d = res["duration_s"]
    cached = "  [stored result]" if res["cached"] else ""
    head = (f"{res['file']}  ({int(d // 60)}:{d % 60:04.1f}, {res['sample_rate'] / 1000:g} kHz, "
            f"{res['channels']} ch){cached}")
    rows = [("integrated", _fmt(res["integrated_lufs"], "LUFS"),
             "loudness range", _fmt(res["loudness_range_lu"], "LU")),
            ("true peak", _fmt(res["true_peak_dbtp"], "dBTP", True),
             "sample peak", _fmt(res["sample_peak_dbfs"], "dBFS", True)),
            ("max momentary", _fmt(res["max_momentary_lufs"], "LUFS"),
             "max short-term", _fmt(res["max_short_term_lufs"], "LUFS"))]
    lines = [head] + [f"  {a:<15}{b:>12}    {c:<15}{e:>10}" for a, b, c, e in rows]
    lines.append(f"  bands vs typical {res['verdict']['genre']} range (dB of total):")
    for name, b in res["bands"].items():
        low, high = b["typical_db"]
        mark = {"above": "  ▲ above", "below": "  ▼ below"}.get(b["status"] or "", "")
        level = "—" if b["level_db"] is None else f"{b['level_db']:+6.1f}"
        lines.append(f"    {name:<9}{b['low_hz']:>6g}-{b['high_hz']:<6g}Hz {level:>7}   "
                     f"[{low:+.0f} … {high:+.0f}]{mark}")
    lines.append(f"  verdict: {res['verdict']['summary']}")
    lines += [f"    - {n['message']}" for n in res["verdict"]["notes"]]
    lines.append(f"  ({res['verdict']['disclaimer']})")
    return "\n".join(lines)


def _draw(res: dict[str, Any], picture: Path, keep_series: bool) -> None:
    """Draw the report (the series is drawn, and only printed when asked for)."""
    from ..plots import analysis_figure, save_figure

    save_figure(analysis_figure(res), picture)
    if not keep_series:
        del res["series"]
    res["plot"] = str(picture)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    if args.series:
        args.json = True  # a series is data for programs, not for reading
    genre = pick_genre(load_genres(cfg.loudness.genres), args.genre)
    mono_mode = args.mono or cfg.loudness.mono_mode
    use_cache = cfg.loudness.cache and not args.no_cache
    cache = AnalysisCache(cfg.state_dir / "analysis-cache") if use_cache else None
    files = list(find_audio_files([Path(f) for f in args.files]))
    if not files:
        raise UsageError("no audio files found in the folders given")
    pictures: list[Path | None] = [None] * len(files)
    if args.plot:
        pictures = list(numbered_paths(check_plot_target(args.plot), len(files)))
    progress = Progress(len(files), "analyzing") if len(files) > 1 and not args.json else None
    failures: list[EarshotError] = []
    for i, (path, picture) in enumerate(zip(files, pictures)):
        try:
            res = analyze_file(path, cfg, genre, mono_mode=mono_mode,
                               series=args.series or picture is not None, cache=cache)
            if picture is not None:
                _draw(res, picture, keep_series=args.series)
        except EarshotError as exc:
            failures.append(exc)
            print(f"earshot: {exc}", file=sys.stderr)
            continue
        finally:
            if progress:
                progress.step(path.name)
        if args.json:
            print_json(res, sys.stdout)
        else:
            if progress:
                progress.close()
            print(("\n" if i else "") + human(res), flush=True)
            if picture is not None:
                print(f"  picture: {picture}", flush=True)
    if progress:
        progress.close()
    if failures and len(failures) == len(files) == 1:
        return failures[0].exit_code
    return 1 if failures else 0
