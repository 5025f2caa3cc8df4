"""The capture ring: one writer (the audio callback), one reader (the pipeline thread).

The storage is allocated once. The writer copies a block in and then publishes it by
advancing `_written`; the reader copies out up to the published count and then releases
the space by advancing `_read`. Each counter is written by one side only and only ever
grows (Python ints: no wrap-around), so neither side takes a lock and the reader can never
see a half-written block. When the reader falls behind and a block does not fit, the writer
drops that whole block and counts it as an overrun: the callback never blocks, never
overwrites data the reader has not taken, and never raises.
"""
from __future__ import annotations

import numpy as np


class Ring:
    """A single-producer single-consumer ring of float32 frames shaped (capacity, channels)."""

    def __init__(self, capacity_frames: int, channels: int):
        if capacity_frames <= 0 or channels <= 0:
            raise ValueError("a ring needs a positive capacity and channel count")
        self.capacity = int(capacity_frames)
        self.channels = int(channels)
        self._buf = np.zeros((self.capacity, self.channels), dtype=np.float32)
        self._written = 0      # frames published by the writer (writer-owned)
        self._read = 0         # frames released by the reader (reader-owned)
        self.overruns = 0      # blocks dropped because the reader was behind (writer-owned)
        self.dropped_frames = 0

    # -- writer side (the audio callback: no allocation of storage, no locks, no logging)
    def write(self, block: np.ndarray) -> bool:
        """Append a (frames, channels) block; False (and counted) if it does not fit."""
        n = block.shape[0]
        w = self._written
        if n > self.capacity - (w - self._read):
            self.overruns += 1
            self.dropped_frames += n
            return False
        start = w % self.capacity
        first = min(n, self.capacity - start)
        self._buf[start:start + first] = block[:first]
        if first < n:
            self._buf[:n - first] = block[first:]
        self._written = w + n   # publish only after the copy
        return True

    # -- reader side ---------------------------------------------------------------------
    @property
    def available(self) -> int:
        return self._written - self._read

    def read(self, max_frames: int, out: np.ndarray | None = None) -> np.ndarray:
        """Take up to `max_frames` published frames (a copy, oldest first)."""
        r = self._read
        n = min(max_frames, self._written - r)
        if out is None or out.shape[0] < n:
            out = np.empty((n, self.channels), dtype=np.float32)
        start = r % self.capacity
        first = min(n, self.capacity - start)
        out[:first] = self._buf[start:start + first]
        if first < n:
            out[first:n] = self._buf[:n - first]
        self._read = r + n      # release only after the copy
        return out[:n]

    @property
    def total_written(self) -> int:
        return self._written
