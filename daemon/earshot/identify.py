"""Identify: decode → fingerprint → match. The engine behind `earshot identify`."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .audio.decode import Audio, Limits, decode
from .audio.resample import resample
from .catalog import Catalog
from .config import RecognitionSection
from .fingerprint import extract_peaks
from .ingest import fingerprint_rate_signal
from .levels import CHECK_MIN_Z, LevelCheck, band_levels
from .matcher import Match, MatchSession, match_peaks

DEFAULT_MIN_CONFIDENCE = RecognitionSection().min_confidence

# A candidate the fingerprint is unsure of, however unsure, is checked by its band levels
# (levels.py), and confirmed when they stand CHECK_MIN_Z standard deviations above those at
# random places of the catalog. The fingerprint chose the place, so the levels test that one
# place: on the development tracks (room, pink 0 dB, reverb 1.0 s, white 0 dB, talk; 5 and 10
# s) the 523 unknown songs' candidates of p > 0.5 reached z <= 4.7, while 4 of the 61 known
# queries left unsure had their right place there at z 6.7-9.2.


@dataclass(frozen=True)
class Recognition:
    """Everything one identification saw, kept for explaining its result (`--plot`)."""

    signal: np.ndarray          # mono, at the fingerprint rate
    peaks: np.ndarray           # the query's spectral peaks (PEAK_DTYPE)
    session: MatchSession       # the evidence: postings hit under each speed tried
    candidate: Match | None     # the best-supported track, however weak
    match: Match | None         # the candidate when it is sure enough, else None
    level_check: LevelCheck | None = None   # the candidate's band levels, when checked


def recognise_audio(
    catalog: Catalog, audio: Audio, *, min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    speed_search: bool = True,
) -> Recognition:
    """Fingerprint and match audio, keeping the evidence (identify_audio's one code path)."""
    params = catalog.params
    signal = fingerprint_rate_signal(audio, params)
    peaks = extract_peaks(signal, params.query_peaks)
    session, candidate = match_peaks(catalog, peaks, speed_search=speed_search,
                                     accept_p=max(1e-12, 1.0 - min_confidence))
    level_check = None
    # unsure (in p: `confidence` rounds to 1.0 long before p reaches 0)
    if candidate is not None and candidate.p_value > 1.0 - min_confidence:
        level_check = check_levels(catalog, signal, candidate)
        if level_check is not None and level_check.z >= CHECK_MIN_Z:
            # two independent pieces of evidence: the chance of both by coincidence
            p = max(candidate.p_value, 1e-300) * level_check.p_value()
            candidate = replace(candidate, confidence=1.0 - p, p_value=p)
    sure = candidate is not None and candidate.confidence >= min_confidence
    return Recognition(signal, peaks, session, candidate, candidate if sure else None, level_check)


def check_levels(catalog: Catalog, signal: np.ndarray, candidate: Match) -> LevelCheck | None:
    """The candidate's band levels against the query's (None when the catalog has none for
    its track). The query is first brought to the catalog's time scale (a deck s times fast
    is slowed by s)."""
    params = catalog.level_params
    if params is None or params.sample_rate != catalog.params.sample_rate:
        return None
    rate = params.sample_rate
    if abs(candidate.speed - 1.0) > 1e-6:
        signal = resample(signal, rate, int(round(rate * candidate.speed)))
    first = int(round(candidate.offset_s / params.frame_s))
    return catalog.check_levels(band_levels(signal, params), candidate.track.track_id, first)


def identify_audio(
    catalog: Catalog, audio: Audio, *, min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    speed_search: bool = True,
) -> Match | None:
    """The catalog track this audio is an excerpt of, or None when nothing is sure enough."""
    return recognise_audio(catalog, audio, min_confidence=min_confidence,
                           speed_search=speed_search).match


def identify_file(catalog: Catalog, path: Path, limits: Limits = Limits(), **kw: object) -> Match | None:
    return identify_audio(catalog, decode(Path(path), limits), **kw)  # type: ignore[arg-type]
