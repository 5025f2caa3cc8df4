"""What is waiting to be published, shared between the pipeline thread (which adds) and
the MQTT thread (which sends).

- durable events (match, song_report, now_playing): the disk spool, written before
  `add` returns; a memory spool takes them only if the disk refuses a write (a full disk),
  and the events after them until the broker has them all, so that order is kept;
- periodic events (loudness, health): sent only while connected (QoS 0); while the broker
  is away they are not kept (they would be stale), only the latest of each kind is, to
  answer Home Assistant's restart;
- command replies: a short queue, sent while connected.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque

from ..events import EventBase
from .spool import MemorySpool, SpoolError, SpoolLike

log = logging.getLogger("earshot.mqtt")

LIVE_MAX = 256     # periodic events waiting for the MQTT thread (it drains them every 0.1 s)
REPLIES_MAX = 64


class Outbox:
    """Events and replies waiting for the broker."""

    def __init__(self, spool: SpoolLike, fallback: MemorySpool):
        self.spools: tuple[SpoolLike, SpoolLike] = (spool, fallback)
        self._lock = threading.Lock()
        self._live: deque[tuple[str, bytes]] = deque(maxlen=LIVE_MAX)
        self._replies: deque[bytes] = deque(maxlen=REPLIES_MAX)
        self._latest: dict[str, bytes] = {}
        self._now_playing: bytes | None = None
        self._now_playing_at: tuple[int, int] | None = None  # (spool index, seq) while spooled
        self._accept_live = False
        self._last_spool_error = 0.0

    # --- the pipeline side -------------------------------------------------------------

    def add(self, event: EventBase) -> None:
        """Queue an event; a durable one is on disk when this returns."""
        payload = event.to_json().encode()
        kind = event.event  # type: ignore[attr-defined]
        if event.durable:
            where = self._spool(kind, payload)
            if kind == "now_playing":
                with self._lock:
                    self._now_playing, self._now_playing_at = payload, where
            return
        with self._lock:
            self._latest[kind] = payload
            if self._accept_live:
                self._live.append((kind, payload))

    def _spool(self, kind: str, payload: bytes) -> tuple[int, int]:
        # Once events wait in memory, later ones queue behind them there until the broker has
        # them all, even if the disk has room again: the disk spool is sent first, so a later
        # event written there would overtake them (and a stale now_playing be left retained).
        if self.spools[1].depth == 0:
            try:
                return 0, self.spools[0].append(kind, payload)
            except SpoolError as exc:
                now = time.monotonic()
                if now - self._last_spool_error > 60:
                    self._last_spool_error = now
                    log.error("%s; keeping events in memory until it works again (lost if earshot stops)", exc)
        return 1, self.spools[1].append(kind, payload)

    def add_reply(self, payload: bytes) -> None:
        with self._lock:
            self._replies.append(payload)

    # --- the MQTT side -----------------------------------------------------------------

    def set_connected(self, connected: bool) -> None:
        """Periodic events are queued only while connected; stale ones are dropped."""
        with self._lock:
            self._accept_live = connected
            self._live.clear()

    def take_live(self) -> list[tuple[str, bytes]]:
        with self._lock:
            items = list(self._live)
            self._live.clear()
            return items

    def take_replies(self) -> list[bytes]:
        with self._lock:
            items = list(self._replies)
            self._replies.clear()
            return items

    def latest(self, kind: str) -> bytes | None:
        with self._lock:
            return self._latest.get(kind)

    def now_playing_state(self) -> bytes | None:
        """The latest now_playing, unless it is still spooled (then the spool delivers it in
        order, and publishing it now would put it before older changes)."""
        with self._lock:
            if self._now_playing_at is not None:
                index, seq = self._now_playing_at
                if self.spools[index].contains(seq):
                    return None
                self._now_playing_at = None  # dropped from a full spool: publish it directly
            return self._now_playing

    def acknowledged(self, done: list[tuple[int, int]]) -> None:
        """The broker has these (spool index, seq): forget them."""
        for index in (0, 1):
            seqs = [seq for i, seq in done if i == index]
            if seqs:
                self.spools[index].remove(seqs)
        with self._lock:
            if self._now_playing_at in done:
                self._now_playing_at = None

    @property
    def depth(self) -> int:
        return sum(s.depth for s in self.spools)

    @property
    def dropped(self) -> int:
        return sum(s.dropped for s in self.spools)
