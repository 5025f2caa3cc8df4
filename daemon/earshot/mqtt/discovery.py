"""Home Assistant MQTT discovery: one device, its entities, as pure data.

Each entity is one retained config on `<prefix>/<component>/<node_id>/<object_id>/config`
(Home Assistant's per-component discovery). Keys follow HA's MQTT schemas
(sensor, binary_sensor, event, button); the templates use only standard Jinja2 (HA's
template engine is Jinja2), so tests render them against real event payloads.

Why some choices:
- loudness sensors have unit `LUFS` / `dBTP` and no device_class: HA's `sound_pressure`
  class only accepts dB/dBA, and rejects the whole config otherwise;
- a template renders the literal `None` for a missing value, which HA reads as `unknown`
  (its PAYLOAD_NONE), rather than a number HA would fail to parse;
- attribute names avoid HA's blocked ones (`state`, `name`, `icon`, ...);
- no `object_id` / `default_entity_id`: HA names entities from the device and entity names,
  and `object_id` is deprecated since HA 2025.10.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import __version__
from .topics import Topics


@dataclass(frozen=True)
class Entity:
    """One discovery config: where it goes and what it says."""

    component: str
    object_id: str
    config: dict[str, Any]


NOW_PLAYING_TITLE = (
    "{% if value_json.state == 'playing' and value_json.track %}"
    "{{ value_json.track.title[:255] }}{% else %}idle{% endif %}"
)
NOW_PLAYING_ATTRIBUTES = (
    "{% set t = value_json.track or {} %}"
    "{{ {'play_state': value_json.state, 'title': t.title | default(none), "
    "'artist': t.artist | default(none), 'album': t.album | default(none), "
    "'track_id': t.track_id | default(none), 'position_s': value_json.position_s, "
    "'confidence': value_json.confidence, 'since': value_json.since} | tojson }}"
)
MUSIC_PLAYING = "{{ 'ON' if value_json.state == 'playing' else 'OFF' }}"
MATCH_EVENT = (
    "{{ {'event_type': 'match', 'title': value_json.title, 'artist': value_json.artist, "
    "'album': value_json.album, 'track_id': value_json.track_id, "
    "'confidence': value_json.confidence, 'offset_s': value_json.offset_s, "
    "'event_id': value_json.id} | tojson }}"
)


def field_template(field: str) -> str:
    """The value of one JSON field (JSON null renders `None`: HA's unknown)."""
    return f"{{{{ value_json.{field} }}}}"


def sound_level_template(offset_db: float) -> str:
    """Short-term loudness plus the calibration offset, or `None` while there is none."""
    return (
        "{% if value_json.short_term_lufs is not none %}"
        f"{{{{ (value_json.short_term_lufs + ({offset_db!r})) | round(1) }}}}"
        "{% else %}None{% endif %}"
    )


def device_block(device_id: str, device_name: str) -> dict[str, Any]:
    return {
        "identifiers": [f"earshot_{device_id}"],
        "name": device_name,
        "manufacturer": "earshot",
        "model": "earshot room listener",
        "sw_version": __version__,
    }


def origin_block() -> dict[str, Any]:
    return {"name": "earshot", "sw_version": __version__}


def _common(topics: Topics, object_id: str, name: str, device: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "unique_id": f"earshot_{topics.device_id}_{object_id}",
        "availability_topic": topics.status,
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": device,
        "origin": origin_block(),
    }


def _loudness_sensor(topics: Topics, device: dict[str, Any], object_id: str, name: str,
                     field: str, unit: str) -> Entity:
    config = _common(topics, object_id, name, device) | {
        "state_topic": topics.for_event("loudness"),
        "value_template": field_template(field),
        "unit_of_measurement": unit,
        "state_class": "measurement",
        "suggested_display_precision": 1,
        "icon": "mdi:waveform",
    }
    return Entity("sensor", object_id, config)


def _diagnostic(topics: Topics, device: dict[str, Any], object_id: str, name: str, field: str,
                state_class: str, unit: str | None = None, icon: str | None = None) -> Entity:
    config = _common(topics, object_id, name, device) | {
        "state_topic": topics.for_event("health"),
        "value_template": field_template(field),
        "state_class": state_class,
        "entity_category": "diagnostic",
    }
    if unit:
        config["unit_of_measurement"] = unit
    if icon:
        config["icon"] = icon
    return Entity("sensor", object_id, config)


def entities(topics: Topics, *, device_name: str, sound_level_offset_db: float | None) -> list[Entity]:
    """Every entity earshot announces for this device, with this configuration."""
    device = device_block(topics.device_id, device_name)
    now_playing = topics.now_playing
    result = [
        Entity("sensor", "now_playing", _common(topics, "now_playing", "Now playing", device) | {
            "state_topic": now_playing,
            "value_template": NOW_PLAYING_TITLE,
            "json_attributes_topic": now_playing,
            "json_attributes_template": NOW_PLAYING_ATTRIBUTES,
            "icon": "mdi:music",
            "qos": 1,
        }),
        Entity("binary_sensor", "music_playing", _common(topics, "music_playing", "Music playing", device) | {
            "state_topic": now_playing,
            "value_template": MUSIC_PLAYING,
            "payload_on": "ON",
            "payload_off": "OFF",
            "device_class": "sound",
            "qos": 1,
        }),
        Entity("event", "match", _common(topics, "match", "Song recognised", device) | {
            "state_topic": topics.for_event("match"),
            "value_template": MATCH_EVENT,
            "event_types": ["match"],
            "icon": "mdi:music-note",
            "qos": 1,
        }),
        _loudness_sensor(topics, device, "momentary_loudness", "Momentary loudness", "momentary_lufs", "LUFS"),
        _loudness_sensor(topics, device, "short_term_loudness", "Short-term loudness", "short_term_lufs", "LUFS"),
        _loudness_sensor(topics, device, "integrated_loudness", "Integrated loudness", "integrated_lufs", "LUFS"),
        _loudness_sensor(topics, device, "true_peak", "True peak", "true_peak_dbtp", "dBTP"),
        _diagnostic(topics, device, "overruns", "Audio overruns", "overruns", "total_increasing",
                    icon="mdi:alert-circle-outline"),
        _diagnostic(topics, device, "spool_depth", "Events waiting for the broker", "spool_depth",
                    "measurement", unit="events", icon="mdi:tray-full"),
        _diagnostic(topics, device, "catalog_tracks", "Catalog size", "catalog_tracks", "measurement",
                    unit="tracks", icon="mdi:music-box-multiple"),
        _diagnostic(topics, device, "cpu", "CPU", "cpu_percent", "measurement", unit="%", icon="mdi:cpu-64-bit"),
        Entity("button", "identify_now", _common(topics, "identify_now", "Identify now", device) | {
            "command_topic": topics.cmd,
            "payload_press": '{"command": "identify_now"}',
            "retain": False,
            "qos": 1,
            "icon": "mdi:music-circle-outline",
        }),
    ]
    if sound_level_offset_db is not None:
        result.append(Entity("sensor", SOUND_LEVEL, _common(topics, SOUND_LEVEL, "Sound level", device) | {
            "state_topic": topics.for_event("loudness"),
            "value_template": sound_level_template(sound_level_offset_db),
            "unit_of_measurement": "dBA",
            "device_class": "sound_pressure",
            "state_class": "measurement",
            "suggested_display_precision": 0,
        }))
    return result


SOUND_LEVEL = "sound_level"
# entities that exist only with some configurations: their configs are cleared (an empty
# retained payload removes the entity in HA) when the configuration no longer has them
CONDITIONAL = (("sensor", SOUND_LEVEL),)


def withdrawn(topics: Topics, announced: list[Entity]) -> list[str]:
    """Discovery topics of conditional entities this configuration does not announce."""
    present = {(e.component, e.object_id) for e in announced}
    return [topics.discovery(c, o) for c, o in CONDITIONAL if (c, o) not in present]


def all_discovery_topics(topics: Topics) -> list[str]:
    """Every discovery topic earshot may have used for this device (for purging)."""
    announced = entities(topics, device_name="", sound_level_offset_db=0.0)
    return [topics.discovery(e.component, e.object_id) for e in announced]
