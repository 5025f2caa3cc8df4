"""Identify: decode → fingerprint → match. The engine behind `earshot identify`."""
from __future__ import annotations

from pathlib import Path

from .audio.decode import Audio, Limits, decode
from .catalog import Catalog
from .config import RecognitionSection
from .fingerprint import extract_peaks
from .ingest import fingerprint_rate_signal
from .matcher import Match, identify_peaks

DEFAULT_MIN_CONFIDENCE = RecognitionSection().min_confidence


def identify_audio(
    catalog: Catalog, audio: Audio, *, min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    speed_search: bool = True,
) -> Match | None:
    """The catalog track this audio is an excerpt of, or None when nothing is sure enough."""
    params = catalog.params
    signal = fingerprint_rate_signal(audio, params)
    peaks = extract_peaks(signal, params.query_peaks)
    match = identify_peaks(catalog, peaks, speed_search=speed_search,
                           accept_p=max(1e-12, 1.0 - min_confidence))
    if match is None or match.confidence < min_confidence:
        return None
    return match


def identify_file(catalog: Catalog, path: Path, limits: Limits = Limits(), **kw: object) -> Match | None:
    return identify_audio(catalog, decode(Path(path), limits), **kw)  # type: ignore[arg-type]
