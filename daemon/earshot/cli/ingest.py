"""`earshot ingest PATH…`: add music files and folders to the catalog."""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from ..audio.decode import Limits, file_digest, find_audio_files
from ..catalog import Catalog, NewTrack
from ..errors import AudioError, CatalogError, CatalogInUse, CatalogWriteError, UsageError
from ..ingest import prepare_file
from .common import Progress, add_catalog_option, catalog_path, compact_and_say, config_from_args, limits_from


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ingest", help="add music files or folders to the catalog",
        description="Fingerprint audio files (WAV, FLAC, OGG/Vorbis, Opus, MP3, …; folders are "
        "searched recursively) and add them to the catalog. The same audio is never stored twice. "
        "Exit status 0 when every file was added or already present, 1 when some could not be read. "
        "When tracks were added and no other process has the catalog open, the file is then "
        "compacted (LMDB leaves it about 3x larger than its content as it grows).",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    add_catalog_option(p)
    p.add_argument("--rebuild", action="store_true",
                   help="delete the existing catalog first (needed after a fingerprint upgrade)")
    p.add_argument("--no-compact", action="store_true",
                   help="leave the file as the additions left it (see `earshot catalog compact`)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only errors and the summary")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    path = catalog_path(args, config)
    limits = limits_from(config)
    inputs = [Path(p) for p in args.paths]
    missing = [p for p in inputs if not p.exists()]
    for p in missing:
        print(f"earshot: {p}: no such file or folder", file=sys.stderr)
    files = list(find_audio_files([p for p in inputs if p.exists()]))
    if not files:
        if missing:
            return 1
        raise UsageError("no audio files found in " + ", ".join(str(p) for p in inputs))
    if args.rebuild and path.exists():
        if not (path / "data.mdb").exists():
            raise CatalogError(f"{path}: not an earshot catalog, refusing to delete it")
        shutil.rmtree(path)
    report = _Report(quiet=args.quiet, failed=len(missing))
    started = time.monotonic()
    with Catalog.open(path, create=True, map_size=config.catalog.map_size_mb << 20) as catalog:
        progress = Progress(len(files), "ingesting")
        report.progress = progress
        try:
            _ingest_files(catalog, files, limits, report, progress)
        except CatalogWriteError as exc:
            # e.g. the disk is full: every batch before this one is stored, this one is not
            # (its transaction was aborted), and the next would fail too, so stop here
            progress.close()
            left = len(files) - report.added - report.duplicates - (report.failed - len(missing))
            print(f"earshot: {exc}", file=sys.stderr)
            print(f"earshot: stopped: {left} file(s) not ingested; {report.added} added before this; "
                  "make room and run the same command again (what is stored is skipped)", file=sys.stderr)
            return exc.exit_code
        progress.close()
        total = catalog.track_count()
        if report.added and not args.no_compact:
            _compact(catalog)
    elapsed = time.monotonic() - started
    print(
        f"added {report.added} track(s), {report.seconds / 60:.1f} min of audio in {elapsed:.1f} s; "
        f"{report.duplicates} duplicate(s) skipped; {report.failed} failed; "
        f"catalog {path} holds {total} track(s)",
        file=sys.stderr,
    )
    return 1 if report.failed else 0


BATCH_TRACKS = 32
BATCH_SECONDS = 20.0


def _ingest_files(catalog: Catalog, files: list[Path], limits: Limits, report: "_Report",
                  progress: Progress) -> None:
    """Decode and fingerprint each file and store the new ones, a batch per write transaction
    (atomic, and far less page copying in LMDB)."""
    batch: list[tuple[Path, NewTrack]] = []
    last_flush = time.monotonic()
    for f in files:
        try:
            fd = file_digest(f)
            existing = catalog.find_file_digest(fd)
            if existing is not None:
                report.duplicate(f, existing)
            else:
                batch.append((f, prepare_file(f, catalog.params, limits, fd)))
        except AudioError as exc:
            report.failure(exc)
        except OSError as exc:
            report.failure(AudioError(f"{f}: cannot read ({exc.strerror})"))
        progress.step(f.name)
        if batch and (len(batch) >= BATCH_TRACKS or time.monotonic() - last_flush > BATCH_SECONDS):
            _flush(catalog, batch, report)
            last_flush = time.monotonic()
    _flush(catalog, batch, report)


class _Report:
    """Counts and prints what happened to each file."""

    def __init__(self, quiet: bool, failed: int):
        self.quiet = quiet
        self.added = self.duplicates = 0
        self.failed = failed
        self.seconds = 0.0
        self.progress: Progress | None = None

    def _say(self, text: str) -> None:
        if self.progress is not None:
            self.progress.note(text)
        else:
            print(text, file=sys.stderr)

    def failure(self, exc: Exception) -> None:
        self.failed += 1
        self._say(f"earshot: skipped {exc}")

    def duplicate(self, f: Path, track_id: int) -> None:
        self.duplicates += 1
        self._say(f"duplicate: {f} is already track #{track_id}")

    def stored(self, f: Path, item: NewTrack, track_id: int) -> None:
        self.added += 1
        self.seconds += item.duration_s
        if not self.quiet and not (self.progress and self.progress.enabled):
            self._say(f"added #{track_id} {item.title} ({f})")


def _compact(catalog: Catalog) -> None:
    """Rewrite the catalog with full pages after additions, when no other process has it
    open: every write transaction copies the pages it touches and most tracks touch most
    pages, so one added track can double the file (measured: 9.5 MB compacted, 20.8 MB
    after one more track). A smaller file is also less for the daemon's lookups to map.
    Compaction costs a few percent of the ingest (0.6 s after 18.5 s for 2 h of music).
    When it cannot run, the catalog is as good, only larger: say so and carry on."""
    try:
        compact_and_say(catalog)
    except CatalogInUse:
        print(f"earshot: not compacted: {catalog.path} is open in another process (the daemon?); "
              "the new tracks are stored; `earshot catalog compact` with it stopped makes the "
              "file smaller", file=sys.stderr)
    except CatalogError as exc:
        print(f"earshot: {exc}", file=sys.stderr)


def _flush(catalog: Catalog, batch: list[tuple[Path, NewTrack]], report: _Report) -> None:
    if not batch:
        return
    results = catalog.add_tracks([item for _, item in batch])
    for (f, item), (track_id, added) in zip(batch, results):
        if added:
            report.stored(f, item, track_id)
        else:
            report.duplicate(f, track_id)
    batch.clear()
