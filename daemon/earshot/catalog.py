"""The song catalog: one LMDB environment with named sub-databases.

- `meta`: schema version and the fingerprint parameters the catalog was built with.
- `tracks`: track id (u32 BE) → JSON metadata.
- `digests`: content digest → track id, so the same audio is never stored twice.
- `postings`: hash (u32 BE) → (track id u24 BE, anchor frame u24 BE), dupsort + dupfixed.
  Six bytes a posting rather than eight: the values are most of the index. 24 bits bound a
  catalog to 16,777,215 track ids and a track to 2^24 frames (74 hours at 16 ms); both
  are refused with a clear message beyond that. Track ids only grow, so a new track's
  postings are appended after every existing duplicate of their hash (MDB_APPENDDUP),
  which fills LMDB's duplicate pages instead of splitting them in halves.
- `track_hashes`: track id → the track's distinct hashes (sorted, delta-coded, zlib), so a
  track's postings can be removed without scanning the whole index.

LMDB gives one writer and many readers: `earshot ingest` can add tracks while the daemon
reads; a reader sees them at its next transaction. Each track is added in one write
transaction, so a crash or power cut never leaves half a track. The map grows when full.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import struct
import time
import zlib
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import lmdb
import numpy as np

from .errors import CatalogError, CatalogInUse, CatalogWriteError
from .fingerprint import DEFAULT_PARAMS, FingerprintParams
from .levels import DEFAULT_LEVELS, LevelCheck, LevelParams
from .levels import check as levels_check
from .levels import unpack as unpack_levels
from .native import ffi, lib
from .postings_reader import LOOKUP_DTYPE, PostingsReader

SCHEMA_VERSION = 2  # 2: six-byte postings (u24 track, u24 frame)
POSTING_BYTES = 6  # es_ev_widen (native/evidence.c) reads the 4 + 6 byte records getmulti gives
MAX_TRACK_ID = (1 << 24) - 1
MAX_FRAME = (1 << 24) - 1
# the band levels a check compares, kept decompressed between checks (reading and
# decompressing a dozen tracks' levels took 4 ms a check; 0.9 MB per hour of audio)
LEVEL_CACHE_BYTES = 24 << 20
_U32 = struct.Struct(">I")


@dataclass(frozen=True)
class Track:
    """A catalog entry."""

    track_id: int
    title: str
    artist: str | None
    album: str | None
    duration_s: float
    source: str
    digest: str
    hashes: int
    added: float
    file_digest: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "track_id": self.track_id, "title": self.title, "artist": self.artist,
            "album": self.album, "duration_s": round(self.duration_s, 3), "source": self.source,
            "digest": self.digest, "file_digest": self.file_digest, "hashes": self.hashes,
            "added": self.added,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Track":
        return cls(
            int(d["track_id"]), d["title"], d.get("artist"), d.get("album"),
            float(d["duration_s"]), d["source"], d["digest"], int(d["hashes"]), float(d["added"]),
            d.get("file_digest"),
        )


@dataclass(frozen=True)
class NewTrack:
    """A fingerprinted track ready to store."""

    title: str
    artist: str | None
    album: str | None
    duration_s: float
    source: str
    digest: str
    file_digest: str | None
    hashes: np.ndarray
    times: np.ndarray
    levels: bytes | None = None   # band levels (levels.pack), to check unsure candidates


def _prepare_postings(it: NewTrack, frame_seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Posting keys (big-endian hashes) and anchor frames, sorted for LMDB."""
    hashes = np.asarray(it.hashes, dtype=np.uint32)
    frames = np.clip(np.rint(np.asarray(it.times, dtype=np.float64)), 0, 2**32 - 1).astype(np.uint32)
    if len(frames) and int(frames.max()) > MAX_FRAME:
        raise CatalogError(
            f"{it.source}: {it.duration_s / 3600:.1f} h is longer than a catalog track can be "
            f"({MAX_FRAME * frame_seconds / 3600:.1f} h); split the file"
        )
    order = np.lexsort((frames, hashes))
    return hashes[order].astype(">u4"), frames[order]


