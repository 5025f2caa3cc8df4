"""The live pipeline: capture-rate blocks in, events out. No I/O of its own.

Per block (a hop, e.g. 0.25 s): the loudness meter takes the block at the capture rate with
all its channels; the block is mixed to mono (C), resampled with state to the fingerprint
rate (C), its spectral peaks extracted (C, streaming), hashed under the speed hypotheses and
looked up (MatchSession: only the new peaks, never the whole window again). Twice a second
the NowPlaying machine reads the evidence; old evidence slides out of the window.
"""
from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

import numpy as np

from .audio.resample import Resampler, mix_mono
from .bands import band_levels
from .catalog import Catalog
from .config import ListenSection, LoudnessSection, RecognitionSection
from .events import BandLevel, EventBase, LoudnessEvent, SongReportEvent
from .fingerprint import PeakStream
from .heap import release_free_heap
from .loudness import LoudnessMeter
from .matcher import DEFAULT_SPEEDS, Match, MatchSession
from .nowplaying import NowPlaying, NowPlayingParams, SongEnded
from .smear import RoomSmear, hits_at_place

EVAL_INTERVAL_S = 0.5
HEAP_TRIM_INTERVAL_S = 5.0   # freed heap handed back this often (see heap.py)
# speed hypotheses naming one track within this many seconds of each other now are one
# claim (see MatchSession._one_claim): without it a clean song could be announced at a
# neighbouring speed, drift out of its cell and end early, to be announced again
CLAIM_TOLERANCE_S = 0.5


def wall_clock_stamp(_audio_s: float) -> datetime:
    """Live sources: an event happens now."""
    return datetime.now(timezone.utc)


def audio_clock_stamp(start: datetime) -> Callable[[float], datetime]:
    """Files fed faster than real time: an event happens at its place in the audio."""
    return lambda audio_s: start + timedelta(seconds=audio_s)


def bands_json(powers: list[float] | None) -> list[BandLevel]:
    return [BandLevel(name=b.name, low_hz=b.low_hz, high_hz=b.high_hz,
                      level_db=None if b.level_db is None else round(b.level_db, 2))
            for b in band_levels(powers)]


def _r(x: float | None, digits: int = 2) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, digits)


@dataclass
class PipelineStats:
    audio_s: float = 0.0
    blocks: int = 0
    busy_s: float = 0.0     # thread CPU spent in process()


