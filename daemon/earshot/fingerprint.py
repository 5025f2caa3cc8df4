"""Fingerprints: spectral peaks of mono audio (streaming, in C) and hashes of peak pairs.

`PeakStream` wraps the C extractor: feed blocks of any size, get exactly the peaks of one
call on the whole signal. `HashStream` turns peaks into hashes as soon as each anchor's
target zone is complete, so the daemon can hash hop by hop. The catalog side and the query
side use the same kernel with different densities: a query keeps more peaks and pairs, so
the catalog's sparser hashes are (almost always) among the query's.
"""
from __future__ import annotations

import functools

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from .errors import EarshotError
from .native import ffi, float_ptr, lib, uint_ptr

PEAK_DTYPE = np.dtype([("time", "<f4"), ("freq", "<f4"), ("salience", "<f4")], align=False)


@dataclass(frozen=True)
class PeakParams:
    """Peak extraction (see native/fingerprint.h for each field)."""

    sample_rate: int = 8000
    n_fft: int = 1024
    hop: int = 128
    fmin_hz: float = 100.0
    fmax_hz: float = 3600.0
    freq_radius: int = 8
    time_radius: int = 10
    salience_radius: int = 24
    min_salience_db: float = 6.0
    floor_db: float = -90.0
    max_peaks_per_frame: int = 1


@dataclass(frozen=True)
class HashParams:
    """Pair hashing (see native/fingerprint.h for each field)."""

    fmin_hz: float = 100.0
    f1_per_octave: int = 12
    df_per_octave: int = 24
    max_doct: float = 1.5
    dt_min: int = 2
    dt_max: int = 48
    fanout: int = 3
    dt_step: float = 1.0
    dt_tolerance: float = 0.0


@dataclass(frozen=True)
class FingerprintParams:
    """Everything that decides a catalog's hashes: stored in the catalog, checked on open.

    `catalog_*` build the index; `query_*` are denser supersets used for lookups.
    """

    catalog_peaks: PeakParams = field(default_factory=PeakParams)
    catalog_hash: HashParams = field(default_factory=HashParams)
    query_peaks: PeakParams = field(
        default_factory=lambda: PeakParams(time_radius=6, min_salience_db=4.0, max_peaks_per_frame=4)
    )
    # A query's peaks sit a frame or two off the catalog's when a room or noise has moved a
    # smooth maximum: hashing every gap within +-1 frame doubles the catalog hashes a
    # reverberant query meets (measured: room 10 s 65 -> 77 %, reverb 1.0 s 5 s 50 -> 80 %).
    query_hash: HashParams = field(default_factory=lambda: HashParams(fanout=6, dt_tolerance=1.0))

    @property
    def sample_rate(self) -> int:
        return self.catalog_peaks.sample_rate

    @property
    def frame_seconds(self) -> float:
        return self.catalog_peaks.hop / self.catalog_peaks.sample_rate

    def index_signature(self) -> dict[str, Any]:
        """The parameters that must match between a catalog and its queries.

        `dt_tolerance` only widens a query's lookups, so it is no property of the index;
        `dt_step` is named only when it is not the one-frame unit catalogs had before it
        existed, so those catalogs stay valid."""
        hashing = asdict(self.catalog_hash)
        del hashing["dt_tolerance"]
        if hashing["dt_step"] == 1.0:
            del hashing["dt_step"]
        return {"peaks": asdict(self.catalog_peaks), "hash": hashing}

    def check_compatible(self) -> None:
        """The query side must share the catalog side's analysis grid and hash layout."""
        cp, qp = self.catalog_peaks, self.query_peaks
        ch, qh = self.catalog_hash, self.query_hash
        if (cp.sample_rate, cp.n_fft, cp.hop) != (qp.sample_rate, qp.n_fft, qp.hop) or replace(
            ch, fanout=0, dt_tolerance=0.0
        ) != replace(qh, fanout=0, dt_tolerance=0.0):
            raise EarshotError("query and catalog fingerprint parameters are incompatible")
        if ch.dt_tolerance:
            raise EarshotError("the catalog's hashes take no time tolerance (a query's do)")


DEFAULT_PARAMS = FingerprintParams()


def _c_peak_params(p: PeakParams) -> Any:
    c = ffi.new("es_fp_params *")
    for name, value in asdict(p).items():
        setattr(c, name, value)
    return c


