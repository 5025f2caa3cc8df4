"""A streaming loudness meter (ITU-R BS.1770-4 / EBU R128), the Python face of native/loudness.c.

The same `LoudnessMeter` serves `earshot analyze` (a whole file in one pass) and the live
daemon (blocks at the capture rate, for months). Readings can be taken at any time:
momentary, short-term, and over a scope: the whole input ("all"), since the last
`mark()` ("mark", e.g. a song's start) or the last `window_s` seconds ("window").
Undefined readings (too short, silence) are None, never -70 or -inf.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from . import bands as band_defs
from .config import LoudnessSection
from .native import ffi, lib

# Bump whenever a change could alter any number a meter reports: cached analyses
# carry it in their key, so an upgrade never serves stale figures.
METER_VERSION = "1"

Scope = Literal["all", "mark", "window"]
MonoMode = Literal["single", "dual"]
_SCOPES = {"all": lib.ES_LOUD_ALL, "mark": lib.ES_LOUD_MARK, "window": lib.ES_LOUD_WINDOW}
SURROUND_WEIGHT = 1.41  # BS.1770-4 Table 3 (+1.5 dB)
# The default for one-channel input. "single": BS.1770 as written, the channel weighs 1.0
# (what ffmpeg, libebur128 and pyloudnorm do; right for a microphone). "dual": the signal is
# meant for two loudspeakers (dual-mono), which reads 3.01 dB louder.
DEFAULT_MONO_MODE: MonoMode = "single"
_CHUNK_FRAMES = 1 << 20


class MeterError(ValueError):
    """The meter was asked for something it cannot do (bad rate, channels, scope)."""


def channel_weights(channels: int, mono_mode: MonoMode = DEFAULT_MONO_MODE) -> list[float]:
    """BS.1770 channel weights for common layouts (WAV / SMPTE channel order).

    1: mono (1.0, or 2.0 for dual-mono); 2: L R; 3: L R C; 4: L R Ls Rs; 5: L R C Ls Rs;
    6: L R C LFE Ls Rs (LFE excluded); 7/8: 5.1 plus side/back surrounds (1.41).
    Other counts weigh every channel 1.0.
    """
    if channels < 1:
        raise MeterError(f"a meter needs at least one channel, got {channels}")
    if mono_mode not in ("single", "dual"):
        raise MeterError(f"mono mode must be 'single' or 'dual', got {mono_mode!r}")
    s = SURROUND_WEIGHT
    layouts: dict[int, list[float]] = {
        1: [2.0 if mono_mode == "dual" else 1.0],
        2: [1.0, 1.0],
        3: [1.0, 1.0, 1.0],
        4: [1.0, 1.0, s, s],
        5: [1.0, 1.0, 1.0, s, s],
        6: [1.0, 1.0, 1.0, 0.0, s, s],
        7: [1.0, 1.0, 1.0, 0.0, s, s, s],
        8: [1.0, 1.0, 1.0, 0.0, s, s, s, s],
    }
    return layouts.get(channels, [1.0] * channels)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _db(linear: float) -> float | None:
    return 20.0 * math.log10(linear) if linear > 0.0 else None


@dataclass(frozen=True)
class Series:
    """Momentary and short-term loudness on the meter's step grid (NaN where undefined)."""

    step_s: float
    momentary: np.ndarray
    short_term: np.ndarray


@dataclass(frozen=True)
class Reading:
    """Everything the meter knows about one scope, as plain numbers (None = undefined)."""

    scope: str
    duration_s: float
    momentary_lufs: float | None
    short_term_lufs: float | None
    integrated_lufs: float | None
    integrated_error_lu: float | None
    loudness_range_lu: float | None
    true_peak_dbtp: float | None
    sample_peak_dbfs: float | None
    true_peak_per_channel_dbtp: list[float | None]
    sample_peak_per_channel_dbfs: list[float | None]
    max_momentary_lufs: float | None
    max_short_term_lufs: float | None
    band_powers: list[float] | None


