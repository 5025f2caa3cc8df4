"""Home Assistant discovery payloads, field by field against HA's documented MQTT schemas.

The expected keys and constraints below are written from Home Assistant's MQTT docs and
its discovery schemas (sensor.mqtt, binary_sensor.mqtt, event.mqtt, button.mqtt; the
shared availability / device / origin schemas): an unknown key would be silently dropped
by HA, a wrong value makes HA reject the whole config. The value templates are rendered
with Jinja2 (HA's template engine) against payloads of the real event models.
"""
from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from earshot.config import parse_config
from earshot.events import (
    BandLevel,
    HealthEvent,
    LoudnessEvent,
    MatchEvent,
    NowPlayingEvent,
    TrackInfo,
)
from earshot.mqtt import discovery
from earshot.mqtt.topics import Topics
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

# --- what Home Assistant accepts (from its MQTT docs and discovery schemas) -------------

# availability (single and list forms), MQTT_ENTITY_COMMON_SCHEMA, MQTT_BASE_SCHEMA
COMMON_KEYS = {
    "availability", "availability_mode", "availability_template", "availability_topic",
    "payload_available", "payload_not_available", "device", "origin", "enabled_by_default",
    "entity_category", "entity_picture", "icon", "json_attributes_topic", "json_attributes_template",
    "object_id", "default_entity_id", "unique_id", "name", "qos", "encoding",
}
COMPONENT_KEYS = {
    "sensor": {"state_topic", "value_template", "device_class", "expire_after", "force_update",
               "last_reset_value_template", "options", "suggested_display_precision", "state_class",
               "unit_of_measurement"},
    "binary_sensor": {"state_topic", "value_template", "device_class", "expire_after", "force_update",
                      "off_delay", "payload_off", "payload_on"},
    "event": {"state_topic", "value_template", "device_class", "event_types"},
    "button": {"command_topic", "command_template", "device_class", "payload_press", "retain"},
}
REQUIRED = {"sensor": {"state_topic"}, "binary_sensor": {"state_topic"},
            "event": {"state_topic", "event_types"}, "button": {"command_topic"}}
DEVICE_KEYS = {"identifiers", "connections", "manufacturer", "model", "model_id", "name", "hw_version",
               "serial_number", "sw_version", "via_device", "suggested_area", "configuration_url"}
ORIGIN_KEYS = {"name", "sw_version", "support_url"}
STATE_CLASSES = {"measurement", "measurement_angle", "total", "total_increasing"}
# HA's SensorDeviceClass.SOUND_PRESSURE units (UnitOfSoundPressure)
SOUND_PRESSURE_UNITS = {"dB", "dBA"}
BINARY_SENSOR_CLASSES_USED = {"sound"}  # a BinarySensorDeviceClass member
# attribute names HA refuses to take from json_attributes (MQTT_ATTRIBUTES_BLOCKED)
BLOCKED_ATTRIBUTES = {"assumed_state", "available", "context_recent_time", "device_class", "device_info",
                      "entity_category", "entity_picture", "entity_registry_enabled_default",
                      "extra_state_attributes", "force_update", "icon", "name", "friendly_name",
                      "should_poll", "state", "supported_features", "unique_id", "unit_of_measurement"}
# HA's discovery topic matcher (after the prefix) and the components it supports that we use
TOPIC_MATCHER = re.compile(r"(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?"
                           r"(?P<object_id>[a-zA-Z0-9_-]+)/config")
ICON = re.compile(r"^[a-z0-9-]+:[a-z0-9-]+$")

OFFSET = 94.5


@pytest.fixture(scope="module")
def section():
    return parse_config({"mqtt": {"host": "broker.lan", "device_id": "living-room",
                                  "sound_level_offset_db": OFFSET}}).mqtt


@pytest.fixture(scope="module")
def topics(section):
    return Topics.from_section(section)


@pytest.fixture(scope="module")
def announced(topics, section):
    return discovery.entities(topics, device_name="earshot living-room",
                              sound_level_offset_db=section.sound_level_offset_db)


def by_id(entities, object_id):
    return next(e for e in entities if e.object_id == object_id)


def render(template: str, payload: dict) -> str:
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined)
    return env.from_string(template).render(value_json=payload, value=json.dumps(payload))


NOW = datetime(2026, 11, 22, 20, 15, 3, tzinfo=UTC)
TRACK = TrackInfo(track_id=17, title="Battle Music", artist="Aleksi Aubry-Carlson", album="Wesnoth")