@functools.lru_cache(maxsize=16)
def _c_hash_params(p: HashParams) -> Any:
    """The C struct for these (frozen, hashable) parameters, built once: hashing runs per hop."""
    c = ffi.new("es_hash_params *")
    for name, value in asdict(p).items():
        setattr(c, name, value)
    return c


class PeakStream:
    """Streaming peak extraction at `params.sample_rate` (mono float32 blocks)."""

    def __init__(self, params: PeakParams):
        self.params = params
        holder = ffi.new("es_fp **")
        rc = lib.es_fp_new(_c_peak_params(params), holder)
        if rc != lib.ES_FP_OK:
            raise EarshotError(f"invalid fingerprint parameters ({params})")
        self._fp = ffi.gc(holder[0], lib.es_fp_free)
        self._per_frame = lib.es_fp_peaks_per_frame_max(self._fp)
        self._n_out = ffi.new("int *")

    def process(self, block: np.ndarray) -> np.ndarray:
        """Feed a block; returns the peaks that became final (a PEAK_DTYPE array)."""
        block = np.ascontiguousarray(block, dtype=np.float32)
        frames = len(block) // self.params.hop + 2
        out = np.empty(frames * self._per_frame + self._per_frame, dtype=PEAK_DTYPE)
        ptr = ffi.cast("es_fp_peak *", ffi.from_buffer(out))
        src = float_ptr(block)
        done = written = 0
        while done < len(block):
            if len(out) - written < self._per_frame:
                out = np.concatenate([out, np.empty(len(out), dtype=PEAK_DTYPE)])
                ptr = ffi.cast("es_fp_peak *", ffi.from_buffer(out))
            done += lib.es_fp_process(
                self._fp, src + done, len(block) - done, ptr + written, len(out) - written, self._n_out
            )
            written += self._n_out[0]
        return out[:written]

    def flush(self) -> np.ndarray:
        """End of stream: the peaks of the last frames."""
        out = np.empty((self.params.time_radius + 2) * self._per_frame, dtype=PEAK_DTYPE)
        n = lib.es_fp_flush(self._fp, ffi.cast("es_fp_peak *", ffi.from_buffer(out)), len(out))
        return out[:n]

    @property
    def frames_final(self) -> int:
        """Frames whose peaks are final (later peaks have time > this - 1)."""
        return int(lib.es_fp_frames_final(self._fp))

    def reset(self) -> None:
        lib.es_fp_reset(self._fp)


def _hashes_per_anchor(params: HashParams) -> int:
    """The most hashes one anchor can give (the output room es_fp_hash needs per anchor)."""
    per_pair = lib.es_fp_hashes_per_pair_max(_c_hash_params(params))
    if per_pair < 0:
        raise EarshotError("invalid hashing parameters")
    return params.fanout * per_pair


def _hashes_into(cap: int, fill: Any, refused: str) -> tuple[np.ndarray, np.ndarray]:
    """Room for `cap` hashes and anchor times, filled by `fill(hashes_ptr, times_ptr)` (a
    hashing kernel's call, which returns how many it wrote or ES_FP_EINVAL, then `refused`
    is the error's message): what it wrote."""
    hashes = np.empty(cap, np.uint32)
    times = np.empty(cap, np.float32)
    n = fill(uint_ptr(hashes), float_ptr(times))
    if n < 0:
        raise EarshotError(refused)
    return hashes[:n], times[:n]


def _hash_anchors(c_params: Any, per_anchor: int, peaks: np.ndarray, n_peaks: int, first: int,
                  end: int, speed: float) -> tuple[np.ndarray, np.ndarray]:
    """es_fp_hash on anchors [first, end) of peaks[:n_peaks] (PEAK_DTYPE, contiguous)."""
    if end <= first:
        return np.empty(0, np.uint32), np.empty(0, np.float32)
    cap = (end - first) * per_anchor
    src = ffi.cast("es_fp_peak *", ffi.from_buffer(peaks))
    return _hashes_into(cap, lambda h, t: lib.es_fp_hash(c_params, src, n_peaks, first, end, float(speed),
                                                          h, t, cap), "invalid hashing parameters")