class LoudnessMeter:
    """Streaming BS.1770 / R128 meter: feed float frames, read loudness at any time."""

    def __init__(
        self,
        sample_rate: int,
        channels: int,
        *,
        mono_mode: MonoMode = DEFAULT_MONO_MODE,
        weights: Sequence[float] | None = None,
        window_s: int = 0,
        exact_seconds: float = 3600.0,
        exhaustive_true_peak: bool = False,
    ):
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.weights = list(weights) if weights is not None else channel_weights(channels, mono_mode)
        if len(self.weights) != self.channels:
            raise MeterError(f"{len(self.weights)} weights given for {self.channels} channels")
        self.window_s = int(window_s)
        c_weights = ffi.new("double[]", [float(w) for w in self.weights])
        c_edges = ffi.new("double[]", [float(e) for e in band_defs.EDGES_HZ])
        exact_blocks = int(min(max(exact_seconds, 0.0) * 10 + 16, 100_000_000))
        flags = lib.ES_LOUD_TP_EXHAUSTIVE if exhaustive_true_peak else 0
        out = ffi.new("es_loud **")
        rc = lib.es_loud_new(self.sample_rate, self.channels, c_weights, c_edges,
                             self.window_s, exact_blocks, flags, out)
        if rc == lib.ES_LOUD_ENOMEM:
            raise MemoryError("not enough memory for a loudness meter")
        if rc != lib.ES_LOUD_OK:
            raise MeterError(
                f"cannot meter {self.channels} channel(s) at {self.sample_rate} Hz "
                f"(rates 8000..768000 Hz, 1..{lib.ES_LOUD_MAX_CHANNELS} channels, window up to 1 day)"
            )
        self._st = ffi.gc(out[0], lib.es_loud_free)
        self.step_frames = int(lib.es_loud_step_frames(self._st))
        self.step_s = self.step_frames / self.sample_rate
        self.oversampling = int(lib.es_loud_oversampling(self._st))
        self._d1 = ffi.new("double *")
        self._d2 = ffi.new("double *")

    @classmethod
    def live(cls, section: LoudnessSection, sample_rate: int, channels: int) -> LoudnessMeter:
        """The daemon's meter: a rolling window of `section.window_min` minutes, exact
        gating for the first hour of each scope, bounded histograms after that."""
        return cls(sample_rate, channels, mono_mode=section.mono_mode,
                   window_s=round(section.window_min * 60), exact_seconds=3600.0)

    # -- feeding -------------------------------------------------------------------
    def process(self, frames: np.ndarray, series: bool = False) -> Series | None:
        """Feed frames shaped (n, channels) (or (n,) for one channel), any block size.

        With series=True, returns the momentary and short-term loudness of every step
        completed during this call.
        """
        x = np.ascontiguousarray(frames, dtype=np.float32)
        if x.ndim == 1:
            x = x.reshape(-1, 1)
        if x.ndim != 2 or x.shape[1] != self.channels:
            raise MeterError(f"expected frames shaped (n, {self.channels}), got {frames.shape}")
        n = x.shape[0]
        cap = n // self.step_frames + 2 if series else 0
        mom = np.empty(cap, dtype=np.float64)
        sht = np.empty(cap, dtype=np.float64)
        written = 0
        steps = ffi.new("int *")
        for start in range(0, n, _CHUNK_FRAMES):
            part = x[start:start + _CHUNK_FRAMES]
            if series:
                m_ptr = ffi.cast("double *", ffi.from_buffer(mom)) + written
                s_ptr = ffi.cast("double *", ffi.from_buffer(sht)) + written
                lib.es_loud_process(self._st, ffi.cast("float *", ffi.from_buffer(part)),
                                    part.shape[0], m_ptr, s_ptr, cap - written, steps)
                written += int(steps[0])
            else:
                lib.es_loud_process(self._st, ffi.cast("float *", ffi.from_buffer(part)),
                                    part.shape[0], ffi.NULL, ffi.NULL, 0, ffi.NULL)
        if not series:
            return None
        return Series(self.step_s, mom[:written].copy(), sht[:written].copy())

    def mark(self) -> None:
        """Start the "mark" scope here (e.g. at a song's start)."""
        lib.es_loud_mark(self._st)

    def reset(self) -> None:
        """Forget everything, as if new."""
        lib.es_loud_reset(self._st)

    # -- readings ------------------------------------------------------------------
    @staticmethod
    def _scope(scope: Scope) -> int:
        try:
            return _SCOPES[scope]
        except KeyError:
            raise MeterError(f"unknown scope {scope!r} (all, mark, window)") from None

    def _check(self, rc: int) -> bool:
        if rc == lib.ES_LOUD_EINVAL:
            raise MeterError("this meter keeps no window (create it with window_s > 0)")
        return rc == lib.ES_LOUD_OK

    def duration_s(self, scope: Scope = "all") -> float:
        """Seconds of input in a scope."""
        return float(lib.es_loud_frames(self._st, self._scope(scope))) / self.sample_rate

    def momentary(self) -> float | None:
        """Momentary loudness (LUFS, last 400 ms)."""
        return _finite(lib.es_loud_get_momentary(self._st))

    def short_term(self) -> float | None:
        """Short-term loudness (LUFS, last 3 s)."""
        return _finite(lib.es_loud_get_short_term(self._st))

    def integrated(self, scope: Scope = "all") -> float | None:
        """Gated integrated loudness (LUFS)."""
        ok = self._check(lib.es_loud_get_integrated(self._st, self._scope(scope), self._d1, self._d2))
        return float(self._d1[0]) if ok else None

    def integrated_error(self, scope: Scope = "all") -> float | None:
        """Bound on the integrated reading's deviation from exact gating (0 while exact)."""
        ok = self._check(lib.es_loud_get_integrated(self._st, self._scope(scope), self._d1, self._d2))
        return float(self._d2[0]) if ok else None

    def loudness_range(self, scope: Scope = "all") -> float | None:
        """Loudness range (LU, EBU Tech 3342)."""
        ok = self._check(lib.es_loud_get_range(self._st, self._scope(scope), self._d1))
        return float(self._d1[0]) if ok else None

    def peaks(self, scope: Scope = "all", channel: int | None = None) -> tuple[float, float]:
        """(sample peak, true peak) as linear amplitudes; channel None = all channels."""
        ch = -1 if channel is None else int(channel)
        if not -1 <= ch < self.channels:
            raise MeterError(f"no channel {channel} in a {self.channels}-channel meter")
        self._check(lib.es_loud_get_peaks(self._st, self._scope(scope), ch, self._d1, self._d2))
        return float(self._d1[0]), float(self._d2[0])

    def true_peak(self, scope: Scope = "all", channel: int | None = None) -> float | None:
        """True peak in dBTP (None for digital silence)."""
        return _db(self.peaks(scope, channel)[1])

    def sample_peak(self, scope: Scope = "all", channel: int | None = None) -> float | None:
        """Sample peak in dBFS (None for digital silence)."""
        return _db(self.peaks(scope, channel)[0])

    def max_loudness(self, scope: Scope = "all") -> tuple[float | None, float | None]:
        """(largest momentary, largest short-term) loudness in LUFS."""
        self._check(lib.es_loud_get_max(self._st, self._scope(scope), self._d1, self._d2))
        return _finite(float(self._d1[0])), _finite(float(self._d2[0]))

    def band_powers(self, scope: Scope = "all") -> list[float] | None:
        """Mean power in each of the six bands (linear) over the audible hops of a scope."""
        out = ffi.new("double[6]")
        if not self._check(lib.es_loud_get_bands(self._st, self._scope(scope), out)):
            return None
        return [float(v) for v in out]

    def reading(self, scope: Scope = "all") -> Reading:
        """All readings of a scope at once."""
        sp, tp = self.peaks(scope)
        per = [self.peaks(scope, c) for c in range(self.channels)]
        max_m, max_s = self.max_loudness(scope)
        return Reading(
            scope=scope,
            duration_s=self.duration_s(scope),
            momentary_lufs=self.momentary(),
            short_term_lufs=self.short_term(),
            integrated_lufs=self.integrated(scope),
            integrated_error_lu=self.integrated_error(scope),
            loudness_range_lu=self.loudness_range(scope),
            true_peak_dbtp=_db(tp),
            sample_peak_dbfs=_db(sp),
            true_peak_per_channel_dbtp=[_db(p[1]) for p in per],
            sample_peak_per_channel_dbfs=[_db(p[0]) for p in per],
            max_momentary_lufs=max_m,
            max_short_term_lufs=max_s,
            band_powers=self.band_powers(scope),
        )

    def state_bytes(self) -> int:
        """Memory the C state holds (fixed at creation)."""
        return int(lib.es_loud_state_bytes(self._st))

    def k_weighting(self) -> list[float]:
        """The K-filter coefficients derived for this rate (b0 b1 b2 a1 a2, two stages)."""
        out = ffi.new("double[10]")
        lib.es_loud_kweights(self._st, out)
        return list(out)
