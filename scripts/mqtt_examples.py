"""Print the example MQTT payloads of the README's "MQTT and Home Assistant" section, built
from the real event models, command replies and discovery payloads (so they cannot drift
from what earshot sends; tests/test_mqtt_readme.py checks the README against the models).

    .venv/bin/python scripts/mqtt_examples.py
"""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from earshot.bands import EDGES_HZ, NAMES
from earshot.config import parse_config
from earshot.events import (
    BandLevel,
    HealthEvent,
    LoudnessEvent,
    MatchEvent,
    NowPlayingEvent,
    SongReportEvent,
    TrackInfo,
)
from earshot.mqtt import discovery
from earshot.mqtt.commands import reply
from earshot.mqtt.topics import Topics

T0 = datetime(2026, 11, 22, 20, 15, 3, 250000, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def bands(levels: tuple[float, ...]) -> list[BandLevel]:
    return [BandLevel(name=n, low_hz=EDGES_HZ[i], high_hz=EDGES_HZ[i + 1], level_db=levels[i])
            for i, n in enumerate(NAMES)]


def examples() -> dict[str, object]:
    track = TrackInfo(track_id=17, title="Battle Music", artist="Aleksi Aubry-Carlson",
                      album="The Battle for Wesnoth", source="/srv/music/wesnoth/battle.ogg")
    return {
        "match": MatchEvent(id="3f0c9a4e8b7d4d2c9a1e6f5b4c3d2e1f", ts=at(4.5), track_id=17, title=track.title,
                            artist=track.artist, album=track.album, source=track.source, offset_s=16.75,
                            confidence=0.99998, speed=1.0, started_at=at(-12.25), latency_s=4.5),
        "now_playing": NowPlayingEvent(id="b2a1c3d4e5f60718293a4b5c6d7e8f90", ts=at(4.5), state="playing",
                                       previous="candidate", track=track, position_s=16.75, confidence=0.99998,
                                       since=at(4.5), reason="confirmed by a second evaluation"),
        "loudness": LoudnessEvent(id="5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b", ts=at(10.0), momentary_lufs=-21.8,
                                  short_term_lufs=-22.6, integrated_lufs=-23.9, loudness_range_lu=7.2,
                                  true_peak_dbtp=-3.1, window_s=600.0,
                                  bands=bands((-21.4, -6.9, -7.8, -5.2, -11.0, -19.6))),
        "report": SongReportEvent(id="c0ffee00112233445566778899aabbcc", ts=at(190.0), track=track,
                                  started_at=at(-12.25), ended_at=at(186.5), duration_heard_s=191.0,
                                  integrated_lufs=-22.4, loudness_range_lu=8.3, true_peak_dbtp=-2.2,
                                  max_momentary_lufs=-15.9, max_short_term_lufs=-18.4,
                                  bands=bands((-20.9, -6.4, -8.1, -5.0, -11.8, -20.3))),
        "health": HealthEvent(id="0a1b2c3d4e5f60718293a4b5c6d7e8f9", ts=at(60.0), device="USB Audio: Mic (hw:1,0)",
                              device_state="ok", sample_rate=48000, overruns=0, dropped_frames=0,
                              cpu_percent=6.8, audio_s=3600.0, catalog_tracks=85, uptime_s=3600.4,
                              device_errors=0, last_error=None, spool_depth=0, spool_dropped=0),
        "cmd": {"command": "pause", "id": "ha-42"},
        # the service's pause handler answers {"listening": false}
        "cmd/result": json.loads(reply("ha-42", "pause", result={"listening": False})),
    }


def compact(obj: object) -> str:
    """Top-level keys one per line; nested values on the same line."""
    if not isinstance(obj, dict):
        return json.dumps(obj)
    lines = [f'  "{k}": {json.dumps(v, ensure_ascii=False)}' for k, v in obj.items()]
    return "{\n" + ",\n".join(lines) + "\n}"


def main() -> None:
    for topic, example in examples().items():
        body = example.to_json_dict() if hasattr(example, "to_json_dict") else example
        if topic == "cmd/result":
            body["ts"] = "2026-11-22T20:16:10.500000Z"
        print(f"`earshot/livingroom/{topic}`\n```json\n{compact(body)}\n```\n")
    section = parse_config({"mqtt": {"host": "broker.lan", "device_id": "livingroom"}}).mqtt
    topics = Topics.from_section(section)
    entity = discovery.entities(topics, device_name="earshot livingroom", sound_level_offset_db=None)[0]
    print(f"`{topics.discovery(entity.component, entity.object_id)}`\n```json\n{compact(entity.config)}\n```")


if __name__ == "__main__":
    main()
