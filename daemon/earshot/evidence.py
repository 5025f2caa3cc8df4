"""The evidence of one speed hypothesis: a sliding window of hits, stored compactly, scored in C.

A hit is a catalog posting that matched a query hash: (track, t_ref, t_q), the posting's
track and frame and the query anchor's frame on the catalog's time scale. A live stream adds
a few thousand hits per hop and forgets those older than the window, so the hits live in one
preallocated buffer per field, appended at the end and dropped from the front (no copy per
eviction; the live part moves to the front only when the end is reached).

Hits arrive in anchor order, which is time order up to the peaks of one frame (their
interpolated times differ by under a frame): `_disorder` bounds how far a t_q can fall below
any earlier one, so a binary search for `frame - _disorder` finds a cut before which every
hit is earlier than `frame` (the cut falls between runs). Cuts are therefore conservative, and every query also filters
hit by hit, so the answers are exactly those of filtering the whole window.

Every posting of every hash of one query anchor shares the anchor's time, so hits are stored
in runs of one t_q: per hit a uint32 track and a uint32 frame, per run a float32 anchor time
and the run's end (the widths the catalog and the hasher produce, so nothing is rounded).
On the hour benchmark a run holds ~250 hits, so a hit costs 8 bytes rather than the 12 of a
t_q per hit: the windows are the daemon's largest buffers (~2 M hits while nine speed
hypotheses search music the catalog does not know), 23 -> 15 MB. Joined by
native/evidence.c and scored by native/score.c without a copy.
"""
from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .native import ffi, lib

_MIN_CAPACITY = 4096   # hits
_MIN_RUNS = 256

# A hit's track word: the catalog's 24-bit track id and, above it, (weight - 1) (see
# native/evidence.h); a plain id weighs 1.
TRACK_BITS = int(lib.ES_EV_TRACK_BITS)
TRACK_MASK = np.uint32((1 << TRACK_BITS) - 1)
MAX_WEIGHT = int(lib.ES_EV_MAX_WEIGHT)


def track_words(track: np.ndarray, weight: np.ndarray | int = 1) -> np.ndarray:
    """Track words for hits of these track ids weighing `weight` (1 .. MAX_WEIGHT)."""
    track = np.asarray(track, np.uint32)
    weight = np.asarray(weight, np.int64)
    if np.any(track > TRACK_MASK) or np.any((weight < 1) | (weight > MAX_WEIGHT)):
        raise ValueError(f"track ids are 24-bit and weights 1 .. {MAX_WEIGHT}")
    return track | ((weight - 1).astype(np.uint32) << np.uint32(TRACK_BITS))


@dataclass(frozen=True)
class CellScore:
    """The best (track, offset) cell of a window and its null-model tail statistics."""

    track: int
    bin: int            # first offset bin of the cell
    count: int          # the hits in the cell's window of bins, each its weight
    n_null: int         # null blocks
    k: int              # tail size
    u: float            # threshold of the tail
    top_sum: int        # sum of the k largest null maxima
    weight: int         # the scored hits' weights, summed (their number when all weigh 1)
    hits: int           # the scored hits
    offsets: np.ndarray  # t_ref - t_q of the cell's hits (float64; one per hit, whatever its weight)


def _cut(t_q: np.ndarray, frame: float, disorder: float) -> int:
    """An index i with every t_q[:i] < frame, found by bisection (t_q sorted up to
    `disorder`: t_q[j] >= t_q[i] - disorder for j > i)."""
    x = frame - disorder
    if x == -math.inf:
        return 0
    if x == math.inf:
        return len(t_q)
    # bisect_left on the float32 array, exactly for a float64 bound: every t_q before the
    # returned index is < the float32 just below or at x, hence < x
    f = np.float32(x)
    if float(f) > x:
        f = np.nextafter(f, np.float32(-np.inf))
    return int(np.searchsorted(t_q, f, side="left"))