def playing():
    return NowPlayingEvent(state="playing", previous="candidate", track=TRACK, position_s=61.5,
                           confidence=0.9999, since=NOW, reason="confirmed").to_json_dict()


def idle():
    return NowPlayingEvent(state="idle", previous="ended", since=NOW, reason="silence").to_json_dict()


def loudness(momentary=-23.04, short=-21.96):
    bands = [BandLevel(name="low", low_hz=20, high_hz=250, level_db=-30.0)]
    return LoudnessEvent(momentary_lufs=momentary, short_term_lufs=short, integrated_lufs=-22.5,
                         loudness_range_lu=6.1, true_peak_dbtp=-1.2, window_s=600, bands=bands).to_json_dict()


def health():
    return HealthEvent(device="vmic", device_state="ok", sample_rate=48000, overruns=3, dropped_frames=0,
                       cpu_percent=7.5, audio_s=60, catalog_tracks=85, uptime_s=61,
                       spool_depth=2).to_json_dict()


def test_every_config_uses_only_keys_home_assistant_documents(announced):
    for entity in announced:
        allowed = COMMON_KEYS | COMPONENT_KEYS[entity.component]
        assert set(entity.config) <= allowed, (entity.object_id, set(entity.config) - allowed)
        assert REQUIRED[entity.component] <= set(entity.config), entity.object_id


def test_discovery_topics_match_home_assistants_pattern(announced, topics):
    for entity in announced:
        topic = topics.discovery(entity.component, entity.object_id)
        assert topic.startswith("homeassistant/")
        m = TOPIC_MATCHER.fullmatch(topic.removeprefix("homeassistant/"))
        assert m, topic
        assert (m["component"], m["node_id"], m["object_id"]) == (entity.component, "earshot_living-room",
                                                                  entity.object_id)


def test_one_device_with_unique_ids_and_availability_on_status(announced, topics):
    ids = [e.config["unique_id"] for e in announced]
    assert len(ids) == len(set(ids))
    for entity in announced:
        c = entity.config
        assert c["unique_id"] == f"earshot_living-room_{entity.object_id}"
        assert c["availability_topic"] == "earshot/living-room/status" == topics.status
        assert (c["payload_available"], c["payload_not_available"]) == ("online", "offline")
        assert "availability" not in c  # exclusive with availability_topic
        assert set(c["device"]) <= DEVICE_KEYS
        assert c["device"]["identifiers"] == ["earshot_living-room"]
        assert c["device"]["name"] == "earshot living-room"
        assert set(c["origin"]) <= ORIGIN_KEYS and c["origin"]["name"] == "earshot"
        assert isinstance(c["name"], str) and c["name"]
        assert "object_id" not in c  # deprecated since HA 2025.10
        if "icon" in c:
            assert ICON.match(c["icon"]), c["icon"]
        if "qos" in c:
            assert c["qos"] in (0, 1, 2)
        for key in ("state_topic", "json_attributes_topic", "command_topic"):
            if key in c:
                assert c[key].startswith("earshot/living-room/") and not set("+#") & set(c[key])


def test_now_playing_sensor_states_the_title_with_track_attributes(announced):
    c = by_id(announced, "now_playing").config
    assert c["state_topic"] == c["json_attributes_topic"] == "earshot/living-room/now_playing"
    assert "unit_of_measurement" not in c and "state_class" not in c and "device_class" not in c
    assert render(c["value_template"], playing()) == "Battle Music"
    assert render(c["value_template"], idle()) == "idle"
    attrs = json.loads(render(c["json_attributes_template"], playing()))
    assert attrs == {"play_state": "playing", "title": "Battle Music", "artist": "Aleksi Aubry-Carlson",
                     "album": "Wesnoth", "track_id": 17, "position_s": 61.5, "confidence": 0.9999,
                     "since": "2026-11-22T20:15:03Z"}
    assert not set(attrs) & BLOCKED_ATTRIBUTES
    idle_attrs = json.loads(render(c["json_attributes_template"], idle()))
    assert idle_attrs["play_state"] == "idle" and idle_attrs["title"] is None and idle_attrs["track_id"] is None


def test_now_playing_title_is_cut_to_home_assistants_255_characters(announced):
    long = NowPlayingEvent(state="playing", track=TrackInfo(track_id=1, title="x" * 400)).to_json_dict()
    assert len(render(by_id(announced, "now_playing").config["value_template"], long)) == 255


