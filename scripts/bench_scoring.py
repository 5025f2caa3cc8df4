#!/usr/bin/env python3
"""The live scoring kernel on real evidence: the pipeline over the first minutes of the hour
benchmark's mix (bench_live's prepare phase makes it), scoring CPU by NowPlaying state, and
the windows it scored replayed through both methods of es_ev_score (sorted keys, dense
counts): CPU per scoring and whether every result is the same, field for field.

    .venv/bin/python scripts/bench_scoring.py --minutes 20 --mix room

Asserts nothing; prints the figures (issue 4: the listener's CPU in a room).
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_live as bl  # noqa: E402


def record(mix: str, minutes: float, every: int) -> tuple[dict[str, list[float]], list[Any], float]:
    """Run the pipeline; time each scoring by state and keep a copy of every `every`-th window."""
    from earshot.evidence import EvidenceWindow

    x, rate = sf.read(str(bl.LIVE / f"hour-{mix}.wav"), dtype="float32", frames=int(minutes * 60 * bl.RATE))
    pipe = bl.open_pipeline(bl.OUT / "catalog-10h")
    scorer = pipe.session._scorer
    score = scorer.best_cell
    by_state: dict[str, list[float]] = defaultdict(list)
    kept: list[Any] = []

    def timed(window: EvidenceWindow, since: float | None, mute: tuple[int, float] | None) -> Any:
        t = time.process_time()
        cell = score(window, since, mute)
        by_state[pipe.nowplaying.state].append(time.process_time() - t)
        if sum(map(len, by_state.values())) % every == 0:
            copy = EvidenceWindow()
            copy.append(*window.live())
            kept.append((copy, since, mute))
        return cell

    scorer.best_cell = timed  # type: ignore[method-assign]
    hop = round(bl.HOP_S * rate)
    for i in range(0, len(x), hop):
        pipe.process(x[i:i + hop].reshape(-1, 1))
    pipe.catalog.close()
    return by_state, kept, len(x) / rate


def replay(kept: list[Any], reps: int) -> dict[str, tuple[float, list[Any]]]:
    """Each recorded window scored by each method: ms per scoring and the results."""
    from earshot.evidence import Scorer
    from earshot.matcher import BIN_FRAMES, NULL_BLOCK, TAIL_MIN, WINDOW_BINS

    out = {}
    for method in ("sort", "dense", "auto"):
        scorer = Scorer(BIN_FRAMES, WINDOW_BINS, NULL_BLOCK, TAIL_MIN, method=method)
        for w, since, mute in kept:
            scorer.best_cell(w, since, mute)   # the scratch grown for them
        t = time.process_time()
        for _ in range(reps):
            cells = [scorer.best_cell(w, since, mute) for w, since, mute in kept]
        ms = 1000 * (time.process_time() - t) / reps / max(1, len(kept))
        out[method] = (ms, [None if c is None else (c.track, c.bin, c.count, c.n_null, c.k, c.u, c.top_sum,
                                                    c.offsets.tobytes()) for c in cells])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--mix", default="room", choices=("clean", "room"))
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--every", type=int, default=20, help="keep every n-th scored window for the replay")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    by_state, kept, audio_s = record(args.mix, args.minutes, args.every)
    print(f"{args.mix}, first {audio_s / 60:.0f} min: scoring {sum(map(sum, by_state.values())) / audio_s:.4f} CPU s/s")
    for state, times in by_state.items():
        print(f"  {state:9s} {sum(times) / audio_s:.4f} s/s, {len(times)} scorings, {1000 * np.mean(times):.2f} ms each")
    results = replay(kept, args.reps)
    sizes = [len(w) for w, _, _ in kept]
    print(f"replayed {len(kept)} windows (median {int(np.median(sizes))} hits):")
    for method, (ms, _) in results.items():
        print(f"  {method:5s} {ms:.2f} ms a scoring")
    same = [a == b == c for a, b, c in zip(*(r for _, r in results.values()))]
    print(f"  results identical for {sum(same)} of {len(same)} windows")


if __name__ == "__main__":
    main()
