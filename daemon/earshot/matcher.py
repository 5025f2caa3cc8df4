"""The matcher: query hashes → postings → per-track offset histograms → best track.

Evidence accumulates across the hops of a stream (`MatchSession.add_peaks`), so the daemon
and `identify` share one code path. Playback speed: the query's peaks are hashed under a
few speed hypotheses (see fingerprint.h); each hypothesis is scored on its own.

Confidence is 1 − p, where p estimates the chance that a best cell this strong arises by
coincidence, from a null model learnt on the query's own non-matching evidence (see
`null_log_p`), times the number of speed hypotheses examined. A threshold θ on confidence
therefore aims at a false-positive rate per query of about 1 − θ.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .catalog import Catalog, Track
from .evidence import (
    MAX_WEIGHT,
    CellScore,
    EvidenceWindow,
    PostingRuns,
    RollingCounts,
    Scorer,
    near,
    unique_hashes,
)
from .fingerprint import PEAK_DTYPE, FingerprintParams, HashParams, HashStream, hash_picked_peaks

# speed hypotheses: the query is taken as played s times too fast
DEFAULT_SPEEDS = (1.0, 0.985, 1.015, 0.97, 1.03, 0.955, 1.045, 0.94, 1.06)
BIN_FRAMES = 2           # offset histogram bin width, frames
WINDOW_BINS = 4          # bins summed for a cell (covers jitter and residual speed drift)
# histogram keys are (track << KEY_SHIFT) | (offset bin + bias): 2^33 bins of 2 frames
# leave room for offsets of years of live listening, 2^29 tracks for the catalog
KEY_SHIFT = 34
KEY_MASK = (1 << KEY_SHIFT) - 1
OFFSET_BIAS = 1 << 33
SURE_P = 1e-9            # stop trying other speeds once a match is this certain
SETTLE_P = 1e-9          # a query's exact gaps alone this certain: no need for the rest
NULL_BLOCK = 64          # offset bins per null-model block
TAIL_MIN = 10            # blocks used for the tail fit, at least
BETA_FLOOR = 1.0         # smallest tail scale (hits), for queries with little evidence
SCREEN_EVERY = 8         # identify: off-nominal speeds first on the most salient 8th of the anchors ...
SCREEN_MIN_S = 1.2       # ... but never on fewer than a query of this many seconds has (a 5 s query: its 4th)
SCREEN_P = 0.1           # ... and in full where that alone is this unlikely by chance,
SCREEN_KEEP = 0          # ... or where it is among the likeliest this many (see try_more_speeds)
RARITY_WEIGHT = 16.0     # hits weigh round(this / sqrt(df)), 1 .. 16 (0: all weigh 1; see rarity_weights)
# identify scores densely up to 32 offset bins a hit (the kernel's own choice: 16): the speed
# screen's samples (tens of thousands of hits, 20-25 bins a hit on an 11.5 h catalog) took
# 0.66 ms a scoring dense against 0.95 sorted; a live window that sparse sorts faster
IDENTIFY_DENSE_LIMIT = 32


@dataclass(frozen=True)
class Match:
    """A recognised track."""

    track: Track
    offset_s: float        # position in the track of the query's first sample
    confidence: float
    score: int             # hashes agreeing on the offset (each one, whatever its weight)
    speed: float           # playback speed found (1.0 = as catalogued)
    p_value: float

    def to_json(self) -> dict[str, object]:
        return {
            "track_id": self.track.track_id, "title": self.track.title,
            "artist": self.track.artist, "album": self.track.album,
            "source": self.track.source, "offset_s": round(self.offset_s, 3),
            "confidence": round(self.confidence, 4),
        }


class MatchSession:
    """Accumulates evidence from a stream of peaks and names the best track."""

    def __init__(
        self, catalog: Catalog, params: FingerprintParams | None = None,
        speeds: tuple[float, ...] = DEFAULT_SPEEDS, max_postings: int = 0,
        nominal_dt_tolerance: float | None = None, claim_tolerance_s: float = 0.0,
        rarity_weight: float = 0.0, rolling_nominal: bool = False, dense_limit: int = 0,
    ):
        self.catalog = catalog
        self.params = params or catalog.params
        self.speeds = speeds
        # the nominal-speed hypothesis may hash with its own time tolerance (None: the
        # params' own): most music plays at its own speed, so that is where a reverberant
        # room's smeared gaps are worth the extra lookups and hits
        self._nominal_hash = (self.params.query_hash if nominal_dt_tolerance is None else
                              replace(self.params.query_hash, dt_tolerance=float(nominal_dt_tolerance)))
        # a query hash with more postings than this (0: no limit) is skipped: it says little
        # (a stop-word: most of its postings are coincidences) and costs the most
        self.max_postings = max_postings
        # a hit weighs by how rare its hash is (see `rarity_weights`; 0: every hit weighs 1)
        self._weights = rarity_weights(rarity_weight)
        # hypotheses naming one track at one place now (within this many seconds; 0: never
        # merged) are one claim, see `one_claim`
        self.claim_tolerance_s = float(claim_tolerance_s)
        self._streams = {s: self._new_stream(s) for s in speeds}
        self._hits = {s: EvidenceWindow() for s in speeds}
        self._scorer = Scorer(BIN_FRAMES, WINDOW_BINS, NULL_BLOCK, TAIL_MIN, dense_limit=dense_limit)
        # a live session scores its nominal-speed evidence over the same sliding span every
        # half second while it waits for a song: its counts are kept between scorings
        self._rolling = (RollingCounts(self._scorer, self._track_frames)
                         if rolling_nominal and 1.0 in speeds else None)
        self._frames_of_tracks: tuple[int, np.ndarray] | None = None
        self._chunks: list[np.ndarray] = []    # peaks not yet hashed under every speed
        self._chunk_base = 0                   # chunks dropped from the front of _chunks
        self._consumed: dict[float, int] = {}  # chunks already hashed, per speed (absolute)
        self._frames_final = 0
        self._track_cache: dict[int, Track] = {}
        self._active = tuple(speeds)           # hypotheses hashed as peaks arrive (see focus)
        # each hypothesis' last scoring and what it was asked, kept while its evidence is
        # unchanged: asked the same again (identify's last step re-reads the nominal speed's),
        # only the correction for the hypotheses tried is computed afresh
        self._last_cell: dict[float, tuple[object, EvidenceWindow, int, CellScore | None]] = {}

    # -- feeding -------------------------------------------------------------------------
    def add_peaks(self, peaks: np.ndarray, frames_final: int | None, speeds: tuple[float, ...] | None = None) -> None:
        """Add the extractor's new peaks (None as watermark: end of stream)."""
        self._chunks.append(np.asarray(peaks, dtype=PEAK_DTYPE))
        if frames_final is not None:
            self._frames_final = frames_final
        self._feed_speeds(tuple(speeds or self._active), frames_final)
        self._drop_hashed_chunks()

    def focus(self, speeds: tuple[float, ...] | None) -> None:
        """Hash only these hypotheses from now on (None: all of them again). While a song
        plays at a known speed the others cost lookups and evidence for nothing; their
        windows empty as the stream moves on. A hypothesis taken up again starts from the
        peaks that arrive next (its old stream state and the peaks it missed are dropped);
        the p-value still counts every hypothesis hashed."""
        active = tuple(self.speeds) if speeds is None else tuple(s for s in self.speeds if s in speeds)
        if not active:
            raise ValueError(f"no speed hypothesis of {self.speeds} in {speeds}")
        total = self._chunk_base + len(self._chunks)
        for s in active:
            if s not in self._active:
                self._streams[s] = self._new_stream(s)
                self._consumed[s] = total
        self._active = active
        self._drop_hashed_chunks()

    def set_nominal_tolerance(self, frames: float) -> None:
        """Hash the nominal hypothesis' next peaks with this time tolerance (the listener
        measures its room, smear.py). The anchors its stream held back for their targets are
        dropped at a change: a second or so of nominal evidence is lost."""
        hashing = replace(self._nominal_hash, dt_tolerance=float(frames))
        if hashing == self._nominal_hash:
            return
        self._nominal_hash = hashing
        if 1.0 in self._streams:
            self._streams[1.0] = self._new_stream(1.0)

    def _new_stream(self, speed: float) -> HashStream:
        return HashStream(self.query_hash_params(speed), speed)

    def query_hash_params(self, speed: float) -> HashParams:
        """How the hypothesis at this speed hashes the query."""
        return self._nominal_hash if speed == 1.0 else self.params.query_hash

    @property
    def active_speeds(self) -> tuple[float, ...]:
        return self._active

    def _drop_hashed_chunks(self) -> None:
        """Chunks every hypothesis being hashed has seen are kept no longer (bounded memory
        when live)."""
        done = min(self._consumed.get(s, 0) for s in self._active)
        if done > self._chunk_base:
            del self._chunks[:done - self._chunk_base]
            self._chunk_base = done

    def _feed_speed(self, speed: float, frames_final: int | None) -> None:
        self._feed_speeds((speed,), frames_final)

    def _feed_speeds(self, speeds: tuple[float, ...], frames_final: int | None) -> None:
        """Hash the new peaks under each speed and look all the hashes up at once (the
        hypotheses share most hashes, and one LMDB call is cheaper than one per speed)."""
        self._look_up_and_join(self._hash_new_peaks(speeds, frames_final))

    def _unseen_peaks(self, speed: float) -> np.ndarray:
        """The peaks this speed has not hashed yet: only the chunks it has not seen, O(new
        peaks) per hop, never the history."""
        done = self._consumed.get(speed, 0)
        if done < self._chunk_base:
            raise RuntimeError(f"speed {speed} joined after its peaks were dropped")
        pending = self._chunks[done - self._chunk_base:]
        if len(pending) == 1:
            return pending[0]
        return np.concatenate(pending) if pending else np.empty(0, PEAK_DTYPE)

    def _hash_new_peaks(self, speeds: tuple[float, ...], frames_final: int | None
                        ) -> list[tuple[float, np.ndarray, np.ndarray]]:
        """Each speed's hashes (and anchor times) of the peaks it has not seen yet."""
        total = self._chunk_base + len(self._chunks)
        new_hashes: list[tuple[float, np.ndarray, np.ndarray]] = []
        for speed in speeds:
            new = self._unseen_peaks(speed)
            self._consumed[speed] = total
            hashes, times = self._streams[speed].feed(new, frames_final)
            if len(hashes):
                self._hits[speed].query_hashes += len(hashes)
                new_hashes.append((speed, hashes, times))
        return new_hashes

    def _look_up_and_join(self, new_hashes: list[tuple[float, np.ndarray, np.ndarray]]) -> None:
        """Each speed's hashes (in anchor order) looked up at once, their postings joined
        into that speed's evidence."""
        if not new_hashes:
            return
        uniq = unique_hashes(np.concatenate([h for _, h, _ in new_hashes]))
        postings, starts = self.catalog.lookup_grouped(uniq)
        if len(postings) == 0:
            return
        runs = PostingRuns(postings, uniq, starts)
        for speed, hashes, times in new_hashes:
            runs.join(self._hits[speed], hashes, times, self.max_postings, self._weights)

    def try_more_speeds(self, screen_every: int = 1, screen_p: float = 1.0,
                        screen_keep: int = 1, screen_min_s: float = 0.0) -> tuple[float, ...]:
        """Hash the peaks seen so far under every speed not yet tried (end of stream).

        With `screen_every` n > 1 each of them is first looked up on the most salient n-th of
        the query's anchors alone (salience: a peak's level over its neighbourhood; only those
        anchors are hashed, the same peaks under every speed). Only the
        `screen_keep` likeliest of them, and any other whose evidence there is already
        unlikely by chance (p <= `screen_p` on its own), are looked up in full; the rest keep
        their partial evidence. A song played off speed stands out on a fraction of its
        anchors, and a song the catalog does not know no longer pays for eight full searches.
        Salient anchors, because they are the ones a damaged song keeps: in a room, the
        strongest fifth of a query's anchors find the catalog's hashes ten times as often as
        the weakest fifth (every 4th anchor had found 194 of 288 damaged off-speed development
        queries, the most salient 8th finds 206, for less work). Since the sample is salient,
        the likeliest hypothesis need not be searched in full as well (`screen_keep` 0): on
        576 such queries none was lost without it, and an unknown song takes 10 % less (with
        every 4th anchor that rule had kept 5 of 360). The final p-value still counts every
        hypothesis hashed and tests one hypothesis' evidence as before, so the false-positive
        bound is unchanged;
        what can be lost is an off-speed song too damaged to show on 1/n of its anchors.
        (`hits` of a screened-out hypothesis are then that partial evidence.)

        The sample is never smaller than `screen_min_s` seconds' share of the anchors (the
        share is the peaks' span over it, rounded down): what a screen can see is an amount of
        evidence, not a fraction (480 damaged off-speed 5 s development queries, rooms and
        RT60 1.0 s between hypotheses: the 8th of their anchors kept 286 songs, their 4th 302,
        a full search 307; 10 s queries keep their 8th, 2 s ones are searched in full).

        Returns the hypotheses screened out: their p on the partial evidence was above
        `screen_p` before the correction, so no threshold a caller can mean accepts them, and
        `best` need not score them again."""
        todo = tuple(s for s in self.speeds if self._consumed.get(s, 0) == 0)
        out: tuple[float, ...] = ()
        if todo and self._chunks:
            peaks = self._unseen_peaks(todo[0])   # what all of them are about to hash (none has yet)
            if screen_min_s > 0.0 and screen_every > 1:
                span_frames = float(peaks["time"][-1] - peaks["time"][0]) + 1.0 if len(peaks) else 0.0
                span_s = span_frames * self.params.frame_seconds
                screen_every = max(1, min(int(screen_every), int(span_s // screen_min_s)))
            if screen_every <= 1:
                self._feed_speeds(todo, None)
            else:
                out = self._screen_speeds(todo, peaks, int(screen_every), float(screen_p), int(screen_keep))
        self._drop_hashed_chunks()
        return out

    def _screen_speeds(self, todo: tuple[float, ...], peaks: np.ndarray, every: int, screen_p: float,
                       keep: int) -> tuple[float, ...]:
        pick = salient_peaks(peaks, every)    # the same anchors under every speed
        sample: list[tuple[float, np.ndarray, np.ndarray]] = []
        for speed in todo:
            hashes, times = hash_picked_peaks(peaks, self.query_hash_params(speed), pick, speed)
            if len(hashes):
                self._hits[speed].query_hashes += len(hashes)
                sample.append((speed, hashes, times))
        self._look_up_and_join(sample)
        # only p matters here: neither the cells' places (a second pass over their hits) nor
        # their tracks (a catalog read each) are asked for
        partial = ((self._cell(speed, None, None), speed) for speed, _, _ in sample)
        ranked = sorted((_p_value(c, 1), speed) for c, speed in partial if c is not None)
        go_on = {speed for p, speed in ranked if p <= screen_p} | {speed for _, speed in ranked[:keep]}
        # a continuing hypothesis: all of its anchors hashed now, its evidence gathered
        # afresh in anchor order (the sampled keys are looked up a second time: cheaper than
        # merging two lookups' postings)
        full = tuple(speed for speed, _, _ in sample if speed in go_on)
        for speed in full:
            self._hits[speed] = EvidenceWindow()
        self._look_up_and_join(self._hash_new_peaks(full, None))
        total = self._chunk_base + len(self._chunks)
        for speed in todo:
            self._consumed[speed] = total   # the rest keep their sample's evidence
        return tuple(speed for speed, _, _ in sample if speed not in go_on)

    def hits(self, speed: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The evidence under one speed hypothesis: for every posting that matched a query
        hash, its track (int64), its catalog frame and the query anchor's frame (catalog time
        scale, float64). A copy, in the widths callers compute with."""
        window = self._hits.get(speed) or EvidenceWindow()
        track, t_ref, t_q = window.live()
        return track.astype(np.int64), t_ref.astype(np.float64), t_q.astype(np.float64)

    def evict(self, before_frame: float) -> None:
        """Forget the evidence of query anchors before `before_frame` (a sliding window)."""
        for speed, window in self._hits.items():
            window.evict(before_frame * speed)

    def _near(self, track_id: int, offset_frames: float, speed: float, since_frame: float | None,
              tolerance_frames: float) -> tuple[np.ndarray, int]:
        """The query frames (catalog time scale) of one track's hits at (about) one offset
        since a frame, and how many hits that track has there in all."""
        window = self._hits.get(speed)
        if window is None or track_id < 0 or track_id >= 1 << 32:
            return np.empty(0), 0
        return near(window, track_id, offset_frames, tolerance_frames,
                    None if since_frame is None else since_frame * speed)

    def support(self, track_id: int, offset_frames: float, speed: float, since_frame: float | None = None,
                tolerance_frames: float = 4.0) -> tuple[int, float | None, int]:
        """Hits for one track at (about) one offset since a frame, the query frame of the
        latest of them, and the track's hits there in all: is a known song still being
        heard, more than by coincidence, and until when?"""
        times, of_track = self._near(track_id, offset_frames, speed, since_frame, tolerance_frames)
        return len(times), (float(times.max()) / speed if len(times) else None), of_track

    def track_support(self, track_id: int, offset_frames: float, speed: float, since_frame: float | None = None,
                      tolerance_frames: float = 4.0) -> tuple[int, int]:
        """Hits of one track since a frame: how many sit at (about) this offset, and how many
        there are in all (its coincidence rate). Cheaper than filtering `hits()`, a copy."""
        times, of_track = self._near(track_id, offset_frames, speed, since_frame, tolerance_frames)
        return len(times), of_track

    def first_heard(self, track_id: int, offset_frames: float, speed: float,
                    tolerance_frames: float = 4.0, run: int = 3, within_frames: float = 62.0) -> float | None:
        """The earliest query frame still in memory from which this track is heard at this
        offset: the first of `run` hits that fall within `within_frames` (a lone
        coincidental hit before the song began does not count)."""
        times, _ = self._near(track_id, offset_frames, speed, None, tolerance_frames)
        times.sort()
        if len(times) < run:
            return float(times[0]) / speed if len(times) else None
        dense = np.flatnonzero(times[run - 1:] - times[:len(times) - run + 1] <= within_frames)
        first = times[dense[0]] if len(dense) else times[0]
        return float(first) / speed

    # -- scoring -------------------------------------------------------------------------
    def _track(self, track_id: int) -> Track | None:
        track = self._track_cache.get(track_id)
        if track is None:
            track = self.catalog.get_track(track_id)
            if track is not None:
                self._track_cache[track_id] = track
        return track

    def best(self, since_frame: float | None = None, mute: tuple[int, float] | None = None,
             speeds: tuple[float, ...] | None = None, max_p: float | None = None) -> Match | None:
        """The best-supported track over all speed hypotheses tried (or None).

        `since_frame` limits the evidence to query anchors at or after that frame;
        `mute=(track, frame)` leaves out that track's evidence before that frame (inf: all
        of it), e.g. a song that has just ended, or the one playing (is another starting?).
        `speeds` scores only those hypotheses now; the p-value is still corrected for every
        hypothesis hashed, since a caller may look at the others another time. `max_p`: None
        as well when the best is less sure than this (then its place is not worked out: a
        second pass over the cell's hits, most evaluations' only use of them)."""
        tried = [s for s in self.speeds if self._hits[s].query_hashes]
        scored = tried if speeds is None else [s for s in speeds if s in tried]
        cells = [c for c in (self._scored(s, since_frame, len(tried), mute) for s in scored) if c is not None]
        if not cells:
            return None
        lead = min(cells, key=lambda c: c.p_value)   # the first of equals, in the order scored
        if max_p is not None and lead.p_value > max_p:
            return None
        best = self._as_match(lead)
        if self.claim_tolerance_s > 0.0:
            # only hypotheses naming the same track can be one claim with it
            found = [best if c is lead else self._as_match(c) for c in cells
                     if c.track.track_id == lead.track.track_id]
            best = one_claim(best, found, self._frames_final * self.params.frame_seconds,
                             self.claim_tolerance_s)
        return best

    def _scored(self, speed: float, since: float | None, n_speeds: int,
                mute: tuple[int, float] | None = None) -> _Scored | None:
        """One hypothesis' best cell and its p-value, corrected for `n_speeds` hypotheses."""
        since_here = None if since is None else since * speed
        mute_here = None if mute is None else (mute[0], mute[1] * speed)
        cell = self._cell(speed, since_here, mute_here)
        if cell is None:
            return None
        tr = self._track(cell.track)
        if tr is None:
            return None
        return _Scored(speed, since_here, mute_here, cell, tr, _p_value(cell, n_speeds))

    def _as_match(self, c: _Scored) -> Match:
        """The match a scored hypothesis names: its place is the median offset of the cell's hits."""
        offsets = self._cell_offsets(c)
        offset_frames = float(np.median(offsets))
        return Match(
            track=c.track, offset_s=offset_frames * self.params.frame_seconds,
            confidence=1.0 - c.p_value, score=len(offsets), speed=c.speed, p_value=c.p_value,   # hits, not weights
        )

    def _cell(self, speed: float, since: float | None, mute: tuple[int, float] | None) -> CellScore | None:
        """The best cell of one hypothesis' evidence (scored again only when it changed; its
        offsets gathered when first asked for, see `_cell_offsets`)."""
        window = self._hits[speed]
        if mute is not None and mute[1] <= window.bound(since):
            mute = None   # it leaves out hits before the span scored: nothing
        asked = (since, mute)
        last = self._last_cell.get(speed)
        if last is not None and last[0] == asked and last[1] is window and last[2] == window.generation:
            return last[3]
        rolled = (self._rolling.best_cell(window, since) if self._rolling is not None and speed == 1.0
                  and mute is None else False)
        cell = self._scorer.best_cell(window, since, mute, offsets=False) if rolled is False else rolled
        self._last_cell[speed] = (asked, window, window.generation, cell)
        return cell

    def _track_frames(self) -> np.ndarray:
        """Each track id's length in frames (0: no such track), read again when the catalog's
        track count changes (the rolling counts' layout)."""
        count = self.catalog.track_count()
        if self._frames_of_tracks is None or self._frames_of_tracks[0] != count:
            tracks = self.catalog.tracks()
            frames = np.zeros(max((t.track_id for t in tracks), default=-1) + 1, np.uint32)
            for t in tracks:
                frames[t.track_id] = math.ceil(t.duration_s / self.params.frame_seconds) + 1
            self._frames_of_tracks = (count, frames)
        return self._frames_of_tracks[1]

    def _cell_offsets(self, c: _Scored) -> np.ndarray:
        """The offsets of a scored cell's hits, kept with the cell while its evidence is
        unchanged (scoring and offsets are asked of the same window: nothing joins between)."""
        if len(c.cell.offsets):
            return c.cell.offsets
        window = self._hits[c.speed]
        offsets = self._scorer.cell_offsets(window, c.since, c.mute, c.cell)
        last = self._last_cell.get(c.speed)
        if last is not None and last[3] is c.cell and last[2] == window.generation:
            self._last_cell[c.speed] = (last[0], last[1], last[2], replace(c.cell, offsets=offsets))
        return offsets


def _p_value(cell: CellScore, n_speeds: int) -> float:
    """A best cell's chance under the null, corrected for `n_speeds` hypotheses."""
    # the floor of the tail's scale in the counts' unit: weighted counts scale with the
    # hits' mean weight (a small catalog's hashes are nearly all rare, weighing ~16)
    floor = BETA_FLOOR * cell.weight / max(1, cell.hits)
    log_p = tail_log_p(cell.count, cell.k, cell.u, cell.top_sum, floor) + math.log(n_speeds)
    return math.exp(min(0.0, log_p))


def salient_peaks(peaks: np.ndarray, share: int) -> np.ndarray:
    """The indices (ascending) of the most salient 1/`share` of a time-ordered peak array
    (salience: a peak's level over its spectral neighbourhood; speed does not change it, so
    every speed hypothesis screens the same anchors). Equal saliences: the earlier first."""
    n = max(1, round(len(peaks) / share)) if len(peaks) else 0
    order = np.argsort(-peaks["salience"], kind="stable")[:n]
    return np.sort(order).astype(np.int32)


@dataclass(frozen=True)
class _Scored:
    """A hypothesis scored: its best cell, the filters it was scored with (in its own time
    scale), the track named and the p-value."""

    speed: float
    since: float | None
    mute: tuple[int, float] | None
    cell: CellScore
    track: Track
    p_value: float


def one_claim(best: Match, found: list[Match], now_s: float, tolerance_s: float) -> Match:
    """Neighbouring speed hypotheses see one song at one place now with different offsets,
    and in clean audio the wrong neighbour can win on p-value by a hair (its exact gaps
    against the nominal one's tolerant, denser ones). The matches in `found` naming `best`'s
    track within `tolerance_s` of its place at `now_s` (stream seconds) are one claim: the
    best p-value, with the speed, offset and score of the hypothesis with the most agreeing
    hashes (on a tie, the one nearer to nominal speed), the one the song keeps agreeing with
    as it plays."""
    def here(m: Match) -> float:
        return m.offset_s + now_s * m.speed

    same = [m for m in found if m.track.track_id == best.track.track_id
            and abs(here(m) - here(best)) <= tolerance_s]
    lead = max(same, key=lambda m: (m.score, -abs(m.speed - 1.0)), default=best)
    if lead is best:
        return best
    return replace(best, offset_s=lead.offset_s, speed=lead.speed, score=lead.score)


def rarity_weights(scale: float, max_weight: int = MAX_WEIGHT) -> np.ndarray | None:
    """The weight of a hit whose hash has df postings, for df = 0, 1, ...: round(scale /
    sqrt(df)) within 1 .. max_weight, the last entry for any larger df (None for scale 0).

    Why: a hash with df postings makes df hits, and at most one of them is the song's, so
    the null's hits are mostly those of common hashes while a true cell's hits are one per
    matching query hash, whatever its df. Weighing by df^-1/2 (a likelihood ratio's
    -log df, flattened) lets rare agreements count for more than common ones."""
    if scale <= 0:
        return None
    n = math.ceil((scale / 1.5) ** 2) + 2     # beyond: round(scale / sqrt(df)) <= 1
    df = np.arange(n, dtype=np.float64)
    df[0] = 1.0
    return np.clip(np.round(scale / np.sqrt(df)), 1, max_weight).astype(np.uint8)


def tail_log_p(c: int, k: int, u: float, top_sum: int, beta_floor: float = BETA_FLOOR) -> float:
    """`null_log_p` from the tail statistics of the null maxima (see native/score.h): the
    k largest sum to top_sum, the next is u. `beta_floor` is the smallest tail scale in the
    counts' unit: BETA_FLOOR hits, times the hits' mean weight when they are weighted."""
    if k < 2:
        u, beta, k = 0.0, beta_floor, 1
    else:
        beta = max(beta_floor, (top_sum - k * u) / k)
    return math.log(k) - (float(c) - u) / beta


def window_counts(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (track << KEY_SHIFT | offset bin) keys and, for each, the hits in it and the
    next WINDOW_BINS - 1 bins of the same track."""
    ukeys, counts = np.unique(keys, return_counts=True)
    window = counts.copy()
    # keys are distinct and sorted, so key + k (k < WINDOW_BINS) can only sit at i + j, j <= k
    for j in range(1, WINDOW_BINS):
        if len(ukeys) <= j:
            break
        close = (ukeys[j:] - ukeys[:-j]) < WINDOW_BINS
        window[:-j] += np.where(close, counts[j:], 0)
    return ukeys, window


def null_log_p(ukeys: np.ndarray, window: np.ndarray, best: int) -> float:
    """log of the expected number of null offset blocks scoring at least the best cell.

    Coincidental hits are not Poisson: music shares keys, tempi and held notes, so they
    cluster. The null is instead learnt from this very query: the offset axis of every
    track is cut into blocks of NULL_BLOCK bins, and each block's best window is a sample
    of the null maximum (the best cell's own neighbourhood excluded). Its upper tail is
    exponential (the Gumbel domain of such maxima), fitted by the mean excess over the
    top blocks; the expected count of null blocks reaching the best score is the p-value
    bound before the speed hypotheses' correction."""
    c = float(window[best])
    block = (ukeys >> KEY_SHIFT) * (1 << 28) + ((ukeys & KEY_MASK) // NULL_BLOCK)
    starts = np.flatnonzero(np.r_[True, block[1:] != block[:-1]])
    maxima = np.maximum.reduceat(window, starts)
    own = block[best]
    near = np.abs(block[starts] - own) <= 1
    null = np.sort(maxima[~near])[::-1].astype(np.float64)
    k = int(min(len(null), max(TAIL_MIN, len(null) // 20)))
    if k < 2:
        u, beta, k = 0.0, BETA_FLOOR, 1
    else:
        u = float(null[k])  if k < len(null) else 0.0
        beta = max(BETA_FLOOR, float(np.mean(null[:k] - u)))
    return math.log(k) - (c - u) / beta


def identify_peaks(
    catalog: Catalog, peaks: np.ndarray, speed_search: bool = True,
    speeds: tuple[float, ...] = DEFAULT_SPEEDS, accept_p: float = SURE_P,
) -> Match | None:
    """Best match for the peaks of a whole query (see `match_peaks` for the order of the tests)."""
    return match_peaks(catalog, peaks, speed_search, speeds, accept_p)[1]


def match_peaks(
    catalog: Catalog, peaks: np.ndarray, speed_search: bool = True,
    speeds: tuple[float, ...] = DEFAULT_SPEEDS, accept_p: float = SURE_P,
    settle_p: float = SETTLE_P, screen_every: int = SCREEN_EVERY, screen_p: float = SCREEN_P,
    screen_keep: int = SCREEN_KEEP, rarity_weight: float = RARITY_WEIGHT, screen_min_s: float = SCREEN_MIN_S,
) -> tuple[MatchSession, Match | None]:
    """The best match of a whole query's peaks, with the session that holds the evidence
    (to explain a result). Three tests, each only when the one before is not sure enough:

    1. the query's hashes of exact gaps at nominal speed (no time tolerance: a third of the
       lookups) — enough when p <= `settle_p`: most songs heard as recorded, or in
       moderate noise, are that sure on these alone, twice as fast;
    2. every hash at nominal speed (the tolerance: a reverberant room moves peaks by a
       frame), accepted at p <= `accept_p`;
    3. every speed hypothesis, Bonferroni-corrected: each first on the most salient
       `screen_every`-th of the anchors (at least `screen_min_s` seconds' share), and in full
       only where that is already unlikely by chance (p <= `screen_p`, see
       `MatchSession.try_more_speeds`) — a song the catalog does not know no longer pays for
       eight full searches.

    The false-positive bound is the sum of the tests': settle_p + accept_p + the third's.
    An unsettled query pays for the first test again in the second (≈ a third of a
    nominal-speed match), so the second's answer is exactly what it would be alone."""
    qh = catalog.params.query_hash
    settle_p = min(settle_p, accept_p)   # never surer than the caller asks of the rest
    if settle_p > 0.0 and qh.dt_tolerance > 0.0:
        exact = replace(catalog.params, query_hash=replace(qh, dt_tolerance=0.0))
        quick = MatchSession(catalog, params=exact, speeds=(1.0,), rarity_weight=rarity_weight,
                             dense_limit=IDENTIFY_DENSE_LIMIT)
        quick.add_peaks(peaks, None)
        settled = quick.best()
        if settled is not None and settled.p_value <= settle_p:
            return quick, settled
    session = MatchSession(catalog, speeds=speeds if speed_search else (1.0,), rarity_weight=rarity_weight,
                           dense_limit=IDENTIFY_DENSE_LIMIT)
    session.add_peaks(peaks, None, speeds=(1.0,))
    first = session.best()
    if speed_search and (first is None or first.p_value > accept_p):
        out = session.try_more_speeds(screen_every=screen_every, screen_p=screen_p,
                                      screen_keep=screen_keep, screen_min_s=screen_min_s)
        return session, session.best(speeds=tuple(s for s in session.speeds if s not in out))
    return session, first
