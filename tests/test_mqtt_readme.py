"""The README's MQTT example payloads are what earshot sends: each event example parses as
its model, the command parses, the discovery example is the real config."""
from __future__ import annotations

import json
import re
from pathlib import Path

from earshot.config import parse_config
from earshot.events import parse_event
from earshot.mqtt import discovery
from earshot.mqtt.commands import parse_command
from earshot.mqtt.topics import EVENT_TOPICS, Topics

README = Path(__file__).resolve().parents[1] / "README.md"


def examples() -> dict[str, dict]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## MQTT and Home Assistant"):text.index("## How recognition works")]
    found: dict[str, dict] = {}
    for m in re.finditer(r"`([a-z_/]+)`[^\n]*\n((?:```json\n.*?\n```\n?)+)", section, re.DOTALL):
        blocks = re.findall(r"```json\n(.*?)\n```", m.group(2), re.DOTALL)
        found[m.group(1)] = json.loads(blocks[0])
        if len(blocks) > 1:
            found[m.group(1) + " reply"] = json.loads(blocks[1])
    return found


def test_every_event_topic_has_an_example_that_parses_as_its_model():
    found = examples()
    for kind, leaf in EVENT_TOPICS.items():
        body = found[f"earshot/livingroom/{leaf}"]
        event = parse_event(body)
        assert event.event == kind and event.to_json_dict() == body


def test_the_command_example_is_valid_and_its_reply_has_the_documented_fields():
    found = examples()
    command = parse_command(json.dumps(found["earshot/livingroom/cmd"]).encode())
    assert command.name == "pause"
    reply = found["earshot/livingroom/cmd reply"]
    assert set(reply) == {"ts", "schema", "id", "command", "ok", "result"} and reply["id"] == command.request_id


def test_the_discovery_example_is_the_real_config():
    found = examples()
    topics = Topics.from_section(parse_config({"mqtt": {"host": "x", "device_id": "livingroom"}}).mqtt)
    now_playing = discovery.entities(topics, device_name="earshot livingroom", sound_level_offset_db=None)[0]
    topic = topics.discovery(now_playing.component, now_playing.object_id)
    assert found[topic] == now_playing.config
