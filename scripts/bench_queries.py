"""Where the benchmark's queries come from: seeded plans, excerpts cut once, outcomes.

Each plan is one query position; every damage is applied to the same position (a paired
design). The excerpt a plan needs (plus the music before it, which a room still rings
with, and the extra a fast deck plays) is cut while the track is decoded for ingest and
kept on disk, so the query phase neither decodes again nor holds tracks in memory.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from bench_corpus import CorpusTrack
from earshot.testing import damage
from scipy import signal

MIN_EXCERPT_DBFS = -60.0  # a query must hold some music, not digital silence
MAX_SPEED = 1.05
TOLERANCE_S = 1.0


@dataclass(frozen=True)
class Plan:
    """One query position to be cut (the start is drawn when the track is decoded)."""

    plan_id: int
    track: CorpusTrack
    length_s: float
    known: bool


@dataclass(frozen=True)
class Excerpt:
    """A plan's cut: the window of the track on disk and where the query starts in it."""

    plan: Plan
    start: int  # the query's first sample, in the track
    window_start: int  # the window's first sample, in the track
    rate: int
    level_dbfs: float
    file: Path

    @property
    def true_offset_s(self) -> float:
        return self.start / self.rate

    def load(self) -> np.ndarray:
        return np.load(self.file)


def make_plans(tracks: list[CorpusTrack], lengths: list[float], n: int, seed: int,
               known: bool) -> list[Plan]:
    """n plans per length, spread round-robin over a seeded shuffle of the tracks."""
    plans = []
    for li, length in enumerate(lengths):
        eligible = [t for t in tracks if t.duration_s >= length * MAX_SPEED + 1.0]
        order = np.random.default_rng([seed, 2 if known else 3, li]).permutation(len(eligible))
        for i in range(n):
            pid = (0 if known else 1_000_000) + li * 100_000 + i
            plans.append(Plan(pid, eligible[int(order[i % len(eligible)])], length, known))
    return plans


def draw_start(plan: Plan, x: np.ndarray, rate: int, seed: int) -> tuple[int, float]:
    """A seeded start sample where the excerpt is not silent; (start, excerpt level dBFS)."""
    rng = np.random.default_rng([seed, 4, plan.plan_id])
    span = math.ceil(plan.length_s * MAX_SPEED * rate) + 1
    last = len(x) - span - 1
    level, start = -math.inf, 0
    for _ in range(20):
        start = int(rng.integers(0, last + 1))
        level = 10 * math.log10(damage.power(x[start:start + span]) + 1e-30)
        if level >= MIN_EXCERPT_DBFS:
            break
    return start, level