def hash_peaks(
    peaks: np.ndarray, params: HashParams, speed: float = 1.0, first: int = 0, end: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of anchors [first, end) of a time-ordered peak array, and the anchors' times
    (frames, on the catalog's time scale). With `speed` s the audio is taken as played
    s times too fast."""
    end = len(peaks) if end is None else end
    if end <= first:
        return np.empty(0, np.uint32), np.empty(0, np.float32)
    peaks = np.ascontiguousarray(peaks, dtype=PEAK_DTYPE)
    return _hash_anchors(_c_hash_params(params), _hashes_per_anchor(params), peaks, len(peaks),
                         first, end, speed)


def hash_picked_peaks(
    peaks: np.ndarray, params: HashParams, anchors: np.ndarray, speed: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """`hash_peaks` of only the anchors at indices `anchors` (strictly increasing), each
    still paired with any later peak: the same hashes, in the same order, as those
    anchors' share of hashing them all, for the work of those alone."""
    anchors = np.ascontiguousarray(anchors, dtype=np.int32)
    if len(anchors) == 0:
        return np.empty(0, np.uint32), np.empty(0, np.float32)
    peaks = np.ascontiguousarray(peaks, dtype=PEAK_DTYPE)
    cap = len(anchors) * _hashes_per_anchor(params)
    src = ffi.cast("es_fp_peak *", ffi.from_buffer(peaks))
    picked = ffi.cast("int *", ffi.from_buffer(anchors))
    return _hashes_into(cap, lambda h, t: lib.es_fp_hash_picked(_c_hash_params(params), src, len(peaks), picked,
                                                                 len(anchors), float(speed), h, t, cap),
                        "invalid hashing parameters or anchor indices")


class HashStream:
    """Peaks in, hashes out as soon as each anchor's target zone is complete.

    Fed the peaks of a stream in any grouping, it yields exactly `hash_peaks` of the whole
    peak array (for the given speed). The live matcher feeds one per speed hypothesis every
    hop, so the peaks it still needs live in one growing buffer (new peaks copied in once,
    the consumed ones dropped from the front now and then) rather than a fresh array a hop."""

    _KEEP_BEFORE_DROP = 256   # consumed anchors kept before the buffer's front moves

    def __init__(self, params: HashParams, speed: float = 1.0):
        self.params, self.speed = params, speed
        self._c = _c_hash_params(params)
        self._per_anchor = _hashes_per_anchor(params)
        self._reach = (params.dt_max + 0.5) / speed   # how far past an anchor its zone ends
        self._buf = np.empty(1024, PEAK_DTYPE)
        self._n = 0     # peaks held: _buf[:_n]
        self._next = 0  # index of the next anchor to hash

    def feed(self, peaks: np.ndarray, frames_final: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Add peaks; `frames_final` is the extractor's watermark (None: end of stream)."""
        m = len(peaks)
        if m:
            if self._n + m > len(self._buf):
                grown = np.empty(2 * (self._n + m), PEAK_DTYPE)
                grown[:self._n] = self._buf[:self._n]
                self._buf = grown
            self._buf[self._n:self._n + m] = peaks
            self._n += m
        if frames_final is None:
            end = self._n
        else:
            # an anchor is complete when no future peak can fall in its zone
            horizon = frames_final - 1 - self._reach
            end = int(np.searchsorted(self._buf["time"][:self._n], horizon, side="left"))
        hashes, times = _hash_anchors(self._c, self._per_anchor, self._buf, self._n, self._next, end,
                                      self.speed)
        self._next = max(self._next, end)
        # keep only peaks that can still be targets of unhashed anchors
        if self._next > self._KEEP_BEFORE_DROP:
            drop = self._next - 1
            kept = self._n - drop
            self._buf[:kept] = self._buf[drop:self._n]
            self._n, self._next = kept, self._next - drop
        return hashes, times


@dataclass
class Fingerprint:
    """The peaks and hashes of a whole signal."""

    peaks: np.ndarray
    hashes: np.ndarray
    times: np.ndarray  # anchor frames


def extract_peaks(signal: np.ndarray, params: PeakParams) -> np.ndarray:
    """All peaks of a whole mono signal at params.sample_rate."""
    stream = PeakStream(params)
    return np.concatenate([stream.process(signal), stream.flush()])


def fingerprint_signal(signal: np.ndarray, peaks: PeakParams, hashing: HashParams) -> Fingerprint:
    """Peaks and hashes of a whole mono signal at peaks.sample_rate."""
    p = extract_peaks(signal, peaks)
    h, t = hash_peaks(p, hashing)
    return Fingerprint(p, h, t)
