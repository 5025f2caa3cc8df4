"""Helpers shared by the subcommands: config loading, progress display, JSON lines."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..config import Config, load_config

if TYPE_CHECKING:
    from ..audio.decode import Limits
    from ..catalog import Catalog


def config_from_args(args: Any) -> Config:
    """The effective configuration for this invocation."""
    return load_config(Path(args.config) if getattr(args, "config", None) else None)


def print_json(obj: Any, stream: TextIO | None = None) -> None:
    """One JSON object per line, flushed (so pipes see results as they come)."""
    stream = stream or sys.stdout
    stream.write(json.dumps(obj, ensure_ascii=False, allow_nan=False) + "\n")
    stream.flush()


def compact_and_say(catalog: Catalog) -> None:
    """Compact the catalog (see `Catalog.compact`) and say by how much, on stderr."""
    before, after = catalog.compact()
    print(f"compacted {catalog.path}: {before / 1e6:.1f} MB → {after / 1e6:.1f} MB", file=sys.stderr)


class Progress:
    """A one-line progress bar on a terminal; silent when stderr is not a terminal."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None):
        stream = stream or sys.stderr
        self.total, self.label, self.stream = total, label, stream
        self.enabled = stream.isatty() and total > 0
        self.done = 0
        self._last = 0.0

    def step(self, name: str = "") -> None:
        self.done += 1
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and self.done < self.total:
            return
        self._last = now
        width = 30
        filled = int(width * self.done / self.total)
        bar = "#" * filled + "-" * (width - filled)
        tail = name[-40:]
        self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total} {tail:<40}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * 100 + "\r")
            self.stream.flush()

    def note(self, text: str) -> None:
        """Print a line above the bar."""
        if self.enabled:
            self.stream.write("\r" + " " * 100 + "\r")
        self.stream.write(text + "\n")
        self.stream.flush()


def add_catalog_option(parser: Any) -> None:
    parser.add_argument("--catalog", metavar="PATH", help="catalog folder (default: from the config, "
                        "else <state dir>/catalog)")


def catalog_path(args: Any, config: Config) -> Path:
    return Path(args.catalog) if getattr(args, "catalog", None) else config.catalog_path


def limits_from(config: Config) -> "Limits":
    from ..audio.decode import Limits

    return Limits(
        max_bytes=int(config.limits.max_file_mb * 1024 * 1024),
        max_seconds=float(config.limits.max_duration_min * 60),
    )


def open_catalog_for_reading(path: Path) -> "Catalog":
    """Open a catalog read-only (LMDB still records readers in lock.mdb)."""
    from ..catalog import Catalog

    return Catalog.open(path, readonly=True)
