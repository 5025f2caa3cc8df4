"""Ingest: decode → fingerprint → store. The engine behind `earshot ingest`."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio.decode import Audio, Limits, decode, file_digest
from .audio.resample import Resampler, mix_mono, resample
from .catalog import Catalog, NewTrack
from .fingerprint import FingerprintParams, PeakStream, hash_peaks
from .levels import DEFAULT_LEVELS, LevelStream
from .levels import pack as pack_levels
from .tags import TrackMeta, read_meta

# Frames per step of the ingest pipeline: small enough that the mono mix, the resampled
# block and the spectra stay in cache, large enough that the per-call cost is nothing.
_BLOCK_FRAMES = 1 << 17


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


def catalog_fingerprint(audio: Audio, params: FingerprintParams) -> tuple[np.ndarray, np.ndarray, str]:
    """The catalog hashes and anchor times of decoded audio, and its content digest
    (`catalog_analysis` without the band levels)."""
    return catalog_analysis(audio, params, with_levels=False)[:3]


def catalog_analysis(audio: Audio, params: FingerprintParams, with_levels: bool = True
                     ) -> tuple[np.ndarray, np.ndarray, str, np.ndarray | None]:
    """The catalog hashes and anchor times of decoded audio, its content digest and its
    band levels (levels.py; None when not asked for or when the fingerprint rate is not the
    levels' rate).

    One pass in cache-sized blocks (mix → resample → peaks; each stage streams, so the
    result is exactly that of whole-signal calls), never holding the whole mono or
    resampled signal. The digest is SHA-256 of the fingerprint-rate mono signal: the same
    audio in another container or with other tags has the same digest, and audio that only
    differs where the fingerprint cannot see (above its band, between channels) would index
    identically, so it is the same track to the catalog. Hashing that signal rather than the
    decoded samples costs a tenth: at 44.1 kHz stereo SHA-256 of the samples took as long as
    the fingerprint."""
    rate = params.sample_rate
    resampler = Resampler(audio.sample_rate, rate)
    peaks = PeakStream(params.catalog_peaks)
    levels = LevelStream() if with_levels and DEFAULT_LEVELS.sample_rate == rate else None
    digest = hashlib.sha256(f"earshot-fp-signal:{rate}:".encode())
    found, level_blocks = [], []
    samples = audio.samples
    for start in range(0, len(samples), _BLOCK_FRAMES):
        signal = resampler.process(mix_mono(samples[start:start + _BLOCK_FRAMES]))
        digest.update(memoryview(signal))
        found.append(peaks.process(signal))
        if levels is not None:
            level_blocks.append(levels.process(signal))
    tail = resampler.flush()
    digest.update(memoryview(tail))
    found += [peaks.process(tail), peaks.flush()]
    hashes, times = hash_peaks(np.concatenate(found), params.catalog_hash)
    if levels is None:
        return hashes, times, digest.hexdigest(), None
    level_blocks.append(levels.process(tail))
    return hashes, times, digest.hexdigest(), np.concatenate(level_blocks)


def prepare_audio(
    audio: Audio, meta: TrackMeta | dict, source: str, params: FingerprintParams,
    file_digest: str | None = None,
) -> NewTrack:
    """Fingerprint decoded audio into a track ready to store."""
    if isinstance(meta, dict):
        meta = TrackMeta(meta["title"], meta.get("artist"), meta.get("album"))
    hashes, times, digest, levels = catalog_analysis(audio, params)
    return NewTrack(meta.title, meta.artist, meta.album, audio.duration_s, source,
                    digest, file_digest, hashes, times,
                    None if levels is None else pack_levels(levels))


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
