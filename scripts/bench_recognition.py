#!/usr/bin/env python3
"""Recognition benchmark on real music (issue 2, point 7): accuracy under damage, false
positives on unknown songs, ingest speed, query latency, index size, peak memory, and the
C spectrum kernel against numpy.

    .venv/bin/python scripts/bench_recognition.py            # the full run (~10 min)
    .venv/bin/python scripts/bench_recognition.py --quick    # a smoke run

Everything random comes from --seed: which songs are unknown, where queries are cut, the
noise and rooms. The same query positions serve every damage (a paired design), so the
differences between damages are the damage's, not the sampling's. One core, sequential.
Writes bench-out/recognition.json and bench-out/recognition.md; asserts nothing.
"""
from __future__ import annotations

import argparse
import inspect
import json
import math
import resource
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import signal

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_corpus
import bench_report
from bench_corpus import CorpusTrack
from earshot.audio.decode import Audio, decode
from earshot.testing import damage

ROOT = Path(__file__).resolve().parent.parent
UNKNOWN_DAMAGES = ("clean", "pink0", "reverb1.0", "room", "speed+5")
MIN_EXCERPT_DBFS = -60.0  # a query must hold some music, not digital silence
TOLERANCE_S = 1.0
REPEAT_SIMILARITY = 0.8  # diagnostic only: the accuracy figures never use it


# -- the engine under test: the only place that knows earshot's API ------------------------
class Engine:
    """earshot's catalog, ingest and identify, behind the three calls the benchmark makes."""

    def __init__(self, path: Path, create: bool):
        from earshot.catalog import Catalog

        self.catalog = Catalog.open(path, create=create)
        self.path = path

    def ingest(self, audio: Audio, meta: dict[str, str]) -> int:
        from earshot.ingest import ingest_audio

        call: Any = ingest_audio
        if "source" in inspect.signature(ingest_audio).parameters:
            fields = {k: v for k, v in meta.items() if k != "source"}
            outcome = call(self.catalog, audio, fields, meta["source"])
        else:
            outcome = call(self.catalog, audio, meta)
        return int(outcome.track_id)

    def identify(self, audio: Audio) -> dict[str, Any] | None:
        from earshot.identify import identify_audio

        m: Any = identify_audio(self.catalog, audio)
        if m is None:
            return None
        track = getattr(m, "track", m)
        return {"source": track.source, "title": track.title, "offset_s": float(m.offset_s),
                "confidence": float(m.confidence), "speed": float(getattr(m, "speed", 1.0))}

    def sources(self) -> set[str]:
        return {t.source for t in self.catalog.tracks()}

    def index_figures(self) -> dict[str, Any]:
        stats = self.catalog.stats()
        info, st = self.catalog.env.info(), self.catalog.env.stat()
        data = self.path / "data.mdb"
        file_bytes = data.stat().st_size
        used = (info["last_pgno"] + 1) * st["psize"]
        return {"file_bytes": file_bytes, "used_bytes": used, "hours": stats.hours,
                "postings": stats.postings, "tracks": stats.tracks,
                "mb_per_hour": file_bytes / 1e6 / stats.hours if stats.hours else float("nan")}

    def close(self) -> None:
        self.catalog.close()


