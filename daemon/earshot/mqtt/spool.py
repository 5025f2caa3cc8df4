"""The disk spool: events that must reach the broker, kept until it acknowledges them.

A small LMDB environment of its own (`<state_dir>/spool`, separate from the catalog so
either can be copied or replaced alone). Keys are a monotonically increasing sequence
number (8 bytes, big-endian, so LMDB's key order is arrival order); values are
`<kind>\\n<event JSON>`. An event is written (and synced) before `Publisher.publish`
returns, and removed only when the broker has acknowledged it, so a crash or a power cut
after `publish` loses nothing: the next start sends what is left, in order.

Bounded by `spool_max_events`. When full, a new event makes room by dropping the oldest
*superseded* now_playing change (one that a later now_playing change replaces: Home
Assistant's state only needs the latest); when there is none, the oldest event of any kind
is dropped. The newest event is never refused: after a long outage the most recent events
are the ones automations act on. Drops are counted (`health.spool_dropped`) and logged.

`MemorySpool` has the same interface without a disk: the fallback when the disk refuses a
write (full disk), so events still reach a connected broker.
"""
from __future__ import annotations

import logging
import shutil
import struct
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple, Protocol

import lmdb

from ..errors import EarshotError

log = logging.getLogger("earshot.mqtt")

_KEY = struct.Struct(">Q")
NOW_PLAYING = "now_playing"
# room per event in the memory map: events are < 2 KB; LMDB needs pages and free space
_MAP_BYTES_PER_EVENT = 8192
_MIN_MAP_BYTES = 8 << 20


class SpoolError(EarshotError):
    """The spool cannot be opened or written."""


class SpoolEntry(NamedTuple):
    seq: int
    kind: str
    payload: bytes


class SpoolLike(Protocol):
    @property
    def depth(self) -> int: ...
    @property
    def dropped(self) -> int: ...
    def append(self, kind: str, payload: bytes) -> int: ...
    def read_after(self, seq: int, limit: int) -> list[SpoolEntry]: ...
    def contains(self, seq: int) -> bool: ...
    def remove(self, seqs: Iterable[int]) -> None: ...
    def close(self) -> None: ...


class _DropPolicy:
    """Which entry to drop when full; tracks now_playing entries to find superseded ones."""

    def __init__(self) -> None:
        self.now_playing: deque[int] = deque()
        self.dropped = 0
        self._last_warning = 0.0

    def added(self, seq: int, kind: str) -> None:
        if kind == NOW_PLAYING:
            self.now_playing.append(seq)

    def removed(self, seq: int) -> None:
        if self.now_playing and self.now_playing[0] == seq:
            self.now_playing.popleft()
        elif seq in self.now_playing:
            self.now_playing.remove(seq)

    def victim(self, oldest: int) -> int:
        """The entry to drop: the oldest superseded now_playing, else the oldest."""
        return self.now_playing[0] if len(self.now_playing) >= 2 else oldest

    def note_drop(self, kind: str, limit: int) -> None:
        self.dropped += 1
        now = time.monotonic()
        if now - self._last_warning > 60:  # one line a minute while it keeps dropping
            self._last_warning = now
            log.warning("MQTT spool full (%d events): dropped the oldest %s event "
                        "(%d dropped since start)", limit, kind, self.dropped)


def _decode(key: bytes, value: bytes | memoryview) -> SpoolEntry:
    kind, _, payload = bytes(value).partition(b"\n")
    return SpoolEntry(_KEY.unpack(key)[0], kind.decode(), payload)


