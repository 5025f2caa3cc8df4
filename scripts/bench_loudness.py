#!/usr/bin/env python3
"""Loudness benchmark: speed against pyloudnorm and ffmpeg, agreement with ffmpeg on real music.

Speed: integrated loudness + loudness range + true peak of ten minutes of 48 kHz stereo
real music (Debian game soundtracks, concatenated, 16-bit WAV), counted as the CPU time a
whole run spends on that file beyond what it spends on a ten-second file of the same music
(start-up apart, decoding included), for:
  - `earshot analyze --json --no-cache` (a subprocess, as a user runs it),
  - ffmpeg's `ebur128=peak=true` filter (a subprocess),
  - pyloudnorm (a subprocess: soundfile decode + integrated loudness; it has no LRA or
    true peak, so it does less work than the other two).
Agreement: earshot against ffmpeg on real music files, integrated within 0.1 LU, true
peak within 0.2 dB, LRA within 1 LU.

Prints a table and writes bench-out/loudness.json. Run as root to install the soundtrack
packages when missing; pyloudnorm is pip-installed into the running environment if absent.
Figures are reported, never asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from bench_corpus import PACKAGES, build_corpus, ensure_packages

OUT = ROOT / "bench-out"
PY = sys.executable
EARSHOT = [PY, "-m", "earshot"]
LONG_S, SHORT_S, RATE = 600.0, 10.0, 48000


def cpu_of(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str, str]:
    """CPU seconds (user + system) a child spends, with its stdout and stderr."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {proc.stderr.strip()[-400:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, proc.stdout, proc.stderr


def make_music_files(tracks: list, folder: Path) -> tuple[Path, Path]:
    """Ten minutes and ten seconds of 48 kHz stereo real music as 16-bit WAV."""
    long_path, short_path = folder / "music-10min-48k.wav", folder / "music-10s-48k.wav"
    if long_path.exists() and short_path.exists():
        return long_path, short_path
    pieces, total = [], 0
    for t in tracks:
        if t.sample_rate != RATE:
            continue
        data, _ = sf.read(str(t.path), dtype="float32", always_2d=True)
        if data.shape[1] != 2:
            continue
        pieces.append(data)
        total += data.shape[0]
        if total >= LONG_S * RATE:
            break
    if total < LONG_S * RATE:
        raise SystemExit("not enough 48 kHz stereo music in the corpus for ten minutes")
    music = np.concatenate(pieces)[: int(LONG_S * RATE)]
    folder.mkdir(parents=True, exist_ok=True)
    sf.write(str(long_path), music, RATE, subtype="PCM_16")
    sf.write(str(short_path), music[int(60 * RATE): int((60 + SHORT_S) * RATE)], RATE, subtype="PCM_16")
    return long_path, short_path


def ensure_pyloudnorm() -> bool:
    try:
        import pyloudnorm  # noqa: F401
        return True
    except ImportError:
        pass
    proc = subprocess.run([PY, "-m", "pip", "install", "-q", "pyloudnorm"], capture_output=True, check=False)
    return proc.returncode == 0


FFMPEG_RE = {
    "integrated_lufs": re.compile(r"Integrated loudness:\s+I:\s+(-?[\d.]+|-inf) LUFS"),
    "loudness_range_lu": re.compile(r"Loudness range:\s+LRA:\s+(-?[\d.]+) LU"),
    "true_peak_dbtp": re.compile(r"True peak:\s+Peak:\s+(-?[\d.]+|-inf) dBFS"),
}


def ffmpeg_cmd(path: Path) -> list[str]:
    return ["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-i", str(path),
            "-filter_complex", "ebur128=peak=true", "-f", "null", "-"]


def ffmpeg_values(stderr: str) -> dict[str, float | None]:
    summary = stderr[stderr.rfind("Summary:"):]
    out: dict[str, float | None] = {}
    for key, rx in FFMPEG_RE.items():
        m = rx.search(summary)
        out[key] = None if not m or m.group(1) == "-inf" else float(m.group(1))
    return out


PYLOUDNORM_SNIPPET = (
    "import sys, soundfile as sf, pyloudnorm as pyln\n"
    "x, r = sf.read(sys.argv[1], dtype='float64')\n"
    "print(pyln.Meter(r).integrated_loudness(x))\n"
)


def speed(long_path: Path, short_path: Path, repeats: int) -> dict[str, dict[str, float]]:
    """× real time of each tool: long-file CPU minus short-file CPU, best of `repeats`."""
    env = dict(os.environ, EARSHOT_STATE_DIR=str(OUT / "bench-state"))
    tools = {
        "earshot (I+LRA+TP+bands)": lambda p: EARSHOT + ["analyze", "--json", "--no-cache", str(p)],
        "ffmpeg ebur128=peak=true (I+LRA+TP)": ffmpeg_cmd,
    }
    if ensure_pyloudnorm():
        tools["pyloudnorm (I only)"] = lambda p: [PY, "-c", PYLOUDNORM_SNIPPET, str(p)]
    seconds = LONG_S - SHORT_S
    results = {}
    for name, cmd in tools.items():
        extra = []
        for _ in range(repeats):
            long_cpu = cpu_of(cmd(long_path), env)[0]
            short_cpu = cpu_of(cmd(short_path), env)[0]
            extra.append(long_cpu - short_cpu)
        best = min(extra)
        results[name] = {"cpu_s": round(best, 3), "x_realtime": round(seconds / best, 1)}
        print(f"  {name:<40} {best:7.3f} s CPU for {seconds:.0f} s of audio  "
              f"→ {seconds / best:8.1f}× real time", flush=True)
    return results