def cut_excerpts(plans: list[Plan], x: np.ndarray, rate: int, seed: int, preroll_s: float,
                 folder: Path) -> list[Excerpt]:
    """Cut and store the windows of the plans of one decoded (mono) track."""
    out = []
    for plan in plans:
        start, level = draw_start(plan, x, rate, seed)
        w0 = max(0, start - math.ceil(preroll_s * rate))
        w1 = min(len(x), start + math.ceil(plan.length_s * MAX_SPEED * rate) + rate // 10)
        file = folder / f"{plan.plan_id}.npy"
        np.save(file, x[w0:w1])
        out.append(Excerpt(plan, start, w0, rate, level, file))
    return out


def classify(match: dict[str, Any] | None, excerpt: Excerpt) -> str:
    """correct / wrong_track / wrong_offset / no_match; unknown songs: false_positive."""
    if not excerpt.plan.known:
        return "false_positive" if match else "no_match"
    if match is None:
        return "no_match"
    if match["source"] != str(excerpt.plan.track.path):
        return "wrong_track"
    if abs(match["offset_s"] - excerpt.true_offset_s) > TOLERANCE_S:
        return "wrong_offset"
    return "correct"


def _log_spectrogram(x: np.ndarray, rate: int) -> np.ndarray:
    """Log magnitude, 100 Hz - 5 kHz, 46 ms frames every 23 ms."""
    hop = round(0.023 * rate)
    f, _, z = signal.stft(x, rate, nperseg=2 * hop, noverlap=hop, boundary=None, padded=False)
    return np.log(np.abs(z[(f > 100) & (f < 5000)]) + 1e-6)


def passage_similarity(x: np.ndarray, start: int, y: np.ndarray, offset_s: float, rate: int,
                       n: int) -> float:
    """How alike track x at `start` and track y (maybe x itself) at `offset_s` are: the best
    correlation of band-normalised log spectrograms within ±0.3 s. Unrelated passages score
    ~0.1-0.3, the same passage ~0.98. A high value behind a "wrong" answer means the music
    really is there too (a looped section, or a theme reused in another track). Diagnostic
    only: the accuracy and false-positive figures never use it."""
    hop = round(0.023 * rate)
    slack = 13 * hop
    other = round(offset_s * rate) - slack
    if other < 0 or other + n + 2 * slack > len(y) or start + n > len(x):
        return float("nan")
    a = _log_spectrogram(x[start:start + n], rate)
    b = _log_spectrogram(y[other:other + n + 2 * slack], rate)
    a = a - a.mean(axis=1, keepdims=True)
    best = -1.0
    for lag in range(b.shape[1] - a.shape[1] + 1):
        w = b[:, lag:lag + a.shape[1]]
        w = w - w.mean(axis=1, keepdims=True)
        denom = math.sqrt(float(np.sum(a * a)) * float(np.sum(w * w)))
        best = max(best, float(np.sum(a * w)) / denom if denom > 0 else 0.0)
    return best


def mono_at(path: Path, rate: int) -> np.ndarray:
    """A whole track decoded, mixed to mono and resampled to `rate` (for the waveform test,
    which compares two tracks sample by sample)."""
    from earshot.audio.decode import decode
    from earshot.audio.resample import mix_mono, resample

    audio = decode(path)
    x = mix_mono(audio.samples)
    return resample(x, audio.sample_rate, rate) if audio.sample_rate != rate else x


SHARED_RECORDING = 0.1  # waveform correlation at which two passages hold the same recording


def waveform_correlation(x: np.ndarray, start: int, y: np.ndarray, offset_s: float, rate: int,
                         n: int) -> float:
    """The largest normalised correlation of the waveforms of track x at `start` and track y
    at `offset_s`, within ±0.3 s, in the fingerprint's band (100-3600 Hz). It asks whether the
    same recording is in both, whatever else is mixed over it: unrelated passages (also the same
    theme played again, or re-orchestrated) stay near chance (~0.02-0.05 for 5 s), while an
    unknown song that mixes in a catalog recording (a remix, a medley) reaches 0.15-0.65 even
    under other layers. Diagnostic only, like `passage_similarity`."""
    slack = round(0.3 * rate)
    other = round(offset_s * rate) - slack
    if other < 0 or other + n + 2 * slack > len(y) or start + n > len(x):
        return float("nan")
    sos = signal.butter(4, [100, min(3600, 0.45 * rate)], "bandpass", fs=rate, output="sos")
    a = signal.sosfiltfilt(sos, x[start:start + n].astype(np.float64))
    b = signal.sosfiltfilt(sos, y[other:other + n + 2 * slack].astype(np.float64))
    xc = signal.correlate(b, a, mode="valid", method="fft")
    # the energy of every n-long window of b (a running sum: a direct convolution with n
    # ones took ~10 s a call)
    cs = np.concatenate([[0.0], np.cumsum(b * b)])
    energy = cs[n:] - cs[:-n]
    denom = np.sqrt(np.maximum(energy, 1e-30) * float(np.sum(a * a)))
    return float(np.max(np.abs(xc) / denom)) if float(np.sum(a * a)) > 0 else 0.0
