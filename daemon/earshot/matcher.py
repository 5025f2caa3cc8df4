"""The matcher: query hashes → postings → per-track offset histograms → best track.

Evidence accumulates across the hops of a stream (`MatchSession.add_peaks`), so the daemon
and `identify` share one code path. Playback speed: the query's peaks are hashed under a
few speed hypotheses (see fingerprint.h); each hypothesis is scored on its own.

Confidence is 1 − p, where p bounds the chance that a best cell this strong arises by
coincidence: for the best track, its hits are modelled as falling uniformly over the
possible offsets (Poisson), and the tail probability of the best window is multiplied by
the number of windows, tracks and speed hypotheses examined (Bonferroni). A threshold θ on
confidence therefore keeps the false-positive rate per query at or below about 1 − θ.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import pdtrc  # Poisson upper tail

from .catalog import Catalog, Track
from .fingerprint import PEAK_DTYPE, FingerprintParams, HashStream

# speed hypotheses: the query is taken as played s times too fast
DEFAULT_SPEEDS = (1.0, 0.985, 1.015, 0.97, 1.03, 0.955, 1.045, 0.94, 1.06)
BIN_FRAMES = 2           # offset histogram bin width, frames
WINDOW_BINS = 4          # bins summed for a cell (covers jitter and residual speed drift)
OFFSET_BIAS = 1 << 30
SURE_P = 1e-9            # stop trying other speeds once a match is this certain


@dataclass(frozen=True)
class Match:
    """A recognised track."""

    track: Track
    offset_s: float        # position in the track of the query's first sample
    confidence: float
    score: int             # hashes agreeing on the offset
    speed: float           # playback speed found (1.0 = as catalogued)
    p_value: float

    def to_json(self) -> dict[str, object]:
        return {
            "track_id": self.track.track_id, "title": self.track.title,
            "artist": self.track.artist, "album": self.track.album,
            "source": self.track.source, "offset_s": round(self.offset_s, 3),
            "confidence": round(self.confidence, 4),
        }


@dataclass
class _Hits:
    """Postings that matched query hashes under one speed hypothesis."""

    track: list[np.ndarray] = field(default_factory=list)
    t_ref: list[np.ndarray] = field(default_factory=list)
    t_query: list[np.ndarray] = field(default_factory=list)  # on the catalog's time scale
    query_hashes: int = 0

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.track:
            e = np.empty(0)
            return e.astype(np.int64), e.astype(np.float64), e.astype(np.float64)
        if len(self.track) > 1:
            self.track = [np.concatenate(self.track)]
            self.t_ref = [np.concatenate(self.t_ref)]
            self.t_query = [np.concatenate(self.t_query)]
        return self.track[0], self.t_ref[0], self.t_query[0]


def _log_tail(c: int, lam: float) -> float:
    """log P(X >= c) for X ~ Poisson(lam)."""
    if c <= 0:
        return 0.0
    p = float(pdtrc(c - 1, lam))
    if p > 0.0:
        return math.log(p)
    # far tail: log of the first term dominates
    return -lam + c * math.log(lam) - math.lgamma(c + 1)


class MatchSession:
    """Accumulates evidence from a stream of peaks and names the best track."""

    def __init__(
        self, catalog: Catalog, params: FingerprintParams | None = None,
        speeds: tuple[float, ...] = DEFAULT_SPEEDS,
    ):
        self.catalog = catalog
        self.params = params or catalog.params
        self.speeds = speeds
        self._streams = {s: HashStream(self.params.query_hash, s) for s in speeds}
        self._hits = {s: _Hits() for s in speeds}
        self._peaks: list[np.ndarray] = []
        self._consumed: dict[float, int] = {}
        self._frames_final = 0
        self._track_cache: dict[int, Track] = {}

    # -- feeding -------------------------------------------------------------------------
    def add_peaks(self, peaks: np.ndarray, frames_final: int | None, speeds: tuple[float, ...] | None = None) -> None:
        """Add the extractor's new peaks (None as watermark: end of stream)."""
        self._peaks.append(np.asarray(peaks, dtype=PEAK_DTYPE))
        if frames_final is not None:
            self._frames_final = frames_final
        for s in speeds or self.speeds:
            self._feed_speed(s, frames_final)

    def _feed_speed(self, speed: float, frames_final: int | None) -> None:
        stream = self._streams[speed]
        pending = self._pending_peaks(speed)
        hashes, times = stream.feed(pending, frames_final)
        self._consumed[speed] = len(self._all_peaks())
        if len(hashes) == 0:
            return
        hits = self._hits[speed]
        hits.query_hashes += len(hashes)
        order = np.argsort(hashes, kind="stable")
        hashes, times = hashes[order], times[order]
        uniq = np.unique(hashes)
        postings = self.catalog.lookup(uniq)
        if len(postings) == 0:
            return
        ph = postings["hash"].astype(np.uint32)
        lo = np.searchsorted(hashes, ph, side="left")
        hi = np.searchsorted(hashes, ph, side="right")
        reps = hi - lo
        idx_post = np.repeat(np.arange(len(postings)), reps)
        starts = np.repeat(lo, reps)
        within = np.arange(len(idx_post)) - np.repeat(np.cumsum(reps) - reps, reps)
        idx_query = starts + within
        hits.track.append(postings["track"][idx_post].astype(np.int64))
        hits.t_ref.append(postings["time"][idx_post].astype(np.float64))
        hits.t_query.append(times[idx_query].astype(np.float64))

    def _all_peaks(self) -> np.ndarray:
        if len(self._peaks) > 1:
            self._peaks = [np.concatenate(self._peaks)]
        return self._peaks[0] if self._peaks else np.empty(0, PEAK_DTYPE)

    def _pending_peaks(self, speed: float) -> np.ndarray:
        allp = self._all_peaks()
        return allp[self._consumed.get(speed, 0):]

    def try_more_speeds(self) -> None:
        """Hash the peaks seen so far under every speed not yet tried (end of stream)."""
        for s in self.speeds:
            if self._consumed.get(s, 0) == 0 and len(self._all_peaks()):
                self._feed_speed(s, None)

    # -- scoring -------------------------------------------------------------------------
    def _track(self, track_id: int) -> Track | None:
        track = self._track_cache.get(track_id)
        if track is None:
            track = self.catalog.get_track(track_id)
            if track is not None:
                self._track_cache[track_id] = track
        return track

    def best(self, since_frame: float | None = None) -> Match | None:
        """The best-supported track over all speed hypotheses tried (or None).

        `since_frame` limits the evidence to query anchors at or after that frame."""
        n_tracks = max(1, self.catalog.track_count())
        tried = [s for s in self.speeds if self._hits[s].query_hashes]
        best: Match | None = None
        for speed in tried:
            m = self._best_for_speed(speed, since_frame, n_tracks, len(tried))
            if m is not None and (best is None or m.p_value < best.p_value):
                best = m
        return best

    def _best_for_speed(self, speed: float, since: float | None, n_tracks: int, n_speeds: int) -> Match | None:
        track, t_ref, t_q = self._hits[speed].arrays()
        if since is not None and len(t_q):
            keep = t_q >= since * speed
            track, t_ref, t_q = track[keep], t_ref[keep], t_q[keep]
        if len(track) == 0:
            return None
        offset = t_ref - t_q
        obin = np.floor(offset / BIN_FRAMES).astype(np.int64) + OFFSET_BIAS // BIN_FRAMES
        key = (track << 32) | obin
        ukeys, counts = np.unique(key, return_counts=True)
        # sum WINDOW_BINS consecutive bins of the same track
        window = counts.copy()
        for k in range(1, WINDOW_BINS):
            nxt = np.searchsorted(ukeys, ukeys + k)
            found = (nxt < len(ukeys)) & (ukeys[np.minimum(nxt, len(ukeys) - 1)] == ukeys + k)
            window[found] += counts[nxt[found]]
        # candidate cells: the strongest few, then judged by their p-value
        order = np.argsort(-window, kind="stable")[:8]
        per_track = np.bincount(np.searchsorted(np.unique(track), track))
        track_ids = np.unique(track)
        query_span = float(t_q.max() - t_q.min()) + 1.0
        best: Match | None = None
        for i in order:
            tid = int(ukeys[i] >> 32)
            tr = self._track(tid)
            if tr is None:
                continue
            c = int(window[i])
            n_t = int(per_track[np.searchsorted(track_ids, tid)])
            span = tr.duration_s / self.params.frame_seconds + query_span
            cells = max(1.0, span / BIN_FRAMES)
            lam = n_t * WINDOW_BINS / cells
            log_p = _log_tail(c, lam) + math.log(cells) + math.log(n_tracks) + math.log(n_speeds)
            p = math.exp(min(0.0, log_p))
            if best is None or p < best.p_value:
                b0 = int(ukeys[i] & 0xFFFFFFFF)
                in_cell = (track == tid) & (obin >= b0) & (obin < b0 + WINDOW_BINS)
                offset_frames = float(np.median(offset[in_cell]))
                best = Match(
                    track=tr, offset_s=offset_frames * self.params.frame_seconds,
                    confidence=1.0 - p, score=c, speed=speed, p_value=p,
                )
        return best


def identify_peaks(
    catalog: Catalog, peaks: np.ndarray, speed_search: bool = True,
    speeds: tuple[float, ...] = DEFAULT_SPEEDS,
) -> Match | None:
    """Best match for the peaks of a whole query: nominal speed first, then the others
    unless the nominal-speed match is already certain."""
    session = MatchSession(catalog, speeds=speeds if speed_search else (1.0,))
    session.add_peaks(peaks, None, speeds=(1.0,))
    first = session.best()
    if speed_search and (first is None or first.p_value > SURE_P):
        session.try_more_speeds()
        return session.best()
    return first
