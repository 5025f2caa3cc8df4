"""How much the room moves a song's peaks in time: whether live hashes need a time tolerance.

A reverberant room moves spectral peaks by a frame or so, so the exact time gap between two
of them is often off by one: exact-gap hashes then lose most of what survives the room, and
hashing every gap ±1 frame (`identify`'s way) finds about three times as many of a song's
hits at its place. A dry chain (a line-in, a stream) moves nothing: the tolerance adds only
coincidences there, and it lets a recording that an uncatalogued song mixes in faintly pass
for the song (the live benchmark's medley tracks). So the listener measures its room on the
songs it announces: their hits at their place with the tolerance over those with exact gaps,
on the last seconds' peaks. Measured on the benchmark's music (10 s, at the right place):
1.00-1.19 in clean audio, 2.4-3.9 in the room mix; a faint copy inside another song in
clean audio, 1.6-2.35. The tolerance is on while the median of the last few songs' ratios is
at least 2 (half of a song's true hits a frame off: halfway between a dry chain's 1 and a
fully smeared room's 3).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .catalog import Catalog
from .fingerprint import FingerprintParams, HashStream

SMEARED_RATIO = 2.0       # tolerant hits over exact ones at a song's place: the room smears
SONGS_REMEMBERED = 3      # the decision is the median of this many songs' ratios
MIN_TOLERANT_HITS = 10    # fewer hits at the place than this: the song says nothing
LOOKUP_CHUNK = 2048       # distinct hashes looked up at once when counting


def hits_at_place(catalog: Catalog, params: FingerprintParams, peaks: np.ndarray, track_id: int,
                  offset_frames: float, speed: float, tolerance_frames: float) -> tuple[int, int]:
    """A song's hits at its place (catalog frame − query frame on the catalog's time scale =
    `offset_frames`, within `tolerance_frames`) among these peaks' hashes: with exact time
    gaps, and with every gap ±1 frame. Counted from the postings of that one track, not
    joined into evidence (which took 6-10 MB more at the peak on a 10-hour catalog); the same
    counts as `MatchSession.support` on that evidence."""
    counts = []
    with catalog.reader() as txn:
        for dt_tolerance in (0.0, 1.0):
            hashing = replace(params.query_hash, dt_tolerance=dt_tolerance)
            hashes, times = HashStream(hashing, speed).feed(peaks, None)
            if len(hashes) == 0:
                counts.append(0)
                continue
            order = np.argsort(hashes, kind="stable")
            hashes, times = hashes[order], times[order]
            own = _postings_of_track(catalog, txn, np.unique(hashes), track_id)
            # each posting of the track meets every query hash equal to its own
            theirs = own["hash"].astype(np.uint32)
            lo = np.searchsorted(hashes, theirs, side="left")
            hi = np.searchsorted(hashes, theirs, side="right")
            n = 0
            for a, b, frame in zip(lo, hi, own["time"].astype(np.float64)):
                n += int(np.count_nonzero(np.abs(frame - times[a:b] - offset_frames) <= tolerance_frames))
            counts.append(n)
    return counts[0], counts[1]


def _postings_of_track(catalog: Catalog, txn: Any, distinct: np.ndarray, track_id: int) -> np.ndarray:
    """The postings of these hashes that belong to one track, looked up a few thousand hashes
    at a time (all tracks' postings of 12 s of tolerant hashes took ~10 MB at once)."""
    parts = []
    for i in range(0, len(distinct), LOOKUP_CHUNK):
        got = catalog.lookup(distinct[i:i + LOOKUP_CHUNK], txn)
        parts.append(got[got["track"] == track_id])
    return np.concatenate(parts)


@dataclass
class RoomSmear:
    """The last few announced songs' smear ratios and the time tolerance they call for."""

    ratios: deque[float] = field(default_factory=lambda: deque(maxlen=SONGS_REMEMBERED))

    def add(self, exact: int, tolerant: int) -> None:
        """One song's hits at its place, exact and tolerant (too few: ignored)."""
        if tolerant >= MIN_TOLERANT_HITS:
            self.ratios.append(tolerant / max(1, exact))

    @property
    def tolerance(self) -> int:
        """Frames by which the live hashes' time gaps may be off: 1 in a smearing room, else 0
        (and 0 until a song has been measured)."""
        return int(bool(self.ratios) and float(np.median(self.ratios)) >= SMEARED_RATIO)