class Spool:
    """The LMDB spool. Thread-safe: the pipeline appends, the MQTT thread reads and removes."""

    def __init__(self, path: Path, max_events: int):
        self.path = Path(path)
        self.max_events = max_events
        self._lock = threading.Lock()
        self._policy = _DropPolicy()
        self._env = self._open()
        self._depth = 0
        self._next = 1
        self._rescan()

    def _open(self) -> lmdb.Environment:
        map_size = max(_MIN_MAP_BYTES, self.max_events * _MAP_BYTES_PER_EVENT)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpoolError(f"cannot create the MQTT spool folder {self.path}: {exc.strerror}") from None
        try:
            return lmdb.open(str(self.path), map_size=map_size, max_dbs=0, readahead=False,
                             meminit=False, sync=True, metasync=True)
        except (lmdb.CorruptedError, lmdb.InvalidError, lmdb.VersionMismatchError) as exc:
            # a damaged spool must not stop the listener: keep it aside for inspection
            aside = self.path.with_name(f"{self.path.name}.damaged-{int(time.time())}")
            log.error("MQTT spool %s is damaged (%s); moved to %s, starting an empty one",
                      self.path, exc, aside)
            shutil.move(str(self.path), str(aside))
            self.path.mkdir(parents=True)
            return lmdb.open(str(self.path), map_size=map_size, max_dbs=0, readahead=False, meminit=False)
        except lmdb.Error as exc:
            raise SpoolError(f"cannot open the MQTT spool {self.path}: {exc}") from None

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def dropped(self) -> int:
        return self._policy.dropped

    def append(self, kind: str, payload: bytes) -> int:
        """Store an event durably (synced to disk); returns its sequence number."""
        value = kind.encode() + b"\n" + payload
        with self._lock:
            try:
                seq = self._put(value)
            except lmdb.MapFullError:
                # the map filled before the count bound (unusually large events): make room
                self._rescan()
                with self._env.begin(write=True) as txn:
                    for _ in range(max(1, self._depth // 10)):
                        self._drop_one(txn)
                seq = self._put(value)
            except lmdb.Error as exc:
                self._rescan()
                raise SpoolError(f"cannot write to the MQTT spool {self.path}: {exc}") from None
            self._next = seq + 1
            self._depth += 1
            self._policy.added(seq, kind)
            return seq

    def _put(self, value: bytes) -> int:
        with self._env.begin(write=True) as txn:
            while self._depth >= self.max_events:
                self._drop_one(txn)
            seq = self._next
            txn.put(_KEY.pack(seq), value, append=True)
        return seq

    def _rescan(self) -> None:
        """Rebuild the in-memory counters from the disk (after an aborted write)."""
        self._policy.now_playing.clear()
        self._depth = 0
        with self._env.begin() as txn:
            for key, value in txn.cursor():
                entry = _decode(key, value)
                self._policy.added(entry.seq, entry.kind)
                self._depth += 1
                self._next = max(self._next, entry.seq + 1)

    def _drop_one(self, txn: lmdb.Transaction) -> None:
        cursor = txn.cursor()
        if not cursor.first():
            self._depth = 0
            return
        oldest = _KEY.unpack(cursor.key())[0]
        victim = self._policy.victim(oldest)
        key = _KEY.pack(victim)
        value = txn.get(key)
        txn.delete(key)
        self._depth -= 1
        self._policy.removed(victim)
        kind = _decode(key, value).kind if value is not None else "?"
        self._policy.note_drop(kind, self.max_events)

    def read_after(self, seq: int, limit: int) -> list[SpoolEntry]:
        """Up to `limit` entries with a sequence number above `seq`, oldest first."""
        out: list[SpoolEntry] = []
        with self._lock, self._env.begin() as txn:
            cursor = txn.cursor()
            if not cursor.set_range(_KEY.pack(seq + 1)):
                return out
            for key, value in cursor:
                out.append(_decode(key, value))
                if len(out) >= limit:
                    break
        return out

    def contains(self, seq: int) -> bool:
        with self._lock, self._env.begin() as txn:
            return txn.get(_KEY.pack(seq)) is not None

    def remove(self, seqs: Iterable[int]) -> None:
        """Forget acknowledged entries (missing ones, e.g. dropped meanwhile, are ignored)."""
        seqs = list(seqs)
        if not seqs:
            return
        with self._lock:
            try:
                with self._env.begin(write=True) as txn:
                    for seq in seqs:
                        if txn.delete(_KEY.pack(seq)):
                            self._depth -= 1
                            self._policy.removed(seq)
            except lmdb.Error as exc:  # they will be sent again (same ids): duplicates, not losses
                log.error("cannot remove acknowledged events from the MQTT spool: %s", exc)

    def close(self) -> None:
        with self._lock:
            self._env.close()


class MemorySpool:
    """The same interface in memory (same bound and drop policy); lost on exit."""

    def __init__(self, max_events: int):
        self.max_events = max_events
        self._lock = threading.Lock()
        self._entries: OrderedDict[int, SpoolEntry] = OrderedDict()
        self._policy = _DropPolicy()
        self._next = 1

    @property
    def depth(self) -> int:
        return len(self._entries)

    @property
    def dropped(self) -> int:
        return self._policy.dropped

    def append(self, kind: str, payload: bytes) -> int:
        with self._lock:
            while len(self._entries) >= self.max_events:
                victim = self._policy.victim(next(iter(self._entries)))
                self._policy.removed(victim)
                self._policy.note_drop(self._entries.pop(victim).kind, self.max_events)
            seq = self._next
            self._next += 1
            self._entries[seq] = SpoolEntry(seq, kind, payload)
            self._policy.added(seq, kind)
            return seq

    def read_after(self, seq: int, limit: int) -> list[SpoolEntry]:
        with self._lock:
            return [e for s, e in self._entries.items() if s > seq][:limit]

    def contains(self, seq: int) -> bool:
        return seq in self._entries

    def remove(self, seqs: Iterable[int]) -> None:
        with self._lock:
            for seq in seqs:
                if self._entries.pop(seq, None) is not None:
                    self._policy.removed(seq)

    def close(self) -> None:
        pass
