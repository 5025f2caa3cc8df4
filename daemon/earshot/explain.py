"""Why `identify` named a track, or none: the data behind `earshot identify --plot`.

Everything here is computed from the query and the catalog's evidence, without drawing:
the fingerprint's own view of the audio (the 8 kHz log spectrogram and its spectral
peaks), the query hashes that landed on the best track at its offset (as anchor → target
peak pairs), and the offset histograms of the best track and the runner-up. The matcher
decides on those histograms: a song that is really playing stacks many hashes at one
offset, while coincidences spread thinly over every offset of every track.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .audio.decode import Audio
from .catalog import Catalog, Track
from .fingerprint import HashParams, PeakParams, hash_peaks
from .identify import DEFAULT_MIN_CONFIDENCE, Recognition, recognise_audio
from .levels import LevelCheck
from .matcher import BIN_FRAMES, KEY_SHIFT, OFFSET_BIAS, WINDOW_BINS, Match, window_counts


@dataclass(frozen=True)
class OffsetHistogram:
    """One track's evidence: how many query hashes agree on each offset into the track.

    Cells are the matcher's: WINDOW_BINS bins of BIN_FRAMES frames, one starting at every
    bin, so the fullest cell holds exactly the score the matcher saw."""

    track: Track
    speed: float             # the playback-speed hypothesis the hashes were made under
    first_offset_s: float    # offset (track seconds at the query's start) of cell 0
    step_s: float            # offset between consecutive cells
    cell_counts: np.ndarray  # hashes in each cell
    score: int               # hashes in the fullest cell
    offset_s: float          # that cell's offset (median of its hits), as identify reports it

    @property
    def offsets_s(self) -> np.ndarray:
        """The offset each cell starts at."""
        return self.first_offset_s + self.step_s * np.arange(len(self.cell_counts))


@dataclass(frozen=True)
class MatchedPairs:
    """Query hashes that hit the best track in its fullest cell: their anchor and target
    peaks, in query seconds and Hz."""

    anchor_s: np.ndarray
    anchor_hz: np.ndarray
    target_s: np.ndarray
    target_hz: np.ndarray
    hits: int                # postings hit (a hash can hit a track at more than one place)

    def __len__(self) -> int:
        return len(self.anchor_s)


@dataclass(frozen=True)
class Explanation:
    """The picture's data: what the fingerprint saw, and the evidence for and against."""

    duration_s: float
    frame_s: float              # seconds between spectrogram frames (frame k starts at k·frame_s)
    freqs_hz: np.ndarray        # spectrogram rows
    spectrogram_db: np.ndarray  # power in dB re full scale, rows × frames
    band_hz: tuple[float, float]  # where peaks are looked for
    peak_s: np.ndarray          # the query's spectral peaks
    peak_hz: np.ndarray
    candidate: Match | None     # the best-supported track, however weak
    match: Match | None         # what `identify` reports (None: not sure enough)
    best: OffsetHistogram | None
    runner_up: OffsetHistogram | None
    pairs: MatchedPairs
    level_check: LevelCheck | None = None   # the candidate's band levels, when it was unsure


def explain_audio(
    catalog: Catalog, audio: Audio, *, min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    speed_search: bool = True,
) -> Explanation:
    """Identify audio and keep the evidence (the same code path as `identify_audio`)."""
    return explain(catalog, recognise_audio(catalog, audio, min_confidence=min_confidence,
                                            speed_search=speed_search))


def explain(catalog: Catalog, rec: Recognition) -> Explanation:
    """The explanation of one recognition."""
    params = catalog.params
    pp = params.query_peaks
    frame_s = params.frame_seconds
    freqs, spec = spectrogram_db(rec.signal, pp)
    best = runner_up = None
    pairs = _no_pairs()
    if rec.candidate is not None:
        speed = rec.candidate.speed
        track, t_ref, t_q = rec.session.hits(speed)
        obin = np.floor((t_ref - t_q) / BIN_FRAMES).astype(np.int64)
        best_id = rec.candidate.track.track_id
        second_id = _runner_up_track(track, obin, best_id)
        best, cell_bin = _histogram(rec.candidate.track, speed, track, t_ref, t_q, obin, frame_s)
        if second_id is not None:
            second = catalog.get_track(second_id)
            if second is not None:
                runner_up = _histogram(second, speed, track, t_ref, t_q, obin, frame_s)[0]
        pairs = _matched_pairs(catalog, rec.peaks, rec.session.params.query_hash, speed, best_id,
                               cell_bin, frame_s)
    return Explanation(
        duration_s=len(rec.signal) / pp.sample_rate, frame_s=frame_s, freqs_hz=freqs,
        spectrogram_db=spec, band_hz=(pp.fmin_hz, pp.fmax_hz),
        peak_s=rec.peaks["time"].astype(np.float64) * frame_s,
        peak_hz=np.exp2(rec.peaks["freq"].astype(np.float64)),
        candidate=rec.candidate, match=rec.match, best=best, runner_up=runner_up, pairs=pairs,
        level_check=rec.level_check,
    )


