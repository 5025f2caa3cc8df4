"""Real event objects for the MQTT tests, and a Publisher factory against a test broker."""
from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from earshot.config import MqttSection, parse_config
from earshot.events import (
    BandLevel,
    HealthEvent,
    LoudnessEvent,
    MatchEvent,
    NowPlayingEvent,
    SongReportEvent,
    TrackInfo,
)
from earshot.mqtt import Publisher

NOW = datetime(2026, 11, 22, 20, 15, 3, tzinfo=UTC)
DEVICE = "test-dev"


def track(n: int = 1) -> TrackInfo:
    return TrackInfo(track_id=n, title=f"Song {n}", artist="Artist", album="Album")


def match(n: int = 1) -> MatchEvent:
    return MatchEvent(track_id=n, title=f"Song {n}", artist="Artist", album="Album", offset_s=12.5,
                      confidence=0.9999, started_at=NOW, latency_s=4.0)


def now_playing(n: int | None = 1) -> NowPlayingEvent:
    if n is None:
        return NowPlayingEvent(state="idle", previous="ended", since=NOW, reason="silence")
    return NowPlayingEvent(state="playing", previous="candidate", track=track(n), position_s=16.5,
                           confidence=0.9999, since=NOW, reason="confirmed")


def bands() -> list[BandLevel]:
    return [BandLevel(name="low", low_hz=20, high_hz=250, level_db=-30.5),
            BandLevel(name="high", low_hz=4000, high_hz=20000, level_db=-41.0)]


def loudness() -> LoudnessEvent:
    return LoudnessEvent(momentary_lufs=-23.1, short_term_lufs=-22.4, integrated_lufs=-22.9,
                         loudness_range_lu=5.5, true_peak_dbtp=-1.4, window_s=600.0, bands=bands())


def report(n: int = 1) -> SongReportEvent:
    return SongReportEvent(track=track(n), started_at=NOW, ended_at=NOW, duration_heard_s=183.0,
                           integrated_lufs=-14.2, loudness_range_lu=7.1, true_peak_dbtp=-0.3,
                           max_momentary_lufs=-9.8, max_short_term_lufs=-11.0, bands=bands())


def health() -> HealthEvent:
    return HealthEvent(device="vmic", device_state="ok", sample_rate=48000, overruns=0, dropped_frames=0,
                       cpu_percent=6.5, audio_s=120.0, catalog_tracks=85, uptime_s=121.0)


def section(port: int, **options: Any) -> MqttSection:
    base = {"host": "127.0.0.1", "port": port, "device_id": DEVICE, "reconnect_min_s": 0.2,
            "reconnect_max_s": 1.0, "keepalive_s": 5}
    return parse_config({"mqtt": base | options}).mqtt


def wait_until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def started(section: MqttSection, state_dir: Path, handler=None, **kw: Any) -> Publisher:
    publisher = Publisher(section, state_dir, handler, **kw)
    publisher.start()
    return publisher