# -- memory -----------------------------------------------------------------------------------
def peak_rss_mb() -> float:
    """Peak resident memory since start or the last reset (VmHWM), MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reset_peak_rss() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


# -- phases -------------------------------------------------------------------------------
def mono(audio: Audio) -> np.ndarray:
    return np.ascontiguousarray(audio.samples.mean(axis=1, dtype=np.float32))


def ingest_phase(engine: Engine, known: list[CorpusTrack]) -> dict[str, Any]:
    per_track: list[dict[str, Any]] = []
    for i, track in enumerate(known, 1):
        t0 = time.perf_counter()
        audio = decode(track.path)
        t1 = time.perf_counter()
        engine.ingest(audio, track.meta)
        t2 = time.perf_counter()
        per_track.append({"track": track.title, "audio_s": audio.duration_s,
                          "decode_s": t1 - t0, "ingest_s": t2 - t1})
        print(f"\r  ingest {i}/{len(known)} {track.title[:30]:30s}", end="", file=sys.stderr)
    print(file=sys.stderr)
    audio_s = sum(t["audio_s"] for t in per_track)
    decode_s = sum(t["decode_s"] for t in per_track)
    ingest_s = sum(t["ingest_s"] for t in per_track)
    return {"tracks": len(known), "hours": audio_s / 3600, "decode_s": decode_s,
            "ingest_s": ingest_s, "x_realtime": audio_s / ingest_s,
            "decode_x_realtime": audio_s / decode_s, "per_track": per_track}


@dataclass(frozen=True)
class Plan:
    """One query position to be cut (the start is drawn when the track is decoded)."""

    plan_id: int
    track: CorpusTrack
    length_s: float
    known: bool


def make_plans(tracks: list[CorpusTrack], lengths: list[float], n: int, seed: int,
               known: bool) -> list[Plan]:
    """n plans per length, spread round-robin over a seeded shuffle of the tracks."""
    plans = []
    for li, length in enumerate(lengths):
        eligible = [t for t in tracks if t.duration_s >= length * 1.05 + 1.0]
        order = np.random.default_rng([seed, 2 if known else 3, li]).permutation(len(eligible))
        for i in range(n):
            pid = (0 if known else 1_000_000) + li * 100_000 + i
            plans.append(Plan(pid, eligible[int(order[i % len(eligible)])], length, known))
    return plans


def draw_start(plan: Plan, x: np.ndarray, rate: int, seed: int) -> tuple[int, float]:
    """A seeded start sample where the excerpt is not silent; (start, excerpt level dBFS)."""
    rng = np.random.default_rng([seed, 4, plan.plan_id])
    span = math.ceil(plan.length_s * 1.05 * rate) + 1
    last = len(x) - span - 1
    level = -math.inf
    start = 0
    for _ in range(20):
        start = int(rng.integers(0, last + 1))
        level = 10 * math.log10(damage.power(x[start:start + span]) + 1e-30)
        if level >= MIN_EXCERPT_DBFS:
            break
    return start, level


def _log_spectrogram(x: np.ndarray, rate: int) -> np.ndarray:
    """Log magnitude, 100 Hz - 5 kHz, 46 ms frames every 23 ms (rate-independent hop)."""
    hop = round(0.023 * rate)
    f, _, z = signal.stft(x, rate, nperseg=2 * hop, noverlap=hop, boundary=None, padded=False)
    return np.log(np.abs(z[(f > 100) & (f < 5000)]) + 1e-6)


def repeat_similarity(x: np.ndarray, rate: int, start: int, offset_s: float, n: int) -> float:
    """How alike the track is at the true start and at a reported (wrong) offset: the best
    correlation of band-normalised log spectrograms within ±0.3 s. Unrelated passages of one
    track score ~0.1-0.3, the same passage ~0.98; high values mean the music repeats there
    (looped game music), so the reported offset is a plausible one."""
    hop = round(0.023 * rate)
    slack = 13 * hop
    other = round(offset_s * rate) - slack
    if other < 0 or other + n + 2 * slack > len(x):
        return float("nan")
    a = _log_spectrogram(x[start:start + n], rate)
    b = _log_spectrogram(x[other:other + n + 2 * slack], rate)
    a = a - a.mean(axis=1, keepdims=True)
    best = -1.0
    for lag in range(b.shape[1] - a.shape[1] + 1):
        w = b[:, lag:lag + a.shape[1]]
        w = w - w.mean(axis=1, keepdims=True)
        denom = math.sqrt(float(np.sum(a * a)) * float(np.sum(w * w)))
        best = max(best, float(np.sum(a * w)) / denom if denom > 0 else 0.0)
    return best


def classify(match: dict[str, Any] | None, plan: Plan, true_offset: float) -> str:
    if match is None:
        return "no_match"
    if match["source"] != str(plan.track.path):
        return "wrong_track"
    if abs(match["offset_s"] - true_offset) > TOLERANCE_S:
        return "wrong_offset"
    return "correct"


def query_phase(engine: Engine, plans: list[Plan], damages: list[str], seed: int
                ) -> list[dict[str, Any]]:
    catalogue = damage.standard_damages()
    index = {name: i for i, name in enumerate(catalogue)}
    by_track: dict[Path, list[Plan]] = defaultdict(list)
    for p in plans:
        by_track[p.track.path].append(p)
    results: list[dict[str, Any]] = []
    warmed = False
    for ti, (path, track_plans) in enumerate(sorted(by_track.items()), 1):
        audio = decode(path)
        x, rate = mono(audio), audio.sample_rate
        del audio
        if not warmed:  # first lookups fault the catalog's pages in; a daemon is warm
            engine.identify(Audio(x[: 10 * rate, None].copy(), rate))
            warmed = True
        for plan in track_plans:
            start, level = draw_start(plan, x, rate, seed)
            n = round(plan.length_s * rate)
            names = damages if plan.known else [d for d in UNKNOWN_DAMAGES if d in catalogue]
            for name in names:
                rng = np.random.default_rng([seed, 5, plan.plan_id, index[name]])
                t0 = time.perf_counter()
                q = damage.apply(catalogue[name], x, rate, start, n, rng)
                t1 = time.perf_counter()
                match = engine.identify(Audio(q[:, None], rate))
                t2 = time.perf_counter()
                true_offset = start / rate
                outcome = (classify(match, plan, true_offset) if plan.known
                           else ("false_positive" if match else "no_match"))
                similarity = (repeat_similarity(x, rate, start, match["offset_s"], n)
                              if match and outcome == "wrong_offset" else None)
                results.append({
                    "known": plan.known, "damage": name, "length_s": plan.length_s,
                    "track": plan.track.title, "source": str(plan.track.path),
                    "start_s": round(true_offset, 4), "excerpt_dbfs": round(level, 1),
                    "outcome": outcome, "repeat_similarity": similarity,
                    "matched": match["title"] if match else None,
                    "offset_s": round(match["offset_s"], 3) if match else None,
                    "confidence": round(match["confidence"], 4) if match else None,
                    "speed": match["speed"] if match else None,
                    "identify_ms": 1e3 * (t2 - t1), "damage_ms": 1e3 * (t1 - t0),
                })
        print(f"\r  queries: track {ti}/{len(by_track)}, {len(results)} queries",
              end="", file=sys.stderr)
    print(file=sys.stderr)
    return results


def kernel_fft_bench(frames: int, rng: np.random.Generator) -> dict[str, Any]:
    """The C power spectrum (es_fft_power) against numpy's rfft on the same frames."""
    from earshot.native import ffi, float_ptr, lib

    n_fft, bins = 1024, 513
    x = (rng.standard_normal((frames, n_fft)) * 0.1).astype(np.float32)
    out = np.empty((frames, bins), dtype=np.float32)
    fft = ffi.gc(lib.es_fft_new(n_fft), lib.es_fft_free)

    def c_loop() -> None:
        pin, pout = float_ptr(x), float_ptr(out)
        for i in range(frames):
            lib.es_fft_power(fft, pin + i * n_fft, pout + i * bins)

    def call_overhead() -> None:  # the same loop around a C call that does nothing
        pin, pout = float_ptr(x), float_ptr(out)
        for i in range(frames):
            _ = pin + i * n_fft, pout + i * bins
            lib.es_fft_size(fft)

    def numpy_loop() -> None:
        for i in range(frames):
            r = np.fft.rfft(x[i])
            _ = r.real * r.real + r.imag * r.imag

    def numpy_batch() -> np.ndarray:
        r = np.fft.rfft(x, axis=1)
        return r.real * r.real + r.imag * r.imag

    def best_us(fn: Any) -> float:
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return 1e6 * min(times) / frames

    c_us, loop_us, batch_us = best_us(c_loop), best_us(numpy_loop), best_us(numpy_batch)
    overhead_us = best_us(call_overhead)
    ref = numpy_batch()
    rel = float(np.max(np.abs(out - ref)) / np.max(ref))
    return {"frames": frames, "n_fft": n_fft, "c_us": c_us, "call_overhead_us": overhead_us,
            "c_kernel_us": c_us - overhead_us, "numpy_loop_us": loop_us,
            "numpy_batch_us": batch_us, "max_rel_diff": rel}


