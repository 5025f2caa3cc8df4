"""Stored analyses, so the same audio is measured once.

One small JSON file per analysis under `<state_dir>/analysis-cache/`, named by a key made of
the decoded audio's content digest, the meter's version and every setting that changes the
numbers (the mono mode). A new meter version therefore never serves stale figures; old
entries are simply never read again. Writes go through a temporary file and a rename, so a
crash never leaves half an entry; an unreadable entry is treated as missing.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .loudness import METER_VERSION


def cache_key(content_digest: str, **settings: Any) -> str:
    """The key of one analysis: content, meter version and settings."""
    parts = [content_digest, f"meter={METER_VERSION}"] + [f"{k}={settings[k]}" for k in sorted(settings)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


class AnalysisCache:
    """A folder of stored analyses (JSON), keyed by `cache_key`."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored analysis, or None when absent or unreadable."""
        try:
            with open(self._path(key), encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and data.get("_key") == key else None

    def put(self, key: str, analysis: dict[str, Any]) -> bool:
        """Store an analysis; False (and nothing stored) when the folder is not writable."""
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(dict(analysis, _key=key), f, allow_nan=False)
            os.replace(tmp, path)
        except OSError:
            return False
        return True
