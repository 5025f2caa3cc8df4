"""Small catalogs of synthetic songs for tests (real LMDB files, built by the real ingest)."""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
from earshot.audio.decode import Audio
from earshot.audio.resample import Resampler
from earshot.catalog import Catalog
from earshot.fingerprint import PeakStream
from earshot.ingest import ingest_audio
from music import song


def song_catalog(path: Path, seeds: Sequence[int], seconds: float, rate: int, title: str = "Song {n}",
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


def titled_catalog(path: Path, tracks: Mapping[str, np.ndarray], rate: int) -> dict[int, np.ndarray]:
    """Create a catalog at `path` of the given mono tracks by title (source /m/<title>.wav);
    returns them by track id."""
    out = {}
    with Catalog.open(path, create=True) as cat:
        for title, x in tracks.items():
            added = ingest_audio(cat, Audio(x[:, None], rate), {"title": title}, f"/m/{title}.wav")
            assert added.added, f"{title} was not added"
            out[added.track_id] = x
    return out


def _opened_readonly(path: Path, songs: dict[int, np.ndarray]) -> Iterator[tuple[Catalog, dict[int, np.ndarray]]]:
    cat = Catalog.open(path, readonly=True)
    yield cat, songs
    cat.close()


def readonly_song_catalog(folder: Path, seeds: Sequence[int], rate: int,
                          seconds: float = 30.0) -> Iterator[tuple[Catalog, dict[int, np.ndarray]]]:
    """For a module fixture (`yield from`): a catalog of titled songs S0, S1, ... made in
    `folder`, opened read-only, and its songs by track id; closed when the module is done."""
    path = folder / "catalog"
    yield from _opened_readonly(path, song_catalog(path, seeds, seconds, rate, title="S{i}", source="/m/{i}.wav"))


def readonly_titled_catalog(folder: Path, tracks: Mapping[str, np.ndarray],
                            rate: int) -> Iterator[tuple[Catalog, dict[int, np.ndarray]]]:
    """`readonly_song_catalog` of the given tracks by title (see `titled_catalog`)."""
    path = folder / "catalog"
    yield from _opened_readonly(path, titled_catalog(path, tracks, rate))


def peak_hops(cat: Catalog, x: np.ndarray, rate: int, hop_s: float = 0.25) -> Iterator[tuple[np.ndarray, int | None]]:
    """The query peaks of `x` hop by hop as the live pipeline makes them (resampled with
    state, streamed), with the peak stream's watermark after each hop."""
    rs, ps = Resampler(rate, cat.params.sample_rate), PeakStream(cat.params.query_peaks)
    hop = int(rate * hop_s)
    for i in range(0, len(x), hop):
        yield ps.process(rs.process(x[i:i + hop])), ps.frames_final