class Pipeline:
    """One capture stream's recognition and loudness."""

    def __init__(
        self, catalog: Catalog, sample_rate: int, channels: int, *,
        listen: ListenSection = ListenSection(), recognition: RecognitionSection = RecognitionSection(),
        loudness: LoudnessSection = LoudnessSection(),
        stamp: Callable[[float], datetime] = wall_clock_stamp,
    ):
        self.catalog = catalog
        self.sample_rate, self.channels = int(sample_rate), int(channels)
        self.listen = listen
        self.params = catalog.params
        self.stamp = stamp
        self.meter = LoudnessMeter.live(loudness, self.sample_rate, self.channels)
        self.resampler = Resampler(self.sample_rate, self.params.sample_rate)
        self.peaks = PeakStream(self.params.query_peaks)
        speeds = DEFAULT_SPEEDS if recognition.speed_search else (1.0,)
        # hits weigh by how rare their hash is, as `identify`'s do. The nominal hypothesis'
        # time gaps: "auto" (the default) starts exact and takes `identify`'s ±1 frame once
        # the songs announced show that the room moves their peaks (smear.py): in a room the
        # tolerance finds about three times a song's hits, while on a dry chain it adds only
        # coincidences and, from 8 of 28 capture alignments of three clean hours, named a
        # faint recording that an unknown song mixes in (README, live listener). A number
        # fixes it; on every speed hypothesis ("all") it doubles the CPU.
        self._room = RoomSmear() if listen.time_tolerance == "auto" else None
        fixed = 0 if self._room is not None else int(listen.time_tolerance)
        everywhere = listen.time_tolerance_speeds == "all"
        live = replace(self.params, query_hash=replace(
            self.params.query_hash, fanout=listen.query_fanout,
            dt_tolerance=float(fixed if everywhere else 0)))
        self.session = MatchSession(catalog, params=live, speeds=speeds,
                                    nominal_dt_tolerance=float(fixed),
                                    claim_tolerance_s=CLAIM_TOLERANCE_S,
                                    rarity_weight=listen.rarity_weight, rolling_nominal=True)
        # the last window's peaks, for measuring the room on a song just announced
        self._recent_peaks: deque[np.ndarray] = deque()
        self.frame_s = self.params.frame_seconds
        self.nowplaying = NowPlaying(
            frame_s=self.frame_s, stamp=stamp,
            params=NowPlayingParams(max_p=max(1e-12, 1.0 - listen.min_confidence),
                                    window_s=listen.window_s, lost_after_s=listen.lost_after_s,
                                    resume_within_s=listen.resume_within_s,
                                    recent_beyond_chance=fixed > 0),
        )
        self.stats = PipelineStats()
        self._next_eval = EVAL_INTERVAL_S
        self._next_loudness = listen.loudness_interval_s
        self._next_heap_trim = HEAP_TRIM_INTERVAL_S
        self._quiet = True

    # -- feeding -------------------------------------------------------------------------
    def process(self, block: np.ndarray, evaluate: bool = True) -> list[EventBase]:
        """Feed a (frames, channels) float32 block; returns the events it caused.

        evaluate=False advances the clocks without judging what plays (audio missed during a
        device outage: its silence says nothing about whether the song stopped)."""
        t0 = time.thread_time()
        block = np.ascontiguousarray(block, dtype=np.float32)
        if block.ndim == 1:
            block = block.reshape(-1, 1)
        self.meter.process(block)
        mono = mix_mono(block) if self.channels > 1 else block[:, 0]
        x = self.resampler.process(mono)
        peaks = self.peaks.process(x)
        self.session.add_peaks(peaks, self.peaks.frames_final)
        if self._room is not None:
            self._keep_recent_peaks(peaks)
        self.stats.audio_s += block.shape[0] / self.sample_rate
        self.stats.blocks += 1
        events: list[EventBase] = []
        now = self.stats.audio_s
        if now >= self._next_eval:
            self._next_eval = now + EVAL_INTERVAL_S
            if evaluate:
                events += self._evaluate(now)
        if now >= self._next_loudness:
            self._next_loudness = now + self.listen.loudness_interval_s
            events.append(self.loudness_event())
        if now >= self._next_heap_trim:
            self._next_heap_trim = now + HEAP_TRIM_INTERVAL_S
            release_free_heap()
        self.stats.busy_s += time.thread_time() - t0
        return events

    def _evaluate(self, now: float) -> list[EventBase]:
        momentary = self.meter.momentary()
        self._quiet = momentary is None or momentary < self.listen.silence_lufs
        before = self.nowplaying.state
        events = self.nowplaying.update(now, self.session, self._quiet)
        if self._room is not None and any(e.event == "match" for e in events):
            self._measure_room()
        if before in ("idle", "ended") and self.nowplaying.state == "candidate":
            self.meter.mark()   # the song report's loudness starts about where the song was found
        for ended in self.nowplaying.take_ended():
            events.append(self.song_report(ended))
            if self.nowplaying.state == "candidate":
                self.meter.mark()
        self.session.focus(self._speeds_to_hash())
        # evidence older than the window is no longer needed (a playing song keeps its own)
        self.session.evict((now - self.listen.window_s) / self.frame_s)
        return events

    def _keep_recent_peaks(self, peaks: np.ndarray) -> None:
        """Per hop: the window's peaks (a copy: the extractor's array is a slice of a larger
        scratch), a hop's peaks dropped once its latest is out (a hop's peaks come up to a
        frame out of order, hence the max)."""
        if len(peaks):
            self._recent_peaks.append(peaks.copy())
        oldest = self.peaks.frames_final - self.listen.window_s / self.frame_s
        while self._recent_peaks and float(self._recent_peaks[0]["time"].max()) < oldest:
            self._recent_peaks.popleft()

    def _measure_room(self) -> None:
        """A song was just announced: its hits at its place in the window's peaks, with exact
        gaps and with the tolerance, tell how much the room moves peaks; the nominal
        hypothesis' tolerance follows the last few songs' verdict (smear.py). 26-47 ms of CPU
        per announcement on the benchmark's 11.5-hour catalog."""
        song = self.nowplaying.song
        if self._room is None or song is None or not self._recent_peaks:
            return
        exact, tolerant = hits_at_place(
            self.catalog, self.session.params, np.concatenate(list(self._recent_peaks)),
            song.match.track.track_id, song.offset_frames, song.match.speed,
            self.nowplaying.params.offset_tolerance_s / self.frame_s)
        self._room.add(exact, tolerant)
        frames = self._room.tolerance
        self.session.set_nominal_tolerance(frames)
        # with tolerant hashes a playing song's recent hits must beat its coincidence rate too
        self.nowplaying.params = replace(self.nowplaying.params, recent_beyond_chance=frames > 0)

    @property
    def time_tolerance(self) -> int:
        """Frames by which the nominal hypothesis' time gaps may be off now."""
        return int(self.session.query_hash_params(1.0).dt_tolerance)

    def _speeds_to_hash(self) -> tuple[float, ...] | None:
        """While a song plays: its speed, the hypotheses next to it and the nominal one (a
        next song at its own speed is found as fast as before); otherwise all of them (None).
        On the hour benchmark (clean) this halved the hashing and lookups (add_peaks 0.0093
        -> 0.0046 CPU s per s of audio) with the same announcements, latencies and ends."""
        song = self.nowplaying.song
        if self.nowplaying.state != "playing" or song is None or len(self.session.speeds) <= 3:
            return None
        ordered = sorted(self.session.speeds)
        i = ordered.index(song.match.speed)
        return tuple({1.0, *ordered[max(0, i - 1):i + 2]})

    def flush(self) -> list[EventBase]:
        """End of stream: the song playing ends here."""
        events, playing = self.nowplaying.finish(self.stats.audio_s)
        for ended in self.nowplaying.take_ended():
            if playing:
                events.append(self.song_report(ended))
        return events

    # -- readings ------------------------------------------------------------------------
    def loudness_event(self) -> LoudnessEvent:
        m = self.meter
        return LoudnessEvent(
            ts=self.stamp(self.stats.audio_s),
            momentary_lufs=_r(m.momentary()), short_term_lufs=_r(m.short_term()),
            integrated_lufs=_r(m.integrated("window")), loudness_range_lu=_r(m.loudness_range("window")),
            true_peak_dbtp=_r(m.true_peak("window")), window_s=round(m.duration_s("window"), 2),
            bands=bands_json(m.band_powers("window")),
        )

    def song_report(self, ended: SongEnded) -> SongReportEvent:
        m = self.meter
        max_m, max_s = m.max_loudness("mark")
        return SongReportEvent(
            ts=self.stamp(self.stats.audio_s), track=ended.track, started_at=ended.started_at,
            ended_at=ended.ended_at, duration_heard_s=round(ended.heard_s, 2),
            integrated_lufs=_r(m.integrated("mark")), loudness_range_lu=_r(m.loudness_range("mark")),
            true_peak_dbtp=_r(m.true_peak("mark")), max_momentary_lufs=_r(max_m),
            max_short_term_lufs=_r(max_s), bands=bands_json(m.band_powers("mark")),
        )

    def best_guess(self) -> Match | None:
        """The best-supported track in the window, however unsure (for `identify_now`)."""
        now = self.stats.audio_s
        return self.session.best(since_frame=max(0.0, now - self.listen.window_s) / self.frame_s)

    @property
    def quiet(self) -> bool:
        return self._quiet
