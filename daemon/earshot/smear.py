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

import numpy as np

from .catalog import Catalog
from .fingerprint import FingerprintParams
from .matcher import MatchSession

SMEARED_RATIO = 2.0       # tolerant hits over exact ones at a song's place: the room smears
SONGS_REMEMBERED = 3      # the decision is the median of this many songs' ratios
MIN_TOLERANT_HITS = 10    # fewer hits at the place than this: the song says nothing


def hits_at_place(catalog: Catalog, params: FingerprintParams, peaks: np.ndarray, track_id: int,
                  offset_frames: float, speed: float, tolerance_frames: float, rarity_weight: float,
                  ) -> tuple[int, int]:
    """A song's hits at its place (catalog frame − query frame × speed = `offset_frames`,
    within `tolerance_frames`) among these peaks' hashes: with exact time gaps, and with
    every gap ±1 frame."""
    counts = []
    for dt_tolerance in (0.0, 1.0):
        hashing = replace(params, query_hash=replace(params.query_hash, dt_tolerance=dt_tolerance))
        session = MatchSession(catalog, params=hashing, speeds=(speed,), rarity_weight=rarity_weight)
        session.add_peaks(peaks, None)
        n, _, _ = session.support(track_id, offset_frames, speed, tolerance_frames=tolerance_frames)
        counts.append(n)
    return counts[0], counts[1]


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
