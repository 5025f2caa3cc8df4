#!/usr/bin/env python3
"""Compare fingerprint formats on development music, never on the benchmark's own songs.

`bench_recognition.py` reports how earshot does; this is for choosing what to change
first. Known queries come from the 10-hour catalog's extra soundtracks (`EXTRA_PACKAGES`:
catalogued, but never queried by the benchmark); unknown queries from the benchmark's
unknown songs, at positions drawn from this study's own seed. Every variant is a catalog
of the same tracks built with its fingerprint parameters (`--out`/NAME, built once and
compacted, about two minutes each; a variant of the query side alone reads the current
catalog), so all of them meet the same background.

    .venv/bin/python scripts/study_fingerprint.py \\
        --variant 'anchor24={"catalog_hash": {"f1_per_octave": 24}, "query_hash": {"f1_per_octave": 24}}'

prints, per variant: right answers per damage and length, false positives, right answers
at equal false positives (each variant at the loosest threshold where it has no more
false positives than the current format at the default one), 10 s median query times with
their ratio to the current format's (same process, one after the other), and index size.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_corpus  # noqa: E402
from bench_recognition import fingerprint_params  # noqa: E402
from earshot.audio.decode import Audio, decode  # noqa: E402
from earshot.audio.resample import mix_mono, resample  # noqa: E402
from earshot.catalog import Catalog  # noqa: E402
from earshot.errors import CatalogError  # noqa: E402
from earshot.fingerprint import DEFAULT_PARAMS  # noqa: E402
from earshot.identify import DEFAULT_MIN_CONFIDENCE, recognise_audio  # noqa: E402
from earshot.ingest import ingest_file  # noqa: E402
from earshot.testing import damage  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RATE = DEFAULT_PARAMS.sample_rate
DAMAGES = "room,reverb1.0,reverb0.5,pink0,pink5,white0,clean,room@0.98,pink10@1.045,talk0"
UNKNOWN_DAMAGES = ("clean", "pink5", "room", "reverb1.0", "pink0")
THRESHOLDS = (1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6, 1e-7)
TOLERANCE_S = 1.0


def parse_damage(spec: str) -> damage.Damage:
    """A standard damage by name, or NAME@SPEED: the same at another playback speed."""
    name, _, speed = spec.partition("@")
    base = damage.standard_damages()[name]
    return replace(base, name=spec, speed=float(speed)) if speed else base


def variant_catalog(folder: Path, overrides: str, sources: list[str]) -> Path:
    """The catalog of `sources` under these fingerprint parameters, built once."""
    params = fingerprint_params(overrides or None)
    if (folder / "data.mdb").exists():
        try:
            Catalog.open(folder, readonly=True, params=params).close()
            return folder
        except CatalogError as exc:
            raise SystemExit(f"{exc} (a variant named alike before? remove {folder})") from None
    print(f"building {folder} ({len(sources)} tracks) ...", file=sys.stderr)
    t0 = time.perf_counter()
    with Catalog.open(folder, create=True, params=params, map_size=1 << 30) as cat:
        for source in sources:
            ingest_file(cat, Path(source))
        cat.compact()
    print(f"  {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return folder


def draw_queries(dev: list[str], unknown: list[bench_corpus.CorpusTrack], damages: list[damage.Damage],
                 per_cell: int, n_unknown: int, seed: int, rate: int = RATE) -> tuple[list[tuple], list[tuple]]:
    """Known queries (damage, length, source, offset_s, samples) from the development tracks
    and unknown ones (length, source, samples), mono at `rate` (the fingerprint's unless
    --rate says otherwise)."""
    rng = np.random.default_rng([seed, 17])

    def load(path: str) -> np.ndarray:
        audio = decode(Path(path))
        return resample(mix_mono(audio.samples), audio.sample_rate, rate)

    picks = rng.choice(len(dev), min(40, len(dev)), replace=False)
    signals = {int(i): load(dev[i]) for i in picks}
    known = []
    for d in damages:
        for length in (10.0, 5.0):
            for _ in range(per_cell):
                i = int(picks[rng.integers(len(picks))])
                x, n = signals[i], int(length * rate)
                start = int(rng.integers(rate * 2, len(x) - int(n * d.speed) - rate - 1))
                known.append((d.name, length, dev[i], start / rate, damage.apply(d, x, rate, start, n, rng)))
    standard = damage.standard_damages()
    unknowns = []
    for j in range(n_unknown):
        track = unknown[j % len(unknown)]
        x, length = load(str(track.path)), (10, 5)[j % 2]
        n = length * rate
        start = int(rng.integers(rate * 2, len(x) - n - rate))
        d = standard[UNKNOWN_DAMAGES[(j // 2) % len(UNKNOWN_DAMAGES)]]
        unknowns.append((length, str(track.path), damage.apply(d, x, rate, start, n, rng)))
    return known, unknowns


def run_variant(folder: Path, overrides: str, known: list[tuple], unknowns: list[tuple], rate: int = RATE
                ) -> dict[str, Any]:
    """Every query identified once: (right, p) for the known ones, p for the unknown ones."""
    params = fingerprint_params(overrides or None)
    with Catalog.open(folder, readonly=True, params=params) as cat:
        ids = {t.source: t.track_id for t in cat.tracks()}
        hours = cat.stats().hours
        recognise_audio(cat, Audio(samples=known[0][4][:, None], sample_rate=rate))   # warm
        k_out, u_out, k_ms, u_ms = [], [], [], []
        for name, length, source, offset_s, y in known:
            t0 = time.perf_counter()
            c = recognise_audio(cat, Audio(samples=y[:, None], sample_rate=rate)).candidate
            if length == 10.0:
                k_ms.append(1000 * (time.perf_counter() - t0))
            right = c is not None and c.track.track_id == ids[source] and abs(c.offset_s - offset_s) <= TOLERANCE_S
            k_out.append((name, length, bool(right), 1.0 - c.confidence if c else 1.0))
        for length, source, y in unknowns:
            t0 = time.perf_counter()
            c = recognise_audio(cat, Audio(samples=y[:, None], sample_rate=rate)).candidate
            if length == 10:
                u_ms.append(1000 * (time.perf_counter() - t0))
            u_out.append((Path(source).name, c.track.title if c else None, 1.0 - c.confidence if c else 1.0))
    size = sum(f.stat().st_size for f in folder.iterdir())
    return {"known": k_out, "unknown": u_out, "known_ms": float(np.median(k_ms)),
            "unknown_ms": float(np.median(u_ms)), "index_mb": size / 1e6, "hours": hours}


def summary(results: dict[str, dict[str, Any]]) -> str:
    default_p = 1.0 - DEFAULT_MIN_CONFIDENCE
    first = next(iter(results.values()))

    def at(r: dict[str, Any], t: float) -> tuple[int, int]:
        return (sum(ok and p <= t for _, _, ok, p in r["known"]), sum(p <= t for _, _, p in r["unknown"]))

    budget = at(first, default_p)[1]
    lines = [f"{len(first['known'])} known queries, {len(first['unknown'])} unknown; threshold p <= {default_p:g}", "",
             "| variant | index MB (per hour) | right | false positives | right at <= "
             f"{budget} false positives (p) | 10 s known / unknown ms (× first) |", "|---|---|---|---|---|---|"]
    for name, r in results.items():
        right, fp = at(r, default_p)
        fair = [(t, *at(r, t)) for t in THRESHOLDS if at(r, t)[1] <= budget]
        eq = f"{fair[0][1]} ({fair[0][0]:g})" if fair else "-"
        lines.append(f"| {name} | {r['index_mb']:.1f} ({r['index_mb'] / r['hours']:.2f}) | {right} | {fp} | {eq} | "
                     f"{r['known_ms']:.1f} / {r['unknown_ms']:.1f} ({r['known_ms'] / first['known_ms']:.2f} / "
                     f"{r['unknown_ms'] / first['unknown_ms']:.2f}) |")
    cells = sorted({(n, length) for n, length, _, _ in first["known"]}, key=lambda c: (c[0], -c[1]))
    lines += ["", "| damage, length | " + " | ".join(results) + " |", "|---|" + "---|" * len(results)]
    for n, length in cells:
        counts = [sum(ok and p <= default_p for m, ln, ok, p in r["known"] if (m, ln) == (n, length))
                  for r in results.values()]
        total = sum(1 for m, ln, _, _ in first["known"] if (m, ln) == (n, length))
        lines.append(f"| {n}, {length:g} s | " + " | ".join(f"{c}/{total}" for c in counts) + " |")
    lines.append("")
    for name, r in results.items():
        named = [f"{q} → {t}" for q, t, p in r["unknown"] if p <= default_p]
        lines.append(f"false positives, {name}: {', '.join(named) or 'none'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=JSON",
                    help="fingerprint overrides (as bench_recognition's --fingerprint); "
                         "the current format is always compared first, as 'current'")
    ap.add_argument("--seed", type=int, default=71, help="query positions (not the benchmark's)")
    ap.add_argument("--queries", type=int, default=40, help="known queries per damage and length")
    ap.add_argument("--unknown", type=int, default=200, help="unknown queries")
    ap.add_argument("--damages", default=DAMAGES, help="standard damage names, NAME@SPEED for a speed change")
    ap.add_argument("--out", type=Path, default=ROOT / "bench-out" / "study")
    ap.add_argument("--rate", type=int, default=RATE,
                    help="the rate queries are cut and damaged at (each variant resamples them to its own; "
                         "raise it to compare fingerprint rates)")
    args = ap.parse_args(argv)
    variants = {"current": ""}
    for spec in args.variant:
        name, sep, overrides = spec.partition("=")
        if not sep or not name or name == "current":
            ap.error(f"--variant {spec!r}: expected NAME=JSON")
        variants[name] = overrides

    corpus = bench_corpus.build_corpus(list(bench_corpus.PACKAGES), ROOT / "bench-out" / "corpus")
    known_tracks, unknown_tracks = bench_corpus.split_known_unknown(corpus, 1)
    large = ROOT / "bench-out" / "catalog-10h"
    info = bench_corpus.ensure_large_catalog(large, known_tracks, unknown_tracks, ROOT / "bench-out" / "corpus")
    queried = {str(t.path) for t in corpus}
    dev = [s for s in info["sources"] if s not in queried]
    known, unknowns = draw_queries(dev, unknown_tracks, [parse_damage(d) for d in args.damages.split(",")],
                                   args.queries, args.unknown, args.seed, args.rate)
    results = {}
    current_index = fingerprint_params(None).index_signature()
    for name, overrides in variants.items():
        # a variant of the query side alone reads the current catalog
        same_index = fingerprint_params(overrides or None).index_signature() == current_index
        folder = large if same_index else variant_catalog(args.out / name, overrides, info["sources"])
        print(f"{name}: {len(known) + len(unknowns)} queries ...", file=sys.stderr)
        results[name] = run_variant(folder, overrides, known, unknowns, args.rate)
    text = summary(results)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    report = args.out / f"study-{args.seed}.json"
    report.write_text(json.dumps({"settings": vars(args) | {"out": str(args.out)}, "variants": variants,
                                  "results": results}, indent=1, default=str))
    print(f"\n(raw answers in {report})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