def _posting_values(track_id: int, frames: np.ndarray) -> bytes:
    """The six-byte values (track u24 BE, frame u24 BE) of one track's postings."""
    values = np.empty((len(frames), POSTING_BYTES), np.uint8)
    values[:, :3] = np.frombuffer(track_id.to_bytes(3, "big"), np.uint8)
    values[:, 3:] = frames.astype(">u4").view(np.uint8).reshape(-1, 4)[:, 1:]
    return values.tobytes()


@dataclass(frozen=True)
class CatalogStats:
    tracks: int
    postings: int
    distinct_hashes: int
    hours: float
    file_bytes: int
    path: str
    with_levels: int = 0   # tracks with band levels (to check unsure candidates)


def _pack_hashes(hashes: np.ndarray) -> bytes:
    uniq = np.unique(hashes.astype(np.uint32))
    deltas = np.diff(uniq, prepend=np.uint32(0)).astype("<u4")
    return zlib.compress(deltas.tobytes(), 6)


def _unpack_hashes(blob: bytes) -> np.ndarray:
    deltas = np.frombuffer(zlib.decompress(blob), dtype="<u4")
    return np.cumsum(deltas, dtype=np.uint64).astype(np.uint32)


class Catalog:
    """An open catalog. Use `Catalog.open(...)` as a context manager."""

    def __init__(self, env: lmdb.Environment, path: Path, params: FingerprintParams, readonly: bool):
        self.env, self.path, self.params, self.readonly = env, path, params, readonly
        self._meta = env.open_db(b"meta", create=False) if readonly else env.open_db(b"meta")
        opts: dict[str, Any] = {"create": not readonly}
        self._tracks = env.open_db(b"tracks", **opts)
        self._digests = env.open_db(b"digests", **opts)
        self._postings = env.open_db(b"postings", dupsort=True, dupfixed=True, **opts)
        self._track_hashes = env.open_db(b"track_hashes", **opts)
        # band levels (levels.py): a catalog built before them has none until tracks are added
        try:
            self._levels: Any = env.open_db(b"levels", **opts)
        except lmdb.NotFoundError:
            self._levels = None
        with env.begin(db=self._meta) as txn:
            stored = txn.get(b"levels")
        #: the levels' parameters when the stored levels are usable by this code, else None
        self.level_params: LevelParams | None = (
            DEFAULT_LEVELS if self._levels is not None
            and (stored is None or json.loads(stored) == DEFAULT_LEVELS.signature()) else None)
        self._level_ids: tuple[int, list[int]] | None = None
        self._level_cache: OrderedDict[int, np.ndarray] = OrderedDict()   # _cached_levels
        self._in_use: int | None = None     # set by `open`: the shared hold on the in-use file
        self.postings_reader = PostingsReader(path)   # lookups in C, inside py-lmdb's snapshots

    # -- opening -------------------------------------------------------------------------
    @classmethod
    def open(
        cls, path: Path | str, *, create: bool = False, readonly: bool = False,
        params: FingerprintParams = DEFAULT_PARAMS, map_size: int = 64 << 20,
    ) -> "Catalog":
        """Open (or with create=True, create) the catalog at `path` (a folder)."""
        path = Path(path)
        data_file = path / "data.mdb"
        if not data_file.exists():
            if path.exists() and not path.is_dir():
                raise CatalogError(f"{path}: is a file, not a catalog folder")
            if path.is_dir() and any(f.name not in _LEFT_BY_A_START for f in path.iterdir()) and not create:
                raise CatalogError(f"{path}: is not an earshot catalog (no data.mdb)")
            if not create:
                raise CatalogError(
                    f"{path}: no catalog here; build one with `earshot ingest --catalog {path} MUSIC_FOLDER`"
                )
            if path.is_dir() and any(f.name not in _LEFT_BY_A_START for f in path.iterdir()):
                raise CatalogError(f"{path}: folder is not empty and is not an earshot catalog")
            path.mkdir(parents=True, exist_ok=True)
        if readonly and not os.access(data_file, os.R_OK):
            raise CatalogError(f"{path}: catalog is not readable (permissions)")
        # held before the environment opens: a compaction in progress finishes first
        in_use = _hold_in_use(path)
        try:
            size = max(map_size, data_file.stat().st_size if data_file.exists() else 0)
            env = _open_env(path, size, readonly)
        except lmdb.Error as exc:
            if in_use is not None:
                os.close(in_use)
            raise CatalogError(f"{path}: cannot open catalog ({exc})") from None
        try:
            catalog = cls._attach(env, path, params, readonly)
        except BaseException:
            env.close()
            if in_use is not None:
                os.close(in_use)
            raise
        catalog._in_use = in_use
        return catalog

    @classmethod
    def _attach(cls, env: lmdb.Environment, path: Path, params: FingerprintParams, readonly: bool) -> "Catalog":
        try:
            meta_db = env.open_db(b"meta", create=not readonly)
        except lmdb.Error:
            raise CatalogError(f"{path}: is not an earshot catalog (no meta record)") from None
        with env.begin(db=meta_db) as txn:
            raw = txn.get(b"meta")
        expected = {"schema": SCHEMA_VERSION, "fingerprint": params.index_signature()}
        if raw is None:
            if readonly:
                raise CatalogError(f"{path}: is not an earshot catalog (no meta record)")
            with env.begin(write=True, db=meta_db) as txn:
                txn.put(b"meta", json.dumps(expected, sort_keys=True).encode())
                txn.put(b"next_track_id", _U32.pack(1))
        else:
            try:
                meta = json.loads(raw)
            except ValueError:
                raise CatalogError(f"{path}: catalog meta record is corrupt") from None
            if meta.get("schema") != SCHEMA_VERSION:
                raise CatalogError(
                    f"{path}: catalog schema {meta.get('schema')} is not the supported "
                    f"{SCHEMA_VERSION}: rebuild it with `earshot ingest --rebuild --catalog {path} MUSIC`"
                )
            if meta.get("fingerprint") != expected["fingerprint"]:
                diff = _describe_difference(meta.get("fingerprint", {}), expected["fingerprint"])
                raise CatalogError(
                    f"{path}: catalog was built with other fingerprint parameters ({diff}): "
                    f"rebuild it with `earshot ingest --rebuild --catalog {path} MUSIC`"
                )
        return cls(env, path, params, readonly)

    def close(self) -> None:
        self.postings_reader.close()
        self.env.close()
        if self._in_use is not None:
            os.close(self._in_use)      # releases the hold
            self._in_use = None

    def __enter__(self) -> "Catalog":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- transactions --------------------------------------------------------------------
    @contextmanager
    def reader(self) -> Iterator[lmdb.Transaction]:
        """A read transaction; follows the map when another process grew it."""
        try:
            txn = self.env.begin()
        except lmdb.MapResizedError:
            self.env.set_mapsize(0)
            txn = self.env.begin()
        try:
            yield txn
        finally:
            txn.abort()

    def _write(self, fn: Any) -> Any:
        """Run fn(txn) in a write transaction, growing the map and retrying when full. A write
        LMDB cannot complete (a full disk: its short write comes back as EIO) is a
        CatalogWriteError: the transaction is aborted, so the catalog is as it was before."""
        while True:
            try:
                with self.env.begin(write=True) as txn:
                    return fn(txn)
            except lmdb.MapFullError:
                self.env.set_mapsize(self.env.info()["map_size"] * 2)
            except lmdb.MapResizedError:
                self.env.set_mapsize(0)
            except lmdb.Error as exc:
                raise CatalogWriteError(_write_failure(self.path, exc)) from None

    # -- tracks --------------------------------------------------------------------------
    def find_digest(self, digest: str) -> int | None:
        """The track with this decoded-audio digest, if any."""
        with self.reader() as txn:
            raw = txn.get(digest.encode(), db=self._digests)
        return None if raw is None else _U32.unpack(raw)[0]

    def find_file_digest(self, file_digest: str) -> int | None:
        """The track ingested from a file with exactly these bytes, if any."""
        return self.find_digest("file:" + file_digest)

    def add_track(
        self, *, title: str, artist: str | None, album: str | None, duration_s: float,
        source: str, digest: str, hashes: np.ndarray, times: np.ndarray, file_digest: str | None = None,
    ) -> tuple[int, bool]:
        """Store a track and its postings atomically. Returns (track id, added); when the
        digest is already stored, nothing is written and added is False."""
        item = NewTrack(title, artist, album, duration_s, source, digest, file_digest, hashes, times)
        return self.add_tracks([item])[0]

    def add_tracks(self, items: list["NewTrack"]) -> list[tuple[int, bool]]:
        """Store several tracks in one write transaction (all or none): far less copying in
        LMDB than one transaction per track, so the file stays compact."""
        prepared = [_prepare_postings(it, self.params.frame_seconds) for it in items]

        def write(txn: lmdb.Transaction) -> list[tuple[int, bool]]:
            return [self._write_track(txn, it, keys, vals) for it, (keys, vals) in zip(items, prepared)]

        return self._write(write)

    def _write_track(self, txn: lmdb.Transaction, it: "NewTrack", keys: np.ndarray, frames: np.ndarray) -> tuple[int, bool]:
        existing = txn.get(it.digest.encode(), db=self._digests)
        if existing is not None:
            return _U32.unpack(existing)[0], False
        track_id = _U32.unpack(txn.get(b"next_track_id", db=self._meta))[0]
        if track_id > MAX_TRACK_ID:
            raise CatalogError(
                f"{self.path}: the catalog is full ({MAX_TRACK_ID} track ids used); "
                f"rebuild it with `earshot ingest --rebuild --catalog {self.path} MUSIC`"
            )
        txn.put(b"next_track_id", _U32.pack(track_id + 1), db=self._meta)
        kb, vb = keys.tobytes(), _posting_values(track_id, frames)
        w = POSTING_BYTES
        items = ((kb[4 * i:4 * i + 4], vb[w * i:w * i + w]) for i in range(len(keys)))
        # ids only grow, so each value sorts after its hash's stored ones: append
        txn.cursor(db=self._postings).putmulti(items, dupdata=True, overwrite=True, append=True)
        tid = _U32.pack(track_id)
        track = Track(track_id, it.title, it.artist, it.album, float(it.duration_s), it.source,
                      it.digest, int(len(keys)), time.time(), it.file_digest)
        txn.put(tid, json.dumps(track.to_json(), ensure_ascii=False).encode(), db=self._tracks)
        txn.put(it.digest.encode(), tid, db=self._digests)
        if it.file_digest:
            txn.put(b"file:" + it.file_digest.encode(), tid, db=self._digests)
        txn.put(tid, _pack_hashes(it.hashes), db=self._track_hashes)
        if it.levels is not None and self.level_params is not None:
            if txn.get(b"levels", db=self._meta) is None:
                txn.put(b"levels", json.dumps(self.level_params.signature(), sort_keys=True).encode(),
                        db=self._meta)
            txn.put(tid, it.levels, db=self._levels)
        return track_id, True

    def remove_track(self, track_id: int) -> Track:
        """Remove a track, its digest and every posting of it."""

        def write(txn: lmdb.Transaction) -> Track:
            tid = _U32.pack(track_id)
            raw = txn.get(tid, db=self._tracks)
            if raw is None:
                raise CatalogError(f"no track {track_id} in the catalog")
            track = Track.from_json(json.loads(raw))
            blob = txn.get(tid, db=self._track_hashes)
            cur = txn.cursor(db=self._postings)
            tid3 = track_id.to_bytes(3, "big")
            for h in _unpack_hashes(blob) if blob else np.empty(0, np.uint32):
                key = _U32.pack(int(h))
                if not cur.set_range_dup(key, tid3 + b"\x00\x00\x00"):
                    continue
                while cur.key() == key and cur.value()[:3] == tid3:
                    if not cur.delete():
                        break
                    if cur.key() != key:
                        break
            txn.delete(tid, db=self._tracks)
            txn.delete(tid, db=self._track_hashes)
            if self._levels is not None:
                txn.delete(tid, db=self._levels)
            txn.delete(track.digest.encode(), db=self._digests)
            if track.file_digest:
                txn.delete(b"file:" + track.file_digest.encode(), db=self._digests)
            return track

        return self._write(write)

    def get_track(self, track_id: int, txn: lmdb.Transaction | None = None) -> Track | None:
        if txn is None:
            with self.reader() as t:
                return self.get_track(track_id, t)
        raw = txn.get(_U32.pack(track_id), db=self._tracks)
        return None if raw is None else Track.from_json(json.loads(raw))

    def tracks(self) -> list[Track]:
        with self.reader() as txn:
            return [Track.from_json(json.loads(v)) for _, v in txn.cursor(db=self._tracks)]

    def track_count(self) -> int:
        with self.reader() as txn:
            return int(txn.stat(self._tracks)["entries"])

    def stats(self) -> CatalogStats:
        with self.reader() as txn:
            postings = txn.stat(self._postings)
            tracks = [json.loads(v) for _, v in txn.cursor(db=self._tracks)]
        data_file = self.path / "data.mdb"
        return CatalogStats(
            tracks=len(tracks),
            postings=int(postings["entries"]),
            distinct_hashes=self._distinct_hashes(),
            hours=sum(t["duration_s"] for t in tracks) / 3600.0,
            file_bytes=data_file.stat().st_size if data_file.exists() else 0,
            path=str(self.path),
            with_levels=len(self.level_track_ids()),
        )

    def _distinct_hashes(self) -> int:
        with self.reader() as txn:
            cur = txn.cursor(db=self._postings)
            n = 0
            if cur.first():
                n = 1
                while cur.next_nodup():
                    n += 1
            return n

    def compact(self) -> tuple[int, int]:
        """Rewrite the data file without its free pages and with full pages; returns
        (bytes before, after).

        Every record is written afresh in key order into a new file, so pages come out full:
        a catalog grown track by track has its pages about two-thirds full (LMDB splits them
        in halves as hashes gain postings) and, since every track touches most pages, about
        as many free pages as used ones (copy-on-write). Measured on 6 h of music: 9.6 MB/h
        as ingested, 4.1 MB/h after LMDB's compacting copy, 3.0 MB/h rebuilt.

        Only while no other process has the catalog open (stop the daemon first): a reader
        would stay on the old file and never see another track; refused otherwise."""
        if self._in_use is None:
            raise CatalogError(f"{self.path}: cannot tell whether another process has the catalog open "
                               f"(no {IN_USE_FILE} file); compact as the catalog's owner")
        try:   # our shared hold becomes exclusive only when no other process holds one
            fcntl.flock(self._in_use, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CatalogInUse(f"{self.path}: open in another process (the earshot daemon?); stop it "
                               "(e.g. `systemctl stop earshot`) and compact again") from None
        data_file = self.path / "data.mdb"
        before = data_file.stat().st_size
        tmp = self.path / "compact.tmp"
        try:
            _empty_folder(tmp)
            fresh = lmdb.open(str(tmp), max_dbs=8, map_size=max(before, 1 << 20) + (16 << 20), subdir=True,
                              readahead=False, meminit=False, sync=True)
            try:
                with self.env.begin() as src, fresh.begin(write=True) as dst:
                    for name, db, dup in ((b"meta", self._meta, False), (b"tracks", self._tracks, False),
                                          (b"digests", self._digests, False), (b"postings", self._postings, True),
                                          (b"track_hashes", self._track_hashes, False),
                                          *(((b"levels", self._levels, False),) if self._levels is not None else ())):
                        out = fresh.open_db(name, txn=dst, dupsort=dup, dupfixed=dup)
                        # records in key order, each after the last: pages fill instead of splitting
                        dst.cursor(db=out).putmulti(iter(src.cursor(db=db)), append=True)
            finally:
                fresh.close()
            os.replace(tmp / "data.mdb", data_file)
        except (OSError, lmdb.Error) as exc:
            # e.g. the disk filled up: the old file was never touched
            raise CatalogError(f"{self.path}: could not compact ({exc}); the catalog is unchanged") from None
        finally:
            if tmp.is_dir():
                _empty_folder(tmp)
                tmp.rmdir()
            fcntl.flock(self._in_use, fcntl.LOCK_SH)   # back to a reader's hold until closed
        # reopen on the new file
        self.close()
        reopened = Catalog.open(self.path, params=self.params)
        self.__dict__.update(reopened.__dict__)
        return before, data_file.stat().st_size

    # -- band levels ---------------------------------------------------------------------
    def track_levels(self, track_id: int, txn: lmdb.Transaction | None = None) -> np.ndarray | None:
        """A track's band levels (frames x bands, uint8), None when it has none usable."""
        if self._levels is None or self.level_params is None:
            return None
        if txn is None:
            with self.reader() as t:
                blob = t.get(_U32.pack(track_id), db=self._levels)
        else:
            blob = txn.get(_U32.pack(track_id), db=self._levels)
        return None if blob is None else unpack_levels(blob)

    def level_track_ids(self) -> list[int]:
        """The tracks that have band levels (read again, and the levels kept for checks
        forgotten, whenever the catalog has been written since)."""
        if self._levels is None or self.level_params is None:
            return []
        with self.reader() as txn:
            written = txn.id()
            if self._level_ids is None or self._level_ids[0] != written:
                ids = [_U32.unpack(k)[0] for k in txn.cursor(db=self._levels).iternext(values=False)]
                self._level_ids = (written, ids)
                self._level_cache.clear()
        return self._level_ids[1]

    def _cached_levels(self, track_id: int, txn: lmdb.Transaction) -> np.ndarray | None:
        """`track_levels` for a check (the candidate's and its null's), kept (up to
        LEVEL_CACHE_BYTES, the least recently used dropped first) until the catalog is next
        written (`level_track_ids` clears them)."""
        lv = self._level_cache.get(track_id)
        if lv is not None:
            self._level_cache.move_to_end(track_id)
            return lv
        lv = self.track_levels(track_id, txn)
        if lv is not None:
            self._level_cache[track_id] = lv
            held = sum(v.nbytes for v in self._level_cache.values())
            while held > LEVEL_CACHE_BYTES and len(self._level_cache) > 1:
                held -= self._level_cache.popitem(last=False)[1].nbytes
        return lv

    def check_levels(self, query: np.ndarray, track_id: int, first: int, randoms: int = 96
                     ) -> LevelCheck | None:
        """Query levels (levels.py) against the track's from frame `first` and against
        `randoms` random places of a dozen random tracks (the null), drawn from a generator
        seeded by the query, so the same query always gets the same answer. None when the
        track has no levels or the query is too short or silent to say."""
        ids = self.level_track_ids()
        if not ids:
            return None
        rng = np.random.default_rng(int.from_bytes(hashlib.sha256(query.tobytes()).digest()[:8], "little"))
        picks = rng.choice(ids, size=min(len(ids), 12), replace=False)
        with self.reader() as txn:
            track = self._cached_levels(track_id, txn)
            pool = [lv for lv in (self._cached_levels(int(t), txn) for t in picks)
                    if lv is not None and len(lv) > len(query) + 8]
        if track is None or not pool:
            return None
        places = []
        for i in range(randoms):
            lv = pool[i % len(pool)]
            places.append((lv, int(rng.integers(2, len(lv) - len(query) - 2))))
        return levels_check(query, track, first, places)

    # -- lookups -------------------------------------------------------------------------
    def lookup(self, hashes: np.ndarray, txn: lmdb.Transaction | None = None) -> np.ndarray:
        """Every posting of the given (distinct, sorted) hashes: a LOOKUP_DTYPE array."""
        return self.lookup_grouped(hashes, txn)[0]

    def lookup_grouped(self, hashes: np.ndarray, txn: lmdb.Transaction | None = None
                       ) -> tuple[np.ndarray, np.ndarray | None]:
        """`lookup`, with where each hash's postings begin (int64, one more than the hashes)
        when the reader in C answered (it knows as it writes them), else None."""
        if txn is None:
            with self.reader() as t:
                return self.lookup_grouped(hashes, t)
        if len(hashes) == 0:
            return np.empty(0, LOOKUP_DTYPE), np.zeros(1, np.int64)
        direct = self.postings_reader.lookup(hashes, txn.id())
        if direct is not None:
            return direct
        # a writer committed since this snapshot began (or liblmdb cannot open the catalog):
        # the keys as 4-byte big-endian bytes objects: numpy's void view makes them in C
        # (a Python slice per key cost ~0.09 us each, 0.9 ms for a 10 s query's 10 k keys)
        keys = np.asarray(hashes, dtype=">u4").view("V4").tolist()
        cur = txn.cursor(db=self._postings)
        raw = cur.getmulti(keys, dupdata=True, dupfixed_bytes=POSTING_BYTES, keyfixed=True)
        # (hash u32, track u24, frame u24) records widened to LOOKUP_DTYPE's three u32 in C
        # (one pass; the numpy way took four and as many temporaries)
        n = len(raw) // (4 + POSTING_BYTES)
        out = np.empty(n, LOOKUP_DTYPE)
        if n:
            lib.es_ev_widen(ffi.from_buffer(raw), n, ffi.from_buffer(out))
        return out, None


IN_USE_FILE = "in-use"
# what starting a catalog leaves before data.mdb exists (the hold, and LMDB's lock file, which
# it creates first): a folder holding only these is an empty one, e.g. after a power cut
_LEFT_BY_A_START = (IN_USE_FILE, "lock.mdb")


# below this much free space a failed write is put down to a full disk: one write transaction
# of a batch of tracks takes tens of MB before the catalog is compacted
FULL_DISK_MB = 64.0


def _write_failure(path: Path, exc: Exception) -> str:
    """What to tell a user whose write to the catalog at `path` failed with exc."""
    try:
        st = os.statvfs(path)
        free_mb = st.f_bavail * st.f_frsize / 1e6
    except OSError:
        free_mb = None
    if free_mb is None:
        why = str(exc)
    elif free_mb < FULL_DISK_MB:
        why = f"its disk is full ({free_mb:.1f} MB free; {exc})"
    else:
        why = f"{exc}; its disk has {free_mb:.0f} MB free, so the disk or card may be failing"
    return f"{path}: could not write to the catalog: {why}. This change was not made; the catalog is as it was before"


def _empty_folder(folder: Path) -> None:
    """`folder` exists and holds nothing (compaction's scratch space)."""
    folder.mkdir(exist_ok=True)
    for f in folder.iterdir():
        f.unlink()


def _hold_in_use(path: Path) -> int | None:
    """A shared flock on the catalog's `in-use` file, held while the catalog is open, so that
    `compact` (which replaces the data file) can tell that another process reads it. Best
    effort: a reader that may not create the file (another user's catalog) holds nothing."""
    f = path / IN_USE_FILE
    try:
        fd = os.open(f, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        try:
            fd = os.open(f, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def _open_env(path: Path, size: int, readonly: bool) -> lmdb.Environment:
    kw: dict[str, Any] = dict(max_dbs=8, map_size=size, readonly=readonly, subdir=True,
                              readahead=False, meminit=False)
    try:
        return lmdb.open(str(path), lock=True, **kw)
    except lmdb.Error as exc:
        # a reader without write access to the lock file (e.g. a user reading the
        # service's catalog) can still read, without LMDB's reader table
        if readonly and ("Permission denied" in str(exc) or "Read-only" in str(exc)):
            return lmdb.open(str(path), lock=False, **kw)
        raise


def _describe_difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    diffs = []
    for section in sorted(set(old) | set(new)):
        a, b = old.get(section, {}), new.get(section, {})
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                diffs.append(f"{section}.{key}: catalog {a.get(key)!r}, now {b.get(key)!r}")
    return "; ".join(diffs[:3]) or "unknown difference"
