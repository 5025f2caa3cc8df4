#!/usr/bin/env python3
"""Recognition on music and damages that no other benchmark or study uses: a hold-out.

`bench_recognition.py` and `study_fingerprint.py` are where earshot's constants were
chosen, so their figures may flatter it. This checks that what they measure carries over:
three other Debian packages (`drascula-music`: an adventure game's CD soundtrack;
`asc-music`: three long MP3 pieces; `planetblupi-music-ogg`: ten long loops), half of their
tracks added to the 10-hour live catalog and half kept out as unknown songs, queried at
seeded positions under some of the benchmark's damages and under damages it never applies:
a hall (RT60 2 s, 8 m away), a phone line (300-3400 Hz, Opus at 12 kb/s), a tiny loudspeaker
in a quiet room, hard clipping, a fast 6:1 compressor, four people talking (babble at 0 dB),
a very quiet 16-bit capture, speeds between and beyond the matcher's hypotheses, tempo
changed without pitch and pitch without tempo (a player's time-stretch), the room mix off
speed.

Use it to check a change, never to choose a constant: tuned on, it stops being a hold-out.

    .venv/bin/python scripts/bench_unseen.py            # ~8 min once the catalogs exist

Writes bench-out/unseen.json and unseen.md. Needs the 10-hour catalog that `make bench`
(or `make bench-live`) builds in bench-out/catalog-10h; builds it when missing.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import signal

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_corpus
from bench_corpus import CorpusTrack
from bench_queries import SHARED_RECORDING, mono_at, waveform_correlation
from earshot.audio.decode import Audio, decode
from earshot.audio.resample import mix_mono
from earshot.catalog import Catalog
from earshot.identify import identify_audio
from earshot.testing import damage

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench-out"
UNSEEN_PACKAGES = ("drascula-music", "asc-music", "planetblupi-music-ogg")
SPLIT_SEED = 2026        # which half of the packages' tracks is known (also bench_live --music unseen)
LENGTHS_S = (10, 5)
TOLERANCE_S = 1.0
WAVEFORM_RATE = 16000    # the shared-recording test's rate
Query = Callable[[np.ndarray, int, int, int, np.random.Generator], np.ndarray]


# -- damages the other benchmarks never apply ---------------------------------------------------
def ffmpeg_filter(x: np.ndarray, rate: int, chain: str) -> np.ndarray:
    pcm = np.ascontiguousarray(x, dtype="<f4").tobytes()
    out = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-f", "f32le", "-ar", str(rate), "-ac", "1",
                          "-i", "-", "-af", chain, "-f", "f32le", "-ac", "1", "-ar", str(rate), "-"],
                         input=pcm, capture_output=True, check=True).stdout
    return np.frombuffer(out, dtype="<f4").copy()


def bandpass(x: np.ndarray, rate: int, lo_hz: float, hi_hz: float) -> np.ndarray:
    sos = signal.butter(6, [lo_hz, hi_hz], btype="bandpass", fs=rate, output="sos")
    return signal.sosfilt(sos, np.asarray(x, dtype=np.float64)).astype(np.float32)


def compressor(x: np.ndarray, threshold_db: float = -30.0, ratio: float = 6.0) -> np.ndarray:
    """A feed-forward compressor on a ~10 ms power envelope (a loudness-war master, a radio)."""
    env = signal.lfilter([0.01], [1.0, -0.99], np.asarray(x, dtype=np.float64) ** 2)
    level = 10.0 * np.log10(np.maximum(env, 1e-12))
    gain_db = np.where(level > threshold_db, (threshold_db - level) * (1.0 - 1.0 / ratio), 0.0)
    return (x * 10.0 ** (gain_db / 20.0)).astype(np.float32)


def then(name: str, post: Callable[[np.ndarray, int, np.random.Generator], np.ndarray]) -> Query:
    """A standard damage, then `post` on the excerpt."""
    base = damage.standard_damages()[name]
    return lambda t, r, s, n, rng: post(damage.apply(base, t, r, s, n, rng), r, rng)


def standard(name: str, **changes: Any) -> Query:
    d = damage.standard_damages()[name]
    d = replace(d, **changes) if changes else d
    return lambda t, r, s, n, rng: damage.apply(d, t, r, s, n, rng)


def tempo(factor: float) -> Query:
    """Played `factor` times as fast with the pitch kept (ffmpeg's atempo)."""
    return lambda t, r, s, n, rng: ffmpeg_filter(t[s:s + int(n * factor) + r], r, f"atempo={factor}")[:n]


def pitch(semitones: float) -> Query:
    """Transposed with the tempo kept (resampled faster, then stretched back)."""
    k = 2.0 ** (semitones / 12.0)
    return lambda t, r, s, n, rng: ffmpeg_filter(
        t[s:s + n + r], r, f"asetrate={round(r * k)},aresample={r},atempo={1.0 / k:.6f}")[:n]


def clipped(x: np.ndarray, r: int, rng: np.random.Generator) -> np.ndarray:
    y = x / (float(np.max(np.abs(x))) + 1e-9) * 10.0 ** (12.0 / 20.0)   # 12 dB past full scale
    return np.clip(y, -1.0, 1.0).astype(np.float32)


def phone(x: np.ndarray, r: int, rng: np.random.Generator) -> np.ndarray:
    return damage.lossy_roundtrip(bandpass(x, r, 300.0, 3400.0), r, "opus", 12)


def tiny_speaker(x: np.ndarray, r: int, rng: np.random.Generator) -> np.ndarray:
    y = bandpass(x, r, 450.0, 5000.0)
    return damage.add_noise(y, damage.pink_noise(len(y), r, rng), 10.0).astype(np.float32)


def babble(x: np.ndarray, r: int, rng: np.random.Generator) -> np.ndarray:
    voices = sum(damage.talk_over(len(x), r, rng) for _ in range(4))
    return (x + damage.scale_to_snr(x, voices, 0.0)).astype(np.float32)


def quiet_16bit(x: np.ndarray, r: int, rng: np.random.Generator) -> np.ndarray:
    return (np.round(x * 10.0 ** (-45.0 / 20.0) * 32767.0) / 32767.0).astype(np.float32)


HALL = damage.Damage("hall", room=damage.Room(rt60_s=2.0, volume_m3=400.0, distance_m=8.0))
DAMAGES: dict[str, Query] = {
    # the benchmark's own, for comparison on this music
    "clean": standard("clean"),
    "pink0": standard("pink0"),
    "reverb1.0": standard("reverb1.0"),
    "room": standard("room"),
    "talk0": standard("talk0"),
    # never applied elsewhere
    "hall RT60 2 s, 8 m": lambda t, r, s, n, rng: damage.apply(HALL, t, r, s, n, rng),
    "phone line, Opus 12k": then("clean", phone),
    "tiny speaker + pink 10": then("clean", tiny_speaker),
    "clipped 12 dB": then("clean", clipped),
    "compressed 6:1": then("clean", lambda x, r, rng: compressor(x)),
    "babble of 4, 0 dB": then("clean", babble),
    "-45 dB, 16-bit": then("clean", quiet_16bit),
    "speed +3.5 %": standard("clean", speed=1.035),
    "speed -1 %": standard("clean", speed=0.99),
    "speed +7 %": standard("clean", speed=1.07),
    "tempo +3 % (pitch kept)": tempo(1.03),
    "tempo -6 % (pitch kept)": tempo(0.94),
    "pitch +1 semitone": pitch(1.0),
    "room at speed +2 %": standard("room", speed=1.02),
}
UNKNOWN_DAMAGES = ("clean", "pink0", "room", "phone line, Opus 12k", "babble of 4, 0 dB",
                   "tempo +3 % (pitch kept)", "pitch +1 semitone")


# -- the music ------------------------------------------------------------------------------
def unseen_corpus() -> list[CorpusTrack]:
    """The packages' tracks, each recording once (drascula-music ships one copy a language)."""
    packages = bench_corpus.ensure_packages(UNSEEN_PACKAGES)
    seen: set[str] = set()
    tracks = []
    for t in bench_corpus.build_corpus(packages, OUT / "corpus"):
        digest = hashlib.sha1(t.path.read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            tracks.append(t)
    return tracks


def split(tracks: list[CorpusTrack], seed: int) -> tuple[list[CorpusTrack], list[CorpusTrack]]:
    """Half of each package's tracks known, half unknown (seeded)."""
    rng = np.random.default_rng([seed, 77])
    known, unknown = [], []
    for package in sorted({t.package for t in tracks}):
        mine = [t for t in tracks if t.package == package]
        order = rng.permutation(len(mine))
        for rank, i in enumerate(order):
            (known if rank % 2 == 0 else unknown).append(mine[int(i)])
    return known, unknown


def ensure_catalog(path: Path, known: list[CorpusTrack], seed: int) -> dict[str, Any]:
    """The 10-hour live catalog plus the known unseen tracks (built once, compacted)."""
    marker = path.parent / (path.name + ".json")
    want = sorted(str(t.path) for t in known)
    if marker.exists() and (path / "data.mdb").exists() and bench_corpus.catalog_opens(path):
        info = json.loads(marker.read_text())
        if info.get("unseen_known") == want:
            return info
    base_corpus = bench_corpus.build_corpus(bench_corpus.ensure_packages(), OUT / "corpus")
    base_known, base_unknown = bench_corpus.split_known_unknown(base_corpus, seed)
    base = OUT / "catalog-10h"
    if path.resolve() == base.resolve():
        raise SystemExit(f"{path} is the catalog the hold-out's is copied from: give it another --catalog")
    bench_corpus.ensure_large_catalog(base, base_known, base_unknown, OUT / "corpus")
    if path.exists():
        shutil.rmtree(path)
    shutil.copytree(base, path)
    print(f"adding {len(known)} unseen tracks to a copy of {base} ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "earshot", "ingest", "--catalog", str(path), "-q",
                    *want], check=True)
    info = bench_corpus.catalog_figures(path)
    info["unseen_known"] = want
    info["packages"] = [*json.loads((OUT / "catalog-10h.json").read_text()).get("packages", []), *UNSEEN_PACKAGES]
    marker.write_text(json.dumps(info, indent=1))
    return info


# -- the queries ----------------------------------------------------------------------------
def run(catalog: Catalog, known: list[CorpusTrack], unknown: list[CorpusTrack], seed: int,
        per_known: int, per_unknown: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng([seed, 78])
    results = []
    for kind, tracks, per in (("known", known, per_known), ("unknown", unknown, per_unknown)):
        for track in tracks:
            audio = decode(track.path)
            x, rate = mix_mono(audio.samples).astype(np.float32), audio.sample_rate
            for name, make in DAMAGES.items():
                if kind == "unknown" and name not in UNKNOWN_DAMAGES:
                    continue
                for length in LENGTHS_S:
                    for _ in range(per):
                        n = length * rate
                        # room for the slowest damage to read 1.1 x the excerpt, and a reverb's lead
                        start = int(rng.uniform(rate, max(rate + 1, len(x) - (1.1 * length + 3) * rate)))
                        q = make(x, rate, start, n, rng)
                        t0 = time.process_time()
                        m = identify_audio(catalog, Audio(q[:, None], rate))
                        cpu_ms = (time.process_time() - t0) * 1e3
                        right_track = m is not None and Path(m.track.source).resolve() == track.path.resolve()
                        results.append({
                            "kind": kind, "damage": name, "length_s": length, "track": str(track.path),
                            "start_s": round(start / rate, 3), "cpu_ms": round(cpu_ms, 2),
                            "named": None if m is None else {"source": m.track.source, "title": m.track.title,
                                                             "offset_s": round(m.offset_s, 2),
                                                             "confidence": m.confidence},
                            "right_track": right_track,
                            "right": right_track and abs(m.offset_s - start / rate) <= TOLERANCE_S})
    return results


def shared(r: dict[str, Any]) -> float | None:
    """Waveform correlation of an unknown query's source at its place with the track named."""
    named = r["named"]
    try:
        # at one rate (the test's band ends at 3.6 kHz): the packages' tracks are 22.05-48 kHz
        x, y = mono_at(Path(r["track"]), WAVEFORM_RATE), mono_at(Path(named["source"]), WAVEFORM_RATE)
    except Exception:  # noqa: BLE001 - a diagnostic
        return None
    corr = waveform_correlation(x, round(r["start_s"] * WAVEFORM_RATE), y, named["offset_s"], WAVEFORM_RATE,
                                r["length_s"] * WAVEFORM_RATE)
    return None if np.isnan(corr) else round(corr, 3)


def report(results: list[dict[str, Any]], info: dict[str, Any], known: list[CorpusTrack],
           unknown: list[CorpusTrack]) -> str:
    cells: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        if r["kind"] == "known":
            cells[(r["damage"], r["length_s"])].append(r)
    hours = sum(t.duration_s for t in known) / 3600
    lines = ["# Recognition on unseen music and damages (scripts/bench_unseen.py)", "",
             (f"Catalog: {info['tracks']} tracks, {info['hours']:.1f} h (the 10-hour live catalog plus "
             f"{len(known)} unseen tracks, {hours:.1f} h); {len(unknown)} unseen tracks kept out. "
             f"Packages: {', '.join(UNSEEN_PACKAGES)}."), "",
             ("Right: the track and its place (within 1 s). The looping tracks (planetblupi's ten are "
             "loops repeated for 10-29 minutes) are often named at another turn of their loop, hence "
             "the right track's column."), "",
             "| damage | 10 s right | 5 s right | right track (10 / 5 s) | wrong track | 10 s median CPU |",
             "|---|---|---|---|---|---|"]
    for name in DAMAGES:
        row = {L: cells.get((name, L), []) for L in LENGTHS_S}
        if not row[10]:
            continue

        def pct(rs: list[dict[str, Any]]) -> str:
            return f"{100.0 * sum(r['right'] for r in rs) / len(rs):.0f} % ({sum(r['right'] for r in rs)}/{len(rs)})"

        other = " / ".join(f"{100.0 * sum(r['right_track'] for r in row[L]) / len(row[L]):.0f} %" for L in LENGTHS_S)
        wrong = sum(1 for L in LENGTHS_S for r in row[L] if r["named"] and not r["right_track"])
        lines.append(f"| {name} | {pct(row[10])} | {pct(row[5])} | {other} | {wrong} | "
                     f"{np.median([r['cpu_ms'] for r in row[10]]):.0f} ms |")
    unk = [r for r in results if r["kind"] == "unknown"]
    named = [r for r in unk if r["named"]]
    coincidences = [r for r in named if r.get("waveform_corr") is not None and r["waveform_corr"] < SHARED_RECORDING]
    untested = [r for r in named if r.get("waveform_corr") is None]
    lines += ["", (f"Unknown songs: {len(named)} of {len(unk)} queries named a catalog track "
              f"({100.0 * len(named) / max(1, len(unk)):.2f} %); {len(coincidences)} of them not the same "
              f"recording by the waveform test (correlation < {SHARED_RECORDING}): "
              f"{100.0 * len(coincidences) / max(1, len(unk)):.2f} %; {len(untested)} untested (the place "
              "named runs past a track's end, or a track would not decode).")]
    for r in named:
        lines.append(f"- {Path(r['track']).name} at {r['start_s']} s ({r['damage']}, {r['length_s']} s) named "
                     f"\"{r['named']['title']}\" at {r['named']['offset_s']} s, confidence "
                     f"{r['named']['confidence']:.6f}, waveform correlation {r.get('waveform_corr')}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1, help="the main benchmark's split seed (its catalog)")
    ap.add_argument("--query-seed", type=int, default=SPLIT_SEED, help="the split and the queries' places")
    ap.add_argument("--per-known", type=int, default=4, help="queries a known track, damage and length")
    ap.add_argument("--per-unknown", type=int, default=3, help="queries an unknown track, damage and length")
    ap.add_argument("--catalog", type=Path, default=OUT / "catalog-unseen")
    args = ap.parse_args(argv)
    if shutil.which("ffmpeg") is None:
        raise SystemExit("bench_unseen needs ffmpeg (apt-get install ffmpeg)")
    tracks = unseen_corpus()
    if not tracks:
        raise SystemExit(f"none of {', '.join(UNSEEN_PACKAGES)} could be installed")
    known, unknown = split(tracks, args.query_seed)
    info = ensure_catalog(args.catalog, known, args.seed)
    t0 = time.perf_counter()
    with Catalog.open(args.catalog, readonly=True) as catalog:
        results = run(catalog, known, unknown, args.query_seed, args.per_known, args.per_unknown)
    for r in results:
        if r["kind"] == "unknown" and r["named"]:
            r["waveform_corr"] = shared(r)
    text = report(results, info, known, unknown)
    OUT.mkdir(exist_ok=True)
    (OUT / "unseen.md").write_text(text)
    (OUT / "unseen.json").write_text(json.dumps({"catalog": {k: v for k, v in info.items() if k != "sources"},
                                                 "known": [str(t.path) for t in known],
                                                 "unknown": [str(t.path) for t in unknown],
                                                 "results": results, "wall_s": time.perf_counter() - t0}))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
