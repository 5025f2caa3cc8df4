"""Identify: decode → fingerprint → match. The engine behind `earshot identify`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio.decode import Audio, Limits, decode
from .catalog import Catalog
from .config import RecognitionSection
from .fingerprint import extract_peaks
from .ingest import fingerprint_rate_signal
from .matcher import Match, MatchSession, match_peaks

DEFAULT_MIN_CONFIDENCE = RecognitionSection().min_confidence


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
    speed_search: bool = True,
) -> Recognition:
    """Fingerprint and match audio, keeping the evidence (identify_audio's one code path)."""
    params = catalog.params
    signal = fingerprint_rate_signal(audio, params)
    peaks = extract_peaks(signal, params.query_peaks)
    session, candidate = match_peaks(catalog, peaks, speed_search=speed_search,
                                     accept_p=max(1e-12, 1.0 - min_confidence))
    sure = candidate is not None and candidate.confidence >= min_confidence
    return Recognition(signal, peaks, session, candidate, candidate if sure else None)


def identify_audio(
    catalog: Catalog, audio: Audio, *, min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    speed_search: bool = True,
) -> Match | None:
    """The catalog track this audio is an excerpt of, or None when nothing is sure enough."""
    return recognise_audio(catalog, audio, min_confidence=min_confidence,
                           speed_search=speed_search).match


def identify_file(catalog: Catalog, path: Path, limits: Limits = Limits(), **kw: object) -> Match | None:
    return identify_audio(catalog, decode(Path(path), limits), **kw)  # type: ignore[arg-type]
