"""Small catalogs of synthetic songs for tests (real LMDB files, built by the real ingest)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from earshot.audio.decode import Audio
from earshot.catalog import Catalog
from earshot.ingest import ingest_audio
from music import song


def song_catalog(path: Path, seeds: range, seconds: float, rate: int, title: str = "Song {n}",
                 artist: str | None = None, source: str = "/music/{n}.wav") -> dict[int, np.ndarray]:
    """Create a catalog at `path` of one synthetic song per seed; returns the songs by track id.
    `title` and `source` may use {i} (0-based) and {n} (1-based), the song's place in `seeds`."""
    songs = {}
    with Catalog.open(path, create=True) as cat:
        for i, seed in enumerate(seeds):
            x = song(seed, seconds, rate)
            meta = {"title": title.format(i=i, n=i + 1)}
            if artist is not None:
                meta["artist"] = artist
            out = ingest_audio(cat, Audio(x[:, None], rate), meta, source.format(i=i, n=i + 1))
            assert out.added, f"song {seed} was not added"
            songs[out.track_id] = x
    return songs