def test_music_playing_is_a_sound_binary_sensor(announced):
    c = by_id(announced, "music_playing").config
    assert c["device_class"] == "sound" and c["device_class"] in BINARY_SENSOR_CLASSES_USED
    assert (c["payload_on"], c["payload_off"]) == ("ON", "OFF")
    assert render(c["value_template"], playing()) == "ON"
    assert render(c["value_template"], idle()) == "OFF"


@pytest.mark.parametrize("object_id, field, unit", [
    ("momentary_loudness", "momentary_lufs", "LUFS"),
    ("short_term_loudness", "short_term_lufs", "LUFS"),
    ("integrated_loudness", "integrated_lufs", "LUFS"),
    ("true_peak", "true_peak_dbtp", "dBTP"),
])
def test_loudness_sensors_are_measurements_without_device_class(announced, object_id, field, unit):
    c = by_id(announced, object_id).config
    assert c["state_topic"] == "earshot/living-room/loudness"
    assert c["unit_of_measurement"] == unit
    assert c["state_class"] == "measurement" and c["state_class"] in STATE_CLASSES
    assert "device_class" not in c  # HA's sound_pressure class rejects LUFS / dBTP
    payload = loudness()
    assert float(render(c["value_template"], payload)) == payload[field]
    # a missing value renders None, which HA's MQTT sensor reads as "unknown"
    assert render(c["value_template"], loudness(momentary=None, short=None) | {field: None}) == "None"


def test_sound_level_in_dba_only_with_a_calibration_offset(announced, topics):
    c = by_id(announced, "sound_level").config
    assert c["device_class"] == "sound_pressure" and c["unit_of_measurement"] in SOUND_PRESSURE_UNITS
    assert c["unit_of_measurement"] == "dBA" and c["state_class"] == "measurement"
    assert float(render(c["value_template"], loudness(short=-21.96))) == round(-21.96 + OFFSET, 1)
    assert render(c["value_template"], loudness(short=None)) == "None"
    without = discovery.entities(topics, device_name="x", sound_level_offset_db=None)
    assert "sound_level" not in {e.object_id for e in without}
    # a configuration without it clears its old retained config (removing the entity)
    assert discovery.withdrawn(topics, without) == ["homeassistant/sensor/earshot_living-room/sound_level/config"]
    assert discovery.withdrawn(topics, announced) == []


def test_diagnostics_come_from_health_with_entity_category_diagnostic(announced):
    expected = {"overruns": ("overruns", "total_increasing"), "spool_depth": ("spool_depth", "measurement"),
                "catalog_tracks": ("catalog_tracks", "measurement"), "cpu": ("cpu_percent", "measurement")}
    payload = health()
    for object_id, (field, state_class) in expected.items():
        c = by_id(announced, object_id).config
        assert c["entity_category"] == "diagnostic"  # the only category HA allows for sensors
        assert c["state_topic"] == "earshot/living-room/health"
        assert c["state_class"] == state_class
        assert float(render(c["value_template"], payload)) == payload[field]


def test_match_event_entity_renders_a_valid_event_payload(announced):
    c = by_id(announced, "match").config
    assert c["event_types"] == ["match"] and c["state_topic"] == "earshot/living-room/match"
    match = MatchEvent(track_id=17, title="Battle Music", artist="Aleksi Aubry-Carlson", album="Wesnoth",
                       offset_s=12.25, confidence=0.9999, started_at=NOW, latency_s=4.5).to_json_dict()
    rendered = json.loads(render(c["value_template"], match))
    assert rendered.pop("event_type") in c["event_types"]
    assert rendered == {"title": "Battle Music", "artist": "Aleksi Aubry-Carlson", "album": "Wesnoth",
                        "track_id": 17, "confidence": 0.9999, "offset_s": 12.25, "event_id": match["id"]}
    assert not set(rendered) & {"event_type", "event_types"}


def test_identify_now_button_sends_a_valid_command(announced, topics):
    from earshot.mqtt.commands import parse_command

    c = by_id(announced, "identify_now").config
    assert c["command_topic"] == topics.cmd and c["retain"] is False
    assert parse_command(c["payload_press"].encode()).name == "identify_now"


def test_all_discovery_topics_cover_the_conditional_entities(topics):
    every = discovery.all_discovery_topics(topics)
    assert "homeassistant/sensor/earshot_living-room/sound_level/config" in every
    assert len(every) == len(set(every)) == 13