# -- main ---------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--queries", type=int, default=100, help="known queries per damage and length")
    ap.add_argument("--unknown-queries", type=int, default=100,
                    help="unknown-song queries per damage and length")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="a smoke run: few tracks and queries")
    ap.add_argument("--catalog", type=Path, help="build into (or reuse) this catalog folder")
    ap.add_argument("--damages", help="comma-separated subset of: "
                    + ",".join(damage.standard_damages()))
    ap.add_argument("--lengths", default="5,10", help="query lengths in seconds")
    ap.add_argument("--out", type=Path, default=ROOT / "bench-out")
    ap.add_argument("--fft-frames", type=int, default=20000)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    all_damages = list(damage.standard_damages())
    damages = args.damages.split(",") if args.damages else all_damages
    unknown_names = [d for d in damages if d not in all_damages]
    if unknown_names:
        print(f"unknown damage(s): {', '.join(unknown_names)}; "
              f"choose from {', '.join(all_damages)}")
        return 2
    lengths = [float(v) for v in args.lengths.split(",")]
    if args.quick:
        args.queries, args.unknown_queries, args.fft_frames = 6, 6, 2000
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    packages = bench_corpus.ensure_packages()
    corpus = bench_corpus.build_corpus(packages, args.out / "corpus")
    if not corpus:
        print("no music found: install " + " ".join(bench_corpus.PACKAGES) + " (as root)")
        return 1
    if args.quick:  # every fifth track: all three packages, a small catalog
        corpus = corpus[::5]
    known, unknown = bench_corpus.split_known_unknown(corpus, args.seed)
    print(f"corpus: {len(corpus)} tracks, {sum(t.duration_s for t in corpus) / 3600:.2f} h; "
          f"{len(known)} known, {len(unknown)} unknown", file=sys.stderr)

    tmp = None
    if args.catalog is None:
        tmp = Path(tempfile.mkdtemp(prefix="earshot-bench-"))
        catalog_dir = tmp / "catalog"
    else:
        catalog_dir = args.catalog.resolve()
    reuse = (catalog_dir / "data.mdb").exists()
    engine = Engine(catalog_dir, create=not reuse)
    report: dict[str, Any] = {"settings": {
        "seed": args.seed, "queries": args.queries, "unknown_queries": args.unknown_queries,
        "lengths_s": lengths, "damages": {n: asdict(damage.standard_damages()[n]) for n in damages},
        "unknown_damages": list(UNKNOWN_DAMAGES), "tolerance_s": TOLERANCE_S,
        "catalog": str(catalog_dir), "reused_catalog": reuse, "quick": args.quick}}
    try:
        if reuse:
            sources = engine.sources()
            if {str(t.path) for t in known} - sources or {str(t.path) for t in unknown} & sources:
                print(f"{catalog_dir}: holds other tracks than this seed's known set; "
                      "use a fresh --catalog", file=sys.stderr)
                return 2
        else:
            report["ingest"] = ingest_phase(engine, known)
        report["memory"] = {"ingest_peak_mb": peak_rss_mb()}
        reset_peak_rss()
        report["index"] = engine.index_figures()
        plans = (make_plans(known, lengths, args.queries, args.seed, True)
                 + make_plans(unknown, lengths, args.unknown_queries, args.seed, False))
        results = query_phase(engine, plans, damages, args.seed)
        report["memory"]["query_peak_mb"] = peak_rss_mb()
    finally:
        engine.close()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    report["memory"]["peak_mb"] = max(report["memory"].values())
    report["memory"]["ru_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report["kernel_fft"] = kernel_fft_bench(args.fft_frames, np.random.default_rng(args.seed))
    summarise(report, results, known, unknown, corpus, packages, damages, lengths)
    report["elapsed_s"] = time.perf_counter() - started
    report["queries"] = results

    markdown = bench_report.render_markdown(report)
    print(markdown)
    (args.out / "recognition.md").write_text(markdown)
    (args.out / "recognition.json").write_text(json.dumps(report, indent=1, default=str))
    print(f"wrote {args.out / 'recognition.json'} and recognition.md "
          f"in {report['elapsed_s']:.0f} s", file=sys.stderr)
    return 0


def summarise(report: dict[str, Any], results: list[dict[str, Any]], known: list[CorpusTrack],
              unknown: list[CorpusTrack], corpus: list[CorpusTrack], packages: list[str],
              damages: list[str], lengths: list[float]) -> None:
    hours = [sum(t.duration_s for t in ts) / 3600 for ts in (corpus, known)]
    report["corpus"] = {"packages": packages, "tracks": len(corpus), "hours": hours[0],
                        "known_tracks": len(known), "known_hours": hours[1],
                        "unknown_tracks": len(unknown),
                        "unknown": [str(t.path) for t in unknown]}
    kr = [r for r in results if r["known"]]
    ur = [r for r in results if not r["known"]]
    report["accuracy"] = bench_report.accuracy_table(kr, damages, lengths)
    wrong_offsets = [r for r in kr if r["outcome"] == "wrong_offset"]
    report["wrong_offsets"] = {"total": len(wrong_offsets), "repeats": sum(
        1 for r in wrong_offsets if (r["repeat_similarity"] or 0.0) > REPEAT_SIMILARITY)}
    fps = [r for r in ur if r["outcome"] == "false_positive"]
    report["unknown"] = {
        "queries": len(ur), "false_positives": len(fps),
        "rate_percent": 100.0 * len(fps) / len(ur) if ur else float("nan"),
        "ci95": bench_report.wilson(len(fps), len(ur)),
        "by_damage": {d: f"{sum(1 for r in fps if r['damage'] == d)}/"
                         f"{sum(1 for r in ur if r['damage'] == d)}" for d in UNKNOWN_DAMAGES},
        "examples": [{k: r[k] for k in ("track", "start_s", "damage", "length_s", "matched",
                                        "confidence")} for r in fps],
    }
    lat: dict[str, dict[str, float]] = {}
    for length in lengths:
        lat[f"{length:g} s known, all damages"] = bench_report.latency_summary(
            [r["identify_ms"] for r in kr if r["length_s"] == length])
        lat[f"{length:g} s known, clean"] = bench_report.latency_summary(
            [r["identify_ms"] for r in kr if r["length_s"] == length and r["damage"] == "clean"])
        lat[f"{length:g} s unknown songs"] = bench_report.latency_summary(
            [r["identify_ms"] for r in ur if r["length_s"] == length])
    lat10 = bench_report.latency_summary([r["identify_ms"] for r in results if r["length_s"] == 10])
    lat["10 s all queries"] = lat10
    report["latency"] = lat
    targets = bench_report.check_targets(
        report["accuracy"], report["unknown"]["rate_percent"] if ur else None,
        report["ingest"]["x_realtime"] if "ingest" in report else None,
        lat10["median_ms"] if lat10["n"] else None, report["index"]["mb_per_hour"])
    report["targets"] = [asdict(t) for t in targets]


if __name__ == "__main__":
    sys.exit(main())
