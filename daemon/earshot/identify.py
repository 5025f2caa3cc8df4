"""Identify: decode → fingerprint → match. The engine behind `earshot identify`."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .audio.decode import Audio, Limits, decode
from .catalog import Catalog
from .config import RecognitionSection
from .fingerprint import FingerprintParams, PeakParams, extract_peaks
from .ingest import fingerprint_rate_signal
from .matcher import Match, MatchSession, match_peaks

DEFAULT_MIN_CONFIDENCE = RecognitionSection().min_confidence

# A whole query is judged on all of its evidence at once, so it leaves out its weakest peaks:
# those less than this salient (dB over their neighbourhood; the catalog keeps peaks from
# 6 dB, a query's lookups from 4). Noise and reverberation make most of the weak ones, and
# few of their hashes are the catalog's: in the room mix, anchors under 9 dB carried 60 % of
# a query's hashes and of its coincidental postings but 13 % of the hashes found at the true
# offset (16 development tracks, 5 queries each; pink noise 5 dB: 9 %). Measured with the
# whole matcher on development tracks (UFO:AI, Singularity, HyperRogue: 1140 queries of 5
# and 10 s, 19 damages, two seeds): right answers 988 at 4 dB, 991 at 9, 987 at 10 (and 398
# of one seed's 480 at 11, against 410); coincidental false positives 1, 0, 0 of 120; CPU per known
# query 22.6 -> 17.1 ms, per unknown 60.0 -> 44.7 ms. The live listener keeps the 4 dB floor
# (`FingerprintParams.query_peaks`): it decides from a few seconds of hits, and at 9 dB the
# room hour's median announcement came 1.5 s later.
QUERY_MIN_SALIENCE_DB = 9.0


def query_peak_params(params: FingerprintParams, min_salience_db: float = QUERY_MIN_SALIENCE_DB) -> PeakParams:
    """The peaks a whole query is matched on: the live listener's, less the weakest."""
    return replace(params.query_peaks, min_salience_db=float(min_salience_db))


@dataclass(frozen=True)
class Recognition:
    """Everything one identification saw, kept for explaining its result (`--plot`)."""

    signal: np.ndarray          # mono, at the fingerprint rate
    peaks: np.ndarray           # the query's spectral peaks (PEAK_DTYPE)
    session: MatchSession       # the evidence: postings hit under each speed tried
    candidate: Match | None     # the best-supported track, however weak
    match: Match | None         # the candidate when it is sure enough, else None


def recognise_audio(
    catalog: Catalog, audio: Audio, *, min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    speed_search: bool = True, min_salience_db: float = QUERY_MIN_SALIENCE_DB,
) -> Recognition:
    """Fingerprint and match audio, keeping the evidence (identify_audio's one code path)."""
    params = catalog.params
    signal = fingerprint_rate_signal(audio, params)
    peaks = extract_peaks(signal, query_peak_params(params, min_salience_db))
    session, candidate = match_peaks(catalog, peaks, speed_search=speed_search,
                                     accept_p=max(1e-12, 1.0 - min_confidence))
    sure = candidate is not None and candidate.confidence >= min_confidence
    return Recognition(signal, peaks, session, candidate, candidate if sure else None)


def identify_audio(
    catalog: Catalog, audio: Audio, *, min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    speed_search: bool = True, min_salience_db: float = QUERY_MIN_SALIENCE_DB,
) -> Match | None:
    """The catalog track this audio is an excerpt of, or None when nothing is sure enough."""
    return recognise_audio(catalog, audio, min_confidence=min_confidence,
                           speed_search=speed_search, min_salience_db=min_salience_db).match


def identify_file(catalog: Catalog, path: Path, limits: Limits = Limits(), **kw: object) -> Match | None:
    return identify_audio(catalog, decode(Path(path), limits), **kw)  # type: ignore[arg-type]