def spectrogram_db(signal: np.ndarray, pp: PeakParams) -> tuple[np.ndarray, np.ndarray]:
    """The extractor's view (native/fingerprint.c): periodic Hann frames of n_fft every
    hop, scaled so a full-scale sine reads 0 dB, floored at floor_db. (freqs, rows × frames)."""
    n, hop = pp.n_fft, pp.hop
    x = np.asarray(signal, dtype=np.float32)
    frames = 0 if len(x) < n else (len(x) - n) // hop + 1
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
    window *= 2.0 / window.sum()
    freqs = np.arange(n // 2 + 1) * pp.sample_rate / n
    out = np.empty((n // 2 + 1, frames), dtype=np.float32)
    step = 2048  # frames per FFT batch: bounded memory for long files
    for first in range(0, frames, step):
        idx = np.arange(first, min(frames, first + step))[:, None] * hop + np.arange(n)
        power = np.abs(np.fft.rfft(x[idx] * window, axis=1)) ** 2
        out[:, first:first + len(idx)] = np.maximum(10 * np.log10(power + 1e-12), pp.floor_db).T
    return freqs, out


def _no_pairs() -> MatchedPairs:
    e = np.empty(0)
    return MatchedPairs(e, e, e, e, 0)


def _runner_up_track(track: np.ndarray, obin: np.ndarray, best_id: int) -> int | None:
    """The track other than the best whose fullest cell is fullest (None: no other track)."""
    keys = (track << KEY_SHIFT) | (obin + OFFSET_BIAS // BIN_FRAMES)
    ukeys, window = window_counts(keys)
    tracks = ukeys >> KEY_SHIFT
    others = tracks != best_id
    if not others.any():
        return None
    return int(tracks[int(np.argmax(np.where(others, window, -1)))])


def _cells(obin: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """(first bin, hits per bin, hits per cell of WINDOW_BINS bins) over a dense bin range."""
    lo = int(obin.min())
    counts = np.bincount(obin - lo)
    cells = counts.copy()
    for j in range(1, WINDOW_BINS):
        cells[:-j] += counts[j:]
    return lo, counts, cells


def _histogram(tr: Track, speed: float, track: np.ndarray, t_ref: np.ndarray, t_q: np.ndarray,
               obin: np.ndarray, frame_s: float) -> tuple[OffsetHistogram, int]:
    """One track's offset histogram, and the offset bin its fullest cell starts at."""
    sel = track == tr.track_id
    ob = obin[sel]
    lo, counts, cells = _cells(ob)
    # the matcher scores cells that start at an occupied bin; the first fullest one wins
    i = int(np.argmax(np.where(counts > 0, cells, -1)))
    offset = (t_ref - t_q)[sel]
    in_cell = (ob >= lo + i) & (ob < lo + i + WINDOW_BINS)
    hist = OffsetHistogram(
        track=tr, speed=speed, first_offset_s=lo * BIN_FRAMES * frame_s,
        step_s=BIN_FRAMES * frame_s, cell_counts=cells, score=int(cells[i]),
        offset_s=float(np.median(offset[in_cell])) * frame_s,
    )
    return hist, lo + i


def _matched_pairs(catalog: Catalog, peaks: np.ndarray, hp: HashParams, speed: float,
                   track_id: int, cell_bin: int, frame_s: float) -> MatchedPairs:
    """The query's hashes (under `speed`) whose postings of `track_id` fall in the cell
    starting at offset bin `cell_bin`, as anchor and target peaks."""
    anchors, hashes, times = hashes_by_anchor(peaks, hp, speed)
    if len(hashes) == 0:
        return _no_pairs()
    postings = catalog.lookup(np.unique(hashes))
    postings = postings[postings["track"] == track_id]
    ph = postings["hash"].astype(np.uint32)
    order = np.argsort(ph, kind="stable")
    ph, pt = ph[order], postings["time"][order].astype(np.float64)
    lo = np.searchsorted(ph, hashes, side="left")
    hi = np.searchsorted(ph, hashes, side="right")
    reps = hi - lo
    q_idx = np.repeat(np.arange(len(hashes)), reps)
    p_idx = np.repeat(lo, reps) + (np.arange(int(reps.sum())) - np.repeat(np.cumsum(reps) - reps, reps))
    obin = np.floor((pt[p_idx] - times[q_idx].astype(np.float64)) / BIN_FRAMES).astype(np.int64)
    in_cell = (obin >= cell_bin) & (obin < cell_bin + WINDOW_BINS)
    matched = np.unique(q_idx[in_cell])
    a = anchors[matched]
    t = np.array([target_peak(peaks, int(i), int(h), hp, speed)
                  for i, h in zip(a, hashes[matched])], dtype=np.int64)
    return MatchedPairs(
        anchor_s=peaks["time"][a].astype(np.float64) * frame_s,
        anchor_hz=np.exp2(peaks["freq"][a].astype(np.float64)),
        target_s=peaks["time"][t].astype(np.float64) * frame_s,
        target_hz=np.exp2(peaks["freq"][t].astype(np.float64)),
        hits=int(np.count_nonzero(in_cell)),
    )


def hashes_by_anchor(peaks: np.ndarray, hp: HashParams,
                      speed: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every query hash (as the matcher makes them) with the index of its anchor peak."""
    anchors, hashes, times = [], [], []
    for i in range(len(peaks)):
        h, t = hash_peaks(peaks, hp, speed, i, i + 1)
        if len(h):
            anchors.append(np.full(len(h), i, dtype=np.int64))
            hashes.append(h)
            times.append(t)
    if not hashes:
        return np.empty(0, np.int64), np.empty(0, np.uint32), np.empty(0, np.float32)
    return np.concatenate(anchors), np.concatenate(hashes), np.concatenate(times)


def target_peak(peaks: np.ndarray, anchor: int, h: int, hp: HashParams, speed: float) -> int:
    """The target peak of anchor's hash h. The hash holds the pair's time gap (low 6 bits,
    units of dt_step frames at the catalog's speed; a query hashes every unit within
    ±dt_tolerance of the gap) and interval (next 8 bits, 1/df_per_octave octave from
    -max_doct), see es_fp_hash(): the later peak that gives both, computed in float32 as
    the C does (the most salient, should two), else the nearest."""
    dt, qd = h & 0x3F, (h >> 6) & 0xFF
    later = peaks[anchor + 1:]
    if len(later) == 0:
        return anchor
    f32 = np.float32
    gap = (later["time"] - peaks["time"][anchor]) * f32(speed)
    octaves = later["freq"] - peaks["freq"][anchor]
    interval = (octaves + f32(hp.max_doct)) * f32(hp.df_per_octave)
    nd = int(2.0 * hp.max_doct * hp.df_per_octave)
    zone = ((gap >= hp.dt_min - 0.5) & (gap < hp.dt_max + 0.5)
            & (octaves > -hp.max_doct) & (octaves < hp.max_doct))
    step, tol = f32(hp.dt_step), f32(hp.dt_tolerance)
    u_min, u_max = round(hp.dt_min / hp.dt_step), round(hp.dt_max / hp.dt_step)
    u0 = np.clip(np.rint((gap - tol) / step), u_min, u_max)
    u1 = np.clip(np.rint((gap + tol) / step), u_min, u_max)
    exact = zone & (u0 <= dt) & (dt <= u1) & (np.clip(np.floor(interval), 0, nd - 1) == qd)
    if exact.any():
        return anchor + 1 + int(np.argmax(np.where(exact, later["salience"], -np.inf)))
    miss = np.abs(gap - dt * hp.dt_step) + np.abs(interval - (qd + 0.5))
    return anchor + 1 + int(np.argmin(np.where(zone, miss, np.inf)))
