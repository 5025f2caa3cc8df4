"""Band levels: a coarse spectrogram of every catalog track, to check a candidate the
fingerprint is unsure of.

A room keeps few of a song's spectral peaks (under RT60 1.0 s about 19 % of the catalog's
hashes are found), but the way its energy moves between bands survives much better: 16
log-spaced bands of 150-3800 Hz every 64 ms, each band's mean over the excerpt removed,
correlate at about 0.45 between a room-damaged excerpt and the track at its place, against
0.01 ± 0.035 at random places (development tracks, 10 s). So when the fingerprint is not
sure of its best candidate, the query's levels are compared with the track's at
the candidate's place and with random places of the catalog: a correlation far above those
(`z`, in standard deviations of the random ones) confirms it.

Stored per track at 0.5 dB in one byte (250 bytes a second before compression; about 0.7 MB
per hour of audio in the catalog). Computed on the mono fingerprint-rate signal, streaming:
blocks of any size give the levels of one call on the whole signal.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass

import numpy as np

from .native import ffi, lib


@dataclass(frozen=True)
class LevelParams:
    sample_rate: int = 8000
    n_fft: int = 1024          # 128 ms frames
    hop: int = 512             # 64 ms
    bands: int = 16
    fmin_hz: float = 150.0
    fmax_hz: float = 3800.0
    step_db: float = 0.5       # one level unit
    floor_db: float = -100.0   # level 0; 255 is floor + 127.5 dB

    def signature(self) -> dict:
        return asdict(self)

    @property
    def frame_s(self) -> float:
        return self.hop / self.sample_rate


DEFAULT_LEVELS = LevelParams()


class LevelStream:
    """Band levels of a stream fed in blocks (uint8, frames × bands). The power spectra are
    the C kernel's (es_fft_power_frames: all of a block's frames in one call), the band sums
    one numpy reduction: about 1 ms for 10 s here (10 000× real time), where numpy's rfft and
    per-band sums ran at 284×."""

    def __init__(self, params: LevelParams = DEFAULT_LEVELS):
        self.p = params
        freqs = np.fft.rfftfreq(params.n_fft, 1.0 / params.sample_rate)
        edges = np.geomspace(params.fmin_hz, params.fmax_hz, params.bands + 1)
        band = np.digitize(freqs, edges) - 1
        # the bands are runs of neighbouring bins, summed by np.add.reduceat: a matrix product
        # did it as fast, but where numpy is imported before earshot sets OPENBLAS_NUM_THREADS
        # (as the benchmarks do) OpenBLAS ran it on every core and left them spinning
        inside = np.flatnonzero((band >= 0) & (band < params.bands))
        if len(np.unique(band[inside])) != params.bands:
            raise ValueError(f"{params.bands} bands of {params.fmin_hz}-{params.fmax_hz} Hz leave "
                             f"some without a bin of a {params.n_fft}-point transform")
        self._bins = (int(inside[0]), int(inside[-1]) + 1)
        self._band_starts = np.searchsorted(band[inside], np.arange(params.bands))
        self._window = np.hanning(params.n_fft).astype(np.float32)
        # a full-scale sine's power in its bin, so levels read in dB re full scale
        self._scale = 1.0 / float(np.sum(self._window) / 2) ** 2
        self._fft = ffi.gc(lib.es_fft_new(params.n_fft), lib.es_fft_free)
        if self._fft == ffi.NULL:
            raise MemoryError("no memory for the band levels' transform")
        self._pending = np.zeros(0, np.float32)

    def process(self, x: np.ndarray) -> np.ndarray:
        p = self.p
        buf = np.ascontiguousarray(np.concatenate([self._pending, np.asarray(x, np.float32)]))
        n = 0 if len(buf) < p.n_fft else 1 + (len(buf) - p.n_fft) // p.hop
        self._pending = buf[n * p.hop:]
        if n == 0:
            return np.zeros((0, p.bands), np.uint8)
        power = np.empty((n, p.n_fft // 2 + 1), np.float32)
        lib.es_fft_power_frames(self._fft, ffi.from_buffer("float[]", buf), p.hop, n,
                                ffi.from_buffer("float[]", self._window), ffi.from_buffer("float[]", power))
        lo, hi = self._bins
        energy = np.add.reduceat(power[:, lo:hi], self._band_starts, axis=1, dtype=np.float64) * self._scale
        db = 10.0 * np.log10(energy + 1e-30)
        return np.clip(np.rint((db - p.floor_db) / p.step_db), 0, 255).astype(np.uint8)


def band_levels(signal: np.ndarray, params: LevelParams = DEFAULT_LEVELS) -> np.ndarray:
    """The levels of a whole signal at params.sample_rate (a partial last frame is dropped)."""
    return LevelStream(params).process(signal)


def pack(levels: np.ndarray) -> bytes:
    """Stored form: the band count, then the levels, compressed."""
    levels = np.ascontiguousarray(levels, np.uint8)
    return bytes([levels.shape[1]]) + zlib.compress(levels.tobytes(), 6)


def unpack(blob: bytes) -> np.ndarray:
    bands = blob[0]
    return np.frombuffer(zlib.decompress(blob[1:]), np.uint8).reshape(-1, bands)


LAGS = 2   # frames either side of the candidate's place (±128 ms)
# A check confirms when the candidate's correlation stands this many standard deviations
# above the random places'. Chosen on the development tracks (UFO:AI, Singularity, HyperRogue)
# in the room mix: right candidates the fingerprint was unsure of stood 5.7-14.6 above,
# unknown songs' candidates of confidence >= 0.5 at most 2.8 (10 s and 5 s, 80 queries each).
CHECK_MIN_Z = 6.0


def centred(query: np.ndarray) -> tuple[np.ndarray, float]:
    """The query's levels with each band's mean over the excerpt removed (a room's colouring
    and a level change drop out), and their norm: computed once for every place compared."""
    q = query.astype(np.float64)
    q -= q.mean(axis=0)
    return q, math.sqrt(float((q * q).sum()))


def best_correlation(q: np.ndarray, qn: float, track: np.ndarray, first: int, lags: int = LAGS) -> float:
    """The largest correlation of a centred query (`centred`) with the track's levels
    starting within [first - lags, first + lags], their band means over the excerpt removed
    too; -1 where the track has no such place."""
    n = len(q)
    lo, hi = max(0, first - lags), min(first + lags, len(track) - n)
    if hi < lo or qn <= 0:
        return -1.0
    window = track[lo:hi + n].astype(np.float64)[None]
    return float(_best_correlations(q, qn, window, hi - lo + 1)[0])


@dataclass(frozen=True)
class LevelCheck:
    correlation: float   # at the candidate's place
    null_mean: float     # at random places of the catalog
    null_sd: float
    z: float             # (correlation - null_mean) / null_sd

    def p_value(self) -> float:
        """The chance of a correlation this far above the random places' if they are normal."""
        return 0.5 * math.erfc(self.z / math.sqrt(2.0))


