"""Track metadata from a file's tags (mutagen), else from its name."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TrackMeta:
    title: str
    artist: str | None
    album: str | None


def _first(tags: object, key: str) -> str | None:
    try:
        values = tags[key]  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return None
    if isinstance(values, (list, tuple)):
        values = values[0] if values else None
    text = str(values).strip() if values is not None else ""
    return text or None


def meta_from_name(path: Path) -> TrackMeta:
    """'Artist - Title.ext' → artist and title; otherwise the cleaned-up file name."""
    stem = re.sub(r"[_]+", " ", path.stem).strip()
    stem = re.sub(r"^\d{1,3}[ .\-]+", "", stem) or stem  # leading track numbers
    if " - " in stem:
        artist, title = stem.split(" - ", 1)
        return TrackMeta(title.strip() or stem, artist.strip() or None, None)
    return TrackMeta(stem or path.name, None, None)


def read_meta(path: Path) -> TrackMeta:
    """Title, artist and album from the tags when present, else from the file name."""
    import mutagen  # here: only ingest reads tags, and `earshot run` imports this module too

    fallback = meta_from_name(path)
    try:
        f = mutagen.File(str(path), easy=True)
    except Exception:  # mutagen raises many kinds on odd files; tags are optional
        f = None
    tags = getattr(f, "tags", None) if f is not None else None
    if not tags:
        return fallback
    return TrackMeta(
        title=_first(tags, "title") or fallback.title,
        artist=_first(tags, "artist") or _first(tags, "albumartist") or fallback.artist,
        album=_first(tags, "album"),
    )