class EvidenceWindow:
    """The hits of one speed hypothesis, oldest first, in runs of one anchor time."""

    def __init__(self, capacity: int = _MIN_CAPACITY):
        self._track = np.empty(capacity, np.uint32)
        self._t_ref = np.empty(capacity, np.uint32)
        self._run_t = np.empty(_MIN_RUNS, np.float32)    # each run's t_q
        self._run_end = np.empty(_MIN_RUNS, np.uint32)   # one past each run's last hit
        self._head = 0   # first live hit (the first live run's first)
        self._tail = 0   # one past the last
        self._run_head = 0
        self.runs_before = 0        # runs dropped from the buffers' front so far: run i is run
                                    # runs_before + i of the window's life (see RollingCounts)
        self._run_tail = 0
        self._floor = -math.inf     # hits before this t_q are evicted (some may still be stored)
        self._latest = -math.inf    # the largest t_q stored so far
        self._disorder = 0.0        # how far a t_q falls below an earlier one, at most
        self.query_hashes = 0
        self.generation = 0         # counts the changes to the hits (a scoring is valid for one)
        self._order = ffi.new("double[2]")   # (latest, disorder) as es_ev_disorder updates them

    def __len__(self) -> int:
        return self._tail - self._head

    @property
    def nbytes(self) -> int:
        return self._track.nbytes + self._t_ref.nbytes + self._run_t.nbytes + self._run_end.nbytes

    def _reserve(self, n: int, runs: int) -> None:
        """Room for n more hits and `runs` more runs at the end: move the live part to the
        front, reallocating when the slack would be under a quarter of the live hits (or is
        far too large). A quarter: the buffers are the daemon's largest (~1.25x the window's
        hits, measured ~8 MB less than with a half's slack on the hour benchmark), for a move
        of the live hits every few seconds of audio."""
        if self._tail + n <= len(self._track) and self._run_tail + runs <= len(self._run_t):
            return
        live, live_runs = self._tail - self._head, self._run_tail - self._run_head
        hit_cap = _capacity(len(self._track), live, live + n, _MIN_CAPACITY)
        run_cap = _capacity(len(self._run_t), live_runs, live_runs + runs, _MIN_RUNS)
        for name, cap, a, b in (("_track", hit_cap, self._head, self._tail),
                                ("_t_ref", hit_cap, self._head, self._tail),
                                ("_run_t", run_cap, self._run_head, self._run_tail),
                                ("_run_end", run_cap, self._run_head, self._run_tail)):
            old = getattr(self, name)
            new = old if cap == len(old) else np.empty(cap, old.dtype)
            new[:b - a] = old[a:b]
            setattr(self, name, new)
        self._run_end[:live_runs] -= np.uint32(self._head)
        self.runs_before += self._run_head
        self._head, self._tail = 0, live
        self._run_head, self._run_tail = 0, live_runs

    def append(self, track: np.ndarray, t_ref: np.ndarray, t_q: np.ndarray) -> None:
        """Add hits (t_q not before the last hit's)."""
        n = len(track)
        if n == 0:
            return
        t_q = np.asarray(t_q, np.float32)
        starts = np.flatnonzero(np.r_[True, t_q[1:] != t_q[:-1]])   # where each run begins
        runs = len(starts)
        self._reserve(n, runs)
        end = self._tail + n
        self._track[self._tail:end] = track
        self._t_ref[self._tail:end] = t_ref
        self._run_t[self._run_tail:self._run_tail + runs] = t_q[starts]
        self._run_end[self._run_tail:self._run_tail + runs] = self._tail + np.r_[starts[1:], n]
        self.commit_join(n, runs, t_q)

    def reserve_for_join(self, n: int, runs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
        """Writable views for up to n new hits and `runs` new runs at the end, and the index
        of the first new hit (run ends count from the buffers' start; commit with
        `commit_join`)."""
        self._reserve(n, runs)
        end, run_end = self._tail + n, self._run_tail + runs
        return (self._track[self._tail:end], self._t_ref[self._tail:end],
                self._run_t[self._run_tail:run_end], self._run_end[self._run_tail:run_end], self._tail)

    def commit_join(self, n: int, runs: int, times: np.ndarray) -> None:
        """Take the n hits in `runs` runs written after the end (see `reserve_for_join`).
        `times`: their anchor times in order (float32, as stored), or any sequence they are a
        subsequence of (the query hashes' times rather than the runs': the disorder found over
        a sequence bounds that of its subsequences, so cuts stay conservative)."""
        if n and len(times):
            times = np.asarray(times)
            if times.dtype != np.float32:
                raise TypeError("anchor times are float32, as the window stores them")
            times = np.ascontiguousarray(times)
            self._order[0], self._order[1] = self._latest, self._disorder
            lib.es_ev_disorder(ffi.cast("float *", ffi.from_buffer(times)), len(times),
                               self._order, self._order + 1)
            self._latest, self._disorder = self._order[0], self._order[1]
        self._tail += n
        self._run_tail += runs
        self.generation += 1

    def _first_run_from(self, frame: float) -> int:
        """A run index r with every run before it entirely before `frame` (see `_cut`)."""
        return self._run_head + _cut(self._run_t[self._run_head:self._run_tail], frame, self._disorder)

    def _run_start(self, r: int) -> int:
        """The first hit of run r."""
        return self._head if r == self._run_head else int(self._run_end[r - 1])

    def views(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The hits stored: track ids (uint32, without their weights) and t_ref (uint32,
        zero-copy), t_q (float32) made from the runs; some before `floor` may remain (filter
        with `since`)."""
        return self._expand(self._run_head)

    def weights(self) -> np.ndarray:
        """The stored hits' weights (as `views` orders them)."""
        start = self._run_start(self._run_head)
        return (self._track[start:self._tail] >> np.uint32(TRACK_BITS)).astype(np.int64) + 1

    def _expand(self, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The hits of runs r.. as three arrays (track ids, t_ref, t_q repeated from the runs)."""
        start = self._run_start(r)
        ends = self._run_end[r:self._run_tail].astype(np.int64)
        lengths = np.diff(np.r_[start, ends])
        t_q = np.repeat(self._run_t[r:self._run_tail], lengths)
        return self._track[start:self._tail] & TRACK_MASK, self._t_ref[start:self._tail], t_q

    def evict(self, before: float) -> None:
        """Forget hits whose t_q is before `before` (no copy: the front just moves). A window
        left empty gives its buffers back (a hypothesis no longer hashed, or silence)."""
        self._floor = max(self._floor, before)
        self.generation += 1
        r = self._first_run_from(self._floor)
        self._head, self._run_head = self._run_start(r), r
        if self._head == self._tail:
            self.runs_before += self._run_tail
            self._head = self._tail = self._run_head = self._run_tail = 0
            if len(self._track) > _MIN_CAPACITY:
                self._track = np.empty(_MIN_CAPACITY, np.uint32)
                self._t_ref = np.empty(_MIN_CAPACITY, np.uint32)
            if len(self._run_t) > _MIN_RUNS:
                self._run_t = np.empty(_MIN_RUNS, np.float32)
                self._run_end = np.empty(_MIN_RUNS, np.uint32)

    def bound(self, frame: float | None) -> float:
        """The t_q a hit must reach to count: `frame`, or the eviction floor when later."""
        return self._floor if frame is None else max(frame, self._floor)

    def since(self, frame: float | None) -> tuple[HitRuns, float]:
        """The stored hits that may have t_q >= frame (zero-copy, for the kernels), and the
        bound to filter them with exactly: t_q >= bound (frame, or the eviction floor when
        later)."""
        bound = self.bound(frame)
        return HitRuns(self, self._first_run_from(bound)), bound

    def live(self, frame: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exactly the hits with t_q >= frame (all not evicted for None): copies."""
        bound = self.bound(frame)
        track, t_ref, t_q = self._expand(self._first_run_from(bound))
        if len(t_q) and bound > -math.inf:
            keep = t_q >= bound
            return track[keep], t_ref[keep], t_q[keep]
        return track, t_ref.copy(), t_q


def _capacity(capacity: int, live: int, need: int, minimum: int) -> int:
    """A buffer's capacity for `need` elements, `live` of them kept (see `_reserve`)."""
    if need + live // 4 > capacity or capacity > 2 * need + 3 * minimum:
        return need + need // 4 + minimum
    return capacity


class HitRuns:
    """A window's runs from one on, as the kernels read them (es_ev_hits, no copy). Valid
    until the window changes."""

    def __init__(self, window: EvidenceWindow, first_run: int, end_run: int | None = None):
        self.hits = ffi.new("es_ev_hits *")
        w = window
        end_run = w._run_tail if end_run is None else end_run
        end_hit = w._tail if end_run == w._run_tail else w._run_start(end_run)
        self.n = end_hit - w._run_start(first_run) if first_run < end_run else 0
        if self.n == 0:
            return
        # the buffers the struct points into, kept alive with it
        self._keep = (ffi.from_buffer(w._track), ffi.from_buffer(w._t_ref),
                      ffi.from_buffer(w._run_t), ffi.from_buffer(w._run_end))
        self.hits.track = ffi.cast("unsigned int *", self._keep[0])
        self.hits.t_ref = ffi.cast("unsigned int *", self._keep[1])
        self.hits.run_t = ffi.cast("float *", self._keep[2]) + first_run
        self.hits.run_end = ffi.cast("unsigned int *", self._keep[3]) + first_run
        self.hits.n_runs = end_run - first_run
        self.hits.first = w._run_start(first_run)


def near(window: EvidenceWindow, track_id: int, offset: float, tolerance: float,
         since: float | None) -> tuple[np.ndarray, int]:
    """The anchor times (float64, in order) of one track's hits with t_q >= since whose
    offset t_ref - t_q is within `tolerance` of `offset`, and how many hits of that track
    there are since then in all. One pass in C over the window, no copy of it."""
    runs, bound = window.since(since)
    if runs.n == 0:
        return np.empty(0), 0
    of_track = ffi.new("long long *")
    out = np.empty(256, np.float64)
    while True:
        found = int(lib.es_ev_near(runs.hits, bound, int(track_id), float(offset), float(tolerance),
                                   ffi.cast("double *", ffi.from_buffer(out)), len(out), of_track))
        if found <= len(out):
            return out[:found], int(of_track[0])
        out = np.empty(found, np.float64)


_scratch = threading.local()


def _work(n: int) -> np.ndarray:
    """The scoring kernel's scratch, at least n elements and at least what the dense method
    last asked for (`_want_dense`): one per thread, kept between calls and sessions (a fresh
    one per query cost page faults on every ~10 MB of it)."""
    n = max(n, getattr(_scratch, "dense_need", 0))
    work = getattr(_scratch, "work", None)
    if work is None or len(work) < n:
        work = _scratch.work = np.empty(n + n // 4, np.uint64)
    return work


def _want_dense(need: int) -> None:
    """The dense method needed this much scratch and had less: `_work` grows to it next time."""
    _scratch.dense_need = max(need, getattr(_scratch, "dense_need", 0))


def cell_of(r: Any) -> CellScore:
    """A kernel's es_ev_result as a CellScore, its offsets not gathered (empty)."""
    return CellScore(track=int(r.track), bin=int(r.bin), count=int(r.count), n_null=int(r.n_null),
                     k=int(r.k), u=float(r.u), top_sum=int(r.top_sum), weight=int(r.weight),
                     hits=int(r.kept), offsets=np.empty(0, np.float64))


class Scorer:
    """Scores windows with the C kernel (its scratch is per thread, see `_work`).

    The kernel counts in a dense array when that pays (a live window on a catalog of hours:
    ~1.4 M bins for ~250 k hits) and there is room for it in the scratch (it needs less than
    sorting does there); it says how much it needed, and the scratch is grown to that for the
    next scoring. `method` forces one (the tests compare them; the results are the same)."""

    def __init__(self, bin_frames: float, window_bins: int, block_bins: int, tail_min: int,
                 method: str = "auto", dense_limit: int = 0):
        self.bin_frames, self.window_bins = float(bin_frames), int(window_bins)
        self.block_bins, self.tail_min = int(block_bins), int(tail_min)
        self.method = {"auto": lib.ES_EV_AUTO, "sort": lib.ES_EV_SORT, "dense": lib.ES_EV_DENSE}[method]
        # "auto" counts densely up to this many offset bins a hit (0: the kernel's 16)
        self.dense_limit = int(dense_limit)
        self._result = ffi.new("es_ev_result *")
        self.last_method = ""   # the method of the last scoring: "sort" or "dense"

    def best_cell(self, window: EvidenceWindow, since: float | None,
                  mute: tuple[int, float] | None, offsets: bool = True) -> CellScore | None:
        """The best cell of the hits with t_q >= since, the muted (track, t_q before) left
        out; None when no hit is left. offsets=False leaves the cell's offsets empty (a
        second pass over the hits; `cell_offsets` gives them later, on the same window)."""
        runs, bound = window.since(since)
        if runs.n == 0:
            return None
        work = _work(2 * runs.n)
        mute_track, mute_before = (-1, 0.0) if mute is None else (int(mute[0]), float(mute[1]))
        rc = lib.es_ev_score(runs.hits, bound, mute_track, mute_before, self.bin_frames,
                             self.window_bins, self.block_bins, self.tail_min,
                             ffi.cast("unsigned long long *", ffi.from_buffer(work)), len(work),
                             self.method, self.dense_limit, self._result)
        if rc == lib.ES_EV_EMPTY:
            return None
        if rc != lib.ES_EV_OK:
            raise ValueError("evidence out of range for the offset histogram")
        r = self._result
        if r.dense_need > len(work):
            _want_dense(int(r.dense_need))
        self.last_method = "dense" if r.method == lib.ES_EV_DENSE else "sort"
        cell = cell_of(r)
        return replace(cell, offsets=self.cell_offsets(window, since, mute, cell)) if offsets else cell

    def cell_offsets(self, window: EvidenceWindow, since: float | None, mute: tuple[int, float] | None,
                     cell: CellScore) -> np.ndarray:
        """t_ref - t_q of the hits in `cell` (as `best_cell` found it on this window, filtered
        alike): one per hit, whatever its weight."""
        runs, bound = window.since(since)
        mute_track, mute_before = (-1, 0.0) if mute is None else (int(mute[0]), float(mute[1]))
        offsets = np.empty(cell.count, np.float64)   # hits weigh at least 1: room for all
        found = lib.es_ev_cell_offsets(runs.hits, bound, mute_track, mute_before, self.bin_frames,
                                       self.window_bins, cell.track, cell.bin,
                                       ffi.cast("double *", ffi.from_buffer(offsets)), len(offsets))
        return offsets[:found]


class RollingCounts:
    """One window's dense histogram kept between scorings (es_ev_roll), for a window scored
    over and over on the same span: a listener waiting for a song scores its nominal-speed
    evidence every half second over the last 12 s, and counting 250 k hits afresh each time
    was most of the cost. Here each hit is counted when it joins and taken away when it
    leaves the span scored; a scoring is the scan of the counts. The same result, field for
    field, as `Scorer.best_cell` without offsets (the kernel's dense scan of the same counts).

    It holds the hits of the window's runs [a, b) of its life (`EvidenceWindow.runs_before`)
    with t_q >= β. Asked for the runs from bound β' on ([A, B), A the first run that may
    reach β': anchor times come a frame out of order), it takes away the hits of [a, b)
    with t_q in [β, β') and adds those of [b, B) with t_q >= β'; it is built again when it
    cannot get there (the span moved back or by more than a quarter of itself, a hit outside
    its layout, a count past 255). It declines (False: score as usual) a span of less than
    half the window (a candidate's fresh evidence: the usual span comes next) and a window
    too sparse for the dense layout; the caller declines mutes that leave hits out."""

    Q_MARGIN_FRAMES = 1875.0    # 30 s of anchor times past the latest at a build (16 ms frames)
    RETRY_AFTER = 8             # scorings declined after a build that failed

    def __init__(self, scorer: Scorer, track_frames: Callable[[], np.ndarray]):
        self.scorer = scorer
        self.track_frames = track_frames   # each track id's length in frames (0: none)
        holder = ffi.new("es_ev_roll **")
        if lib.es_ev_roll_new(holder) != lib.ES_EV_OK:
            raise MemoryError("rolling counts")
        self._roll = ffi.gc(holder[0], lib.es_ev_roll_free)
        self._window: EvidenceWindow | None = None
        # (a, b, bound): the hits of runs [a, b) of the window's life with t_q >= bound
        self._held: tuple[int, int, float] | None = None
        self._result = ffi.new("es_ev_result *")
        self._idle = 0
        self.builds = 0

    def best_cell(self, window: EvidenceWindow, since: float | None) -> CellScore | None | bool:
        """The window's best cell from `since` on (as Scorer.best_cell, offsets empty), None
        when no hit is left, or False: declined (score it the usual way)."""
        bound = window.bound(since)
        first = window._first_run_from(bound)
        base = window.runs_before
        want = (base + first, base + window._run_tail, bound)
        if want[0] >= want[1]:
            return None
        if 2 * (want[1] - want[0]) < window._run_tail - window._run_head:
            return False    # the recent part of the window only (a candidate's fresh evidence)
        held = self._held if self._window is window else None
        # moved on by a quarter of the span or less: the difference; else counted afresh
        # (runs held must still be stored: an eviction past the bound held drops counted hits)
        moved = want[0] - held[0] + want[1] - held[1] if held is not None else 0
        if (held is not None and base + window._run_head <= held[0] <= want[0]
                and held[1] <= want[1] and held[2] <= bound and 4 * moved <= want[1] - want[0]):
            ok = (self._apply(window, held[0] - base, held[1] - base, -1, held[2], bound)
                  and self._apply(window, held[1] - base, want[1] - base, 1, bound, math.inf))
            self._held = want if ok else None
        else:
            self._held = None
        if self._held is None:
            if self._idle > 0:   # a build just failed (too sparse, a count past 255): not yet again
                self._idle -= 1
                return False
            if not self._build(window, first, want):
                self._idle = self.RETRY_AFTER
                return False
        work = _work(max(16, len(window) // 2 + 2))
        scratch = ffi.cast("unsigned long long *", ffi.from_buffer(work))
        rc = lib.es_ev_roll_score(self._roll, self.scorer.tail_min, scratch, len(work), self._result)
        if rc == lib.ES_EV_EMPTY:
            return None
        if rc != lib.ES_EV_OK:
            return False
        return cell_of(self._result)

    def _apply(self, window: EvidenceWindow, r0: int, r1: int, sign: int,
               q_from: float, q_to: float) -> bool:
        """Add or take away the hits of runs [r0, r1) (the buffers' indices) with t_q in
        [q_from, q_to)."""
        if r0 >= r1 or q_from >= q_to:
            return True
        runs = HitRuns(window, r0, r1)
        if runs.n == 0:
            return True
        return lib.es_ev_roll_apply(self._roll, runs.hits, sign, q_from, q_to) == lib.ES_EV_OK

    def _build(self, window: EvidenceWindow, first: int, want: tuple[int, int, float]) -> bool:
        runs = HitRuns(window, first)
        if runs.n == 0:
            return False
        frames = np.ascontiguousarray(self.track_frames(), np.uint32)
        s = self.scorer
        rc = lib.es_ev_roll_build(self._roll, runs.hits, want[2],
                                  ffi.cast("unsigned int *", ffi.from_buffer(frames)), len(frames),
                                  self.Q_MARGIN_FRAMES, s.bin_frames, s.window_bins, s.block_bins)
        self.builds += 1
        self._window = window
        self._held = want if rc == lib.ES_EV_OK else None
        return self._held is not None


def unique_hashes(hashes: np.ndarray) -> np.ndarray:
    """The distinct hashes, ascending (np.unique's answer, by the kernels' radix sort)."""
    hashes = np.ascontiguousarray(hashes, np.uint32)
    out = np.empty(len(hashes), np.uint32)
    work = np.empty(2 * len(hashes), np.uint64)
    n = lib.es_ev_unique(ffi.cast("unsigned int *", ffi.from_buffer(hashes)), len(hashes),
                         ffi.cast("unsigned int *", ffi.from_buffer(out)),
                         ffi.cast("unsigned long long *", ffi.from_buffer(work)))
    return out[:n]


class PostingRuns:
    """A catalog lookup's postings (LOOKUP_DTYPE, grouped by hash ascending) with where each
    looked-up hash's run begins (`starts`, when the lookup said so; else found here):
    built once per lookup, joined with every speed's hashes."""

    def __init__(self, postings: np.ndarray, keys: np.ndarray, starts: np.ndarray | None = None):
        self.postings = postings
        self.keys = np.ascontiguousarray(keys, np.uint32)
        self._raw = ffi.cast("unsigned char *", ffi.from_buffer(postings))
        self._keys = ffi.cast("unsigned int *", ffi.from_buffer(self.keys))
        given = starts is not None
        self.starts = np.ascontiguousarray(starts, np.int64) if given else np.empty(len(self.keys) + 1, np.int64)
        self._starts = ffi.cast("long long *", ffi.from_buffer(self.starts))
        if given:
            if len(self.starts) != len(self.keys) + 1 or self.starts[-1] != len(postings):
                raise ValueError("the runs given do not fit the postings")
        elif lib.es_ev_runs(self._raw, len(postings), self._keys, len(self.keys), self._starts) != lib.ES_EV_OK:
            raise ValueError("postings are not grouped by the hashes looked up")
        # a hash table over the keys (load at most a half): the join finds each query hash's
        # run in a probe or two, where a binary search cost it ~14 unpredictable branches
        self._slot_bits = max(4, int(len(self.keys)).bit_length() + 1)
        self.slots = np.zeros(1 << self._slot_bits, np.uint32)
        self._slots = ffi.cast("unsigned int *", ffi.from_buffer(self.slots))
        if lib.es_ev_key_table(self._keys, len(self.keys), self._slots, self._slot_bits) != lib.ES_EV_OK:
            raise ValueError("the hashes looked up repeat")

    def join(self, window: EvidenceWindow, hashes: np.ndarray, times: np.ndarray, max_postings: int = 0,
             weights: np.ndarray | None = None) -> int:
        """Append to `window` one hit per (query hash, posting of that hash); hashes with
        more than `max_postings` postings are skipped (0: none). `weights[df]` (uint8, 1 ..
        MAX_WEIGHT; the last for any larger df) is the weight of a hit whose hash has df
        postings (None: all weigh 1). Returns the hits added."""
        if len(hashes) == 0 or len(self.postings) == 0:
            return 0
        hashes = np.ascontiguousarray(hashes, np.uint32)
        times = np.ascontiguousarray(times, np.float32)
        table = ffi.NULL if weights is None else ffi.cast("unsigned char *", ffi.from_buffer(weights))
        args = (self._raw, self._keys, self._slots, self._slot_bits, self._starts,
                ffi.cast("unsigned int *", ffi.from_buffer(hashes)), ffi.cast("float *", ffi.from_buffer(times)),
                len(hashes), max_postings, table, 0 if weights is None else len(weights))
        n_runs = ffi.new("long long *")
        # count first: reserve exactly
        n = int(lib.es_ev_join(*args, ffi.NULL, ffi.NULL, ffi.NULL, ffi.NULL, 0, 0, 0, n_runs))
        if n == 0:
            return 0
        runs = int(n_runs[0])
        tr, tref, run_t, run_end, base = window.reserve_for_join(n, runs)
        lib.es_ev_join(*args, ffi.cast("unsigned int *", ffi.from_buffer(tr)),
                       ffi.cast("unsigned int *", ffi.from_buffer(tref)), ffi.cast("float *", ffi.from_buffer(run_t)),
                       ffi.cast("unsigned int *", ffi.from_buffer(run_end)), base, n, runs, n_runs)
        window.commit_join(n, runs, times)
        return n


def join_hits(window: EvidenceWindow, postings: np.ndarray, keys: np.ndarray, hashes: np.ndarray,
              times: np.ndarray, max_postings: int = 0, weights: np.ndarray | None = None) -> int:
    """`PostingRuns(postings, keys).join(...)` for one window."""
    return PostingRuns(postings, keys).join(window, hashes, times, max_postings, weights)
