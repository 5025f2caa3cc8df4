"""The catalog's postings read in C straight from LMDB (native/postings.c), beside py-lmdb.

`Catalog.lookup` is the matcher's hottest I/O: the live listener looks up a few hundred
hashes four times a second, each meeting ~40 postings, and `identify` ten thousand at once.
py-lmdb's `getmulti` spends most of that time around LMDB rather than in it (a memcpy of the
key beside every posting, the GIL released and taken around three cursor calls per key);
this reader walks the same cursor in C and writes each posting once, already widened.

It opens the catalog's environment a second time, read-only and without LMDB's lock file,
and reads only in the snapshot of a py-lmdb read transaction the caller holds (registered
with writers, so none of its pages is reused while it is open): when a writer has committed
since that transaction began, the C side sees another transaction id and declines, and the
caller reads through py-lmdb as before. So do callers whose handle cannot be opened.
"""
from __future__ import annotations

import logging
import os
import threading

import numpy as np

from .native import ffi, lib

# a looked-up posting: its hash, track and frame (what native/postings.c writes)
LOOKUP_DTYPE = np.dtype([("hash", ">u4"), ("track", ">u4"), ("time", ">u4")])
assert LOOKUP_DTYPE.itemsize == lib.ES_PL_RECORD
_ROOM_PER_KEY = 96   # postings reserved per key before the first try (~40 on average)

log = logging.getLogger(__name__)


class PostingsReader:
    """Lookups of one catalog's postings in C; None from `lookup` means "use py-lmdb"."""

    def __init__(self, folder: os.PathLike[str] | str):
        self._folder = os.fsencode(os.fspath(folder))
        self._handle = ffi.NULL
        self._unavailable: str | None = None   # why it could not be opened (then never retried)
        self._lock = threading.Lock()          # one lookup at a time: a remap needs no reader
        self.direct = 0      # lookups answered here
        self.declined = 0    # lookups left to py-lmdb (a writer committed since the caller's snapshot)

    @property
    def unavailable(self) -> str | None:
        return self._unavailable

    def _open(self) -> bool:
        if self._handle != ffi.NULL:
            return True
        if self._unavailable is not None:
            return False
        err = ffi.new("int *")
        handle = lib.es_pl_open(self._folder, err)
        if handle == ffi.NULL:
            self._unavailable = f"liblmdb could not open the catalog (code {err[0]})"
            log.info("%s: %s; its lookups go through py-lmdb (slower, the same results)",
                     os.fsdecode(self._folder), self._unavailable)
            return False
        self._handle = handle
        return True

    def lookup(self, keys: np.ndarray, txn_id: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Every posting of `keys` (uint32 hashes) in the snapshot of read transaction
        `txn_id`, grouped by key in the keys' order (LOOKUP_DTYPE records), with where each
        key's postings begin (int64, one more than the keys: the total last); or None when
        this snapshot cannot be read here."""
        keys = np.ascontiguousarray(keys, np.uint32)
        starts = np.empty(len(keys) + 1, np.int64)
        with self._lock:
            if not self._open():
                return None
            cap = len(keys) * _ROOM_PER_KEY + 1024
            while True:
                out = np.empty(cap, LOOKUP_DTYPE)
                got = int(lib.es_pl_lookup(self._handle, txn_id, ffi.cast("unsigned int *", ffi.from_buffer(keys)),
                                           len(keys), ffi.cast("unsigned char *", ffi.from_buffer(out)), cap,
                                           ffi.cast("long long *", ffi.from_buffer(starts))))
                if got == lib.ES_PL_STALE:
                    self.declined += 1
                    return None
                if got < 0:    # LMDB failed: open afresh next time
                    self._close()
                    self.declined += 1
                    return None
                if got <= cap:
                    self.direct += 1
                    return out[:got], starts
                cap = got      # a key with many postings: once more with room for all

    def _close(self) -> None:
        if self._handle != ffi.NULL:
            lib.es_pl_close(self._handle)
            self._handle = ffi.NULL

    def close(self) -> None:
        with self._lock:
            self._close()
