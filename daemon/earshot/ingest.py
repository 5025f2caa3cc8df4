"""Ingest: decode → fingerprint → store. The engine behind `earshot ingest`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio.decode import Audio, Limits, audio_digest, decode, file_digest
from .audio.resample import mix_mono, resample
from .catalog import Catalog, NewTrack
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


def prepare_audio(
    audio: Audio, meta: TrackMeta | dict, source: str, params: FingerprintParams,
    file_digest: str | None = None,
) -> NewTrack:
    """Fingerprint decoded audio into a track ready to store."""
    if isinstance(meta, dict):
        meta = TrackMeta(meta["title"], meta.get("artist"), meta.get("album"))
    signal = fingerprint_rate_signal(audio, params)
    fp = fingerprint_signal(signal, params.catalog_peaks, params.catalog_hash)
    return NewTrack(meta.title, meta.artist, meta.album, audio.duration_s, source,
                    audio_digest(audio), file_digest, fp.hashes, fp.times)


def prepare_file(path: Path, params: FingerprintParams, limits: Limits = Limits(),
                 file_digest_hex: str | None = None) -> NewTrack:
    """Decode, read the tags of, and fingerprint one file (AudioError when unreadable)."""
    path = Path(path).resolve()
    audio = decode(path, limits)
    return prepare_audio(audio, read_meta(path), str(path), params,
                         file_digest_hex or file_digest(path))


def ingest_audio(catalog: Catalog, audio: Audio, meta: TrackMeta | dict, source: str) -> IngestOutcome:
    """Fingerprint decoded audio and store it (skipped when the same audio is stored)."""
    item = prepare_audio(audio, meta, source, catalog.params)
    track_id, added = catalog.add_tracks([item])[0]
    return IngestOutcome(track_id, added, item.title, len(item.hashes), item.duration_s)


def ingest_file(catalog: Catalog, path: Path, limits: Limits = Limits()) -> IngestOutcome:
    """Decode, tag-read and ingest one file (AudioError when it cannot be decoded)."""
    fd = file_digest(Path(path))
    existing = catalog.find_file_digest(fd)
    if existing is not None:
        return IngestOutcome(existing, False, Path(path).name, 0, 0.0)
    item = prepare_file(path, catalog.params, limits, fd)
    track_id, added = catalog.add_tracks([item])[0]
    return IngestOutcome(track_id, added, item.title, len(item.hashes), item.duration_s)
