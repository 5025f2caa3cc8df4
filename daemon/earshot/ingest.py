"""Ingest: decode → fingerprint → store. The engine behind `earshot ingest`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio.decode import Audio, Limits, audio_digest, decode
from .audio.resample import mix_mono, resample
from .catalog import Catalog
from .fingerprint import FingerprintParams, fingerprint_signal
from .tags import TrackMeta, read_meta


@dataclass(frozen=True)
class IngestOutcome:
    track_id: int
    added: bool       # False: the same audio was already in the catalog
    title: str
    hashes: int
    duration_s: float


def fingerprint_rate_signal(audio: Audio, params: FingerprintParams) -> np.ndarray:
    """The mono signal at the fingerprint rate."""
    return resample(mix_mono(audio.samples), audio.sample_rate, params.sample_rate)


def ingest_audio(catalog: Catalog, audio: Audio, meta: TrackMeta | dict, source: str) -> IngestOutcome:
    """Fingerprint decoded audio and store it (skipped when the same audio is stored)."""
    if isinstance(meta, dict):
        meta = TrackMeta(meta["title"], meta.get("artist"), meta.get("album"))
    digest = audio_digest(audio)
    existing = catalog.find_digest(digest)
    if existing is not None:
        return IngestOutcome(existing, False, meta.title, 0, audio.duration_s)
    params = catalog.params
    signal = fingerprint_rate_signal(audio, params)
    fp = fingerprint_signal(signal, params.catalog_peaks, params.catalog_hash)
    track_id, added = catalog.add_track(
        title=meta.title, artist=meta.artist, album=meta.album, duration_s=audio.duration_s,
        source=source, digest=digest, hashes=fp.hashes, times=fp.times,
    )
    return IngestOutcome(track_id, added, meta.title, len(fp.hashes), audio.duration_s)


def ingest_file(catalog: Catalog, path: Path, limits: Limits = Limits()) -> IngestOutcome:
    """Decode, tag-read and ingest one file (AudioError when it cannot be decoded)."""
    path = Path(path).resolve()
    audio = decode(path, limits)
    return ingest_audio(catalog, audio, read_meta(path), str(path))