NULL_CHUNK_VALUES = 1 << 20   # levels (float64) of null places compared at once: 8 MB


def null_correlations(q: np.ndarray, qn: float, randoms: list[tuple[np.ndarray, int]],
                      lags: int = LAGS) -> np.ndarray:
    """`best_correlation` at each (levels, frame) of `randoms`, a batch of places at a time
    (the null of a check; ten times faster than one place at a time, and a long query's
    batches stay within NULL_CHUNK_VALUES). Places whose lags leave their track give -1."""
    n = len(q)
    out = np.full(len(randoms), -1.0)
    if qn <= 0:   # a query whose bands do not vary correlates with nothing (best_correlation: -1)
        return out
    inside = [i for i, (lv, f) in enumerate(randoms) if f - lags >= 0 and f + lags + n <= len(lv)]
    per_chunk = max(1, NULL_CHUNK_VALUES // ((n + 2 * lags) * max(1, q.shape[1])))
    for c in range(0, len(inside), per_chunk):
        chunk = inside[c:c + per_chunk]
        windows = np.stack([lv[f - lags:f + lags + n] for lv, f in (randoms[i] for i in chunk)])
        out[chunk] = _best_correlations(q, qn, windows.astype(np.float64), 2 * lags + 1)
    return out


def _best_correlations(q: np.ndarray, qn: float, x: np.ndarray, starts: int) -> np.ndarray:
    """For each window of x (places x (n + starts - 1) frames x bands, float64), the largest
    correlation of the centred query (n frames) with its `starts` consecutive places, -1 where
    none varies; all places in one array operation."""
    n = len(q)
    head = x[:, :n]
    s1, s2 = np.einsum("pnb->pb", head), np.einsum("pnb,pnb->pb", head, head)   # places x bands
    best = np.full(len(x), -1.0)
    for lag in range(starts):
        if lag:   # slide the window's band sums by one frame
            gone, new = x[:, lag - 1], x[:, lag + n - 1]
            s1, s2 = s1 + new - gone, s2 + new * new - gone * gone
        var = (s2 - s1 * s1 / n).sum(axis=1)
        # q is centred, so its products with the raw window equal those with the centred one
        # (einsum, not @: no BLAS threads for a query meant to take one core)
        num = np.einsum("ij,j->i", x[:, lag:lag + n].reshape(len(x), -1), q.ravel())
        ok = var > 0
        r = np.where(ok, num / (qn * np.sqrt(np.where(ok, var, 1.0))), -1.0)
        best = np.maximum(best, r)
    return best


def check(query: np.ndarray, track: np.ndarray, first: int, randoms: list[tuple[np.ndarray, int]]
          ) -> LevelCheck | None:
    """Compare the query's levels with the track's at frame `first` and at each (levels,
    frame) of `randoms`; None when the query is too short or silent, or the place is outside
    the track."""
    if len(query) < 8 or not np.any(query != query[0]):
        return None
    q, qn = centred(query)
    r = best_correlation(q, qn, track, first)
    if r <= -1.0:
        return None
    null = null_correlations(q, qn, randoms)
    null = null[null > -1.0]
    if len(null) < 8:
        return None
    sd = max(float(null.std()), 1e-3)
    return LevelCheck(r, float(null.mean()), sd, (r - float(null.mean())) / sd)