def meter_only(long_path: Path, short_path: Path, repeats: int) -> dict[str, dict[str, float]]:
    """The meter alone, in this process, on decoded audio: with the true-peak shortcut (the
    default: blocks that cannot beat the running peak are not interpolated; same result)
    and exhaustive (every sample interpolated), to show what the shortcut buys."""
    from earshot.loudness import LoudnessMeter

    def load(p: Path) -> np.ndarray:
        return sf.read(str(p), dtype="float32", always_2d=True)[0]

    audio = {"long": load(long_path), "short": load(short_path)}
    seconds = LONG_S - SHORT_S
    results = {}
    for label, exhaustive in (("meter only, in-process", False),
                              ("meter only, in-process, exhaustive true peak", True)):
        extra = []
        for _ in range(repeats):
            cpu = {}
            for key, x in audio.items():
                m = LoudnessMeter(RATE, 2, exact_seconds=LONG_S + 60, exhaustive_true_peak=exhaustive)
                t0 = time.process_time()
                for i in range(0, len(x), 1 << 16):
                    m.process(x[i:i + (1 << 16)])
                m.integrated(), m.loudness_range(), m.true_peak()
                cpu[key] = time.process_time() - t0
            extra.append(cpu["long"] - cpu["short"])
        best = min(extra)
        results[f"earshot {label}"] = {"cpu_s": round(best, 3), "x_realtime": round(seconds / best, 1)}
        print(f"  {'earshot ' + label:<40} {best:7.3f} s CPU for {seconds:.0f} s of audio  "
              f"→ {seconds / best:8.1f}× real time", flush=True)
    return results


def agreement(tracks: list, n_files: int) -> list[dict]:
    """earshot vs ffmpeg on real music files spread over the corpus."""
    step = max(1, len(tracks) // n_files)
    chosen = tracks[::step][:n_files]
    env = dict(os.environ, EARSHOT_STATE_DIR=str(OUT / "bench-state"))
    _, out, _ = cpu_of(EARSHOT + ["analyze", "--json", "--no-cache"] + [str(t.path) for t in chosen], env)
    ours = {r["file"]: r for r in map(json.loads, out.splitlines())}
    rows = []
    for t in chosen:
        theirs = ffmpeg_values(cpu_of(ffmpeg_cmd(t.path))[2])
        mine = ours[str(t.path)]
        row = {"file": t.path.name, "package": t.package, "rate": t.sample_rate}
        for key, tol in (("integrated_lufs", 0.1), ("true_peak_dbtp", 0.2), ("loudness_range_lu", 1.0)):
            a, b = mine[key], theirs[key]
            diff = None if a is None or b is None else round(a - b, 3)
            row[key] = {"earshot": a, "ffmpeg": b, "diff": diff,
                        "ok": diff is not None and abs(diff) <= tol}
        rows.append(row)
        print(f"  {t.path.name[:28]:<28} {t.sample_rate:>6}  "
              + "  ".join(f"{k.split('_')[0][:4]}: {row[k]['earshot']!s:>6} vs {row[k]['ffmpeg']!s:>6}"
                          f" ({'ok' if row[k]['ok'] else 'OFF'})"
                          for k in ("integrated_lufs", "true_peak_dbtp", "loudness_range_lu")), flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=20, help="music files for the agreement check")
    ap.add_argument("--repeats", type=int, default=3, help="speed runs per tool (best is kept)")
    args = ap.parse_args()
    packages = ensure_packages(PACKAGES)
    tracks = build_corpus(packages, OUT / "corpus")
    if not tracks:
        raise SystemExit("no music found: install the soundtrack packages (run as root)")
    print(f"corpus: {len(tracks)} tracks from {', '.join(packages)}")
    long_path, short_path = make_music_files(tracks, OUT / "loudness")
    print(f"\nspeed: I + LRA + true peak, {LONG_S / 60:.0f} min of 48 kHz stereo music (16-bit WAV), "
          f"CPU of a run on it minus a run on {SHORT_S:.0f} s:")
    speeds = speed(long_path, short_path, args.repeats)
    speeds.update(meter_only(long_path, short_path, args.repeats))
    print(f"\nagreement with ffmpeg (I ±0.1 LU, true peak ±0.2 dB, LRA ±1 LU) on {args.files} files:")
    rows = agreement(tracks, args.files)
    ok = {k: sum(r[k]["ok"] for r in rows) for k in ("integrated_lufs", "true_peak_dbtp", "loudness_range_lu")}
    worst = {k: max((abs(r[k]["diff"]) for r in rows if r[k]["diff"] is not None), default=None)
             for k in ok}
    print(f"\nwithin tolerance: I {ok['integrated_lufs']}/{len(rows)}, true peak "
          f"{ok['true_peak_dbtp']}/{len(rows)}, LRA {ok['loudness_range_lu']}/{len(rows)}; "
          f"largest differences: {worst}")
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version()},
        "speed": speeds, "audio_s": LONG_S - SHORT_S,
        "agreement": {"files": rows, "within_tolerance": ok, "largest_difference": worst},
    }
    OUT.mkdir(exist_ok=True)
    (OUT / "loudness.json").write_text(json.dumps(report, indent=1))
    print(f"report: {OUT / 'loudness.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
